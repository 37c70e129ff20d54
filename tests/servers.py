"""Throwaway PostgreSQL, MariaDB and Redis servers (and a small Redis Cluster)
for one test run.

Each server listens on 127.0.0.1 only, keeps its files in a fresh temporary
directory and is stopped (and the directory removed) by ``stop()``, by leaving
its ``with`` block, or at interpreter exit, whichever comes first.

A missing server binary is an error that says what to install: the suite must
fail, never skip, on a machine without PostgreSQL, MariaDB or Redis.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TypeVar

HOST = "127.0.0.1"

# Port numbers taken by another process between free_port() and the server's
# bind are retried on a new port this many times.
_START_ATTEMPTS = 5


class ServerUnavailable(RuntimeError):
    """A test server could not be found or started."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_variable(service: str) -> str:
    """Name of the environment variable holding this process's port for *service*.

    Keyed by pytest-xdist worker: workers inherit the controller's environment
    but each starts its own servers.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"SCS_TEST_{service.upper()}_AUTO_PORT_{worker.upper()}"


def reserve_port(service: str) -> int:
    """Choose the port of this process's *service* server, once.

    The choice is kept in the environment so that settings imported again, and
    subprocesses started by tests, agree on it.
    """
    name = port_variable(service)
    if not os.environ.get(name):
        os.environ[name] = str(free_port())
    return int(os.environ[name])


def wait_for_port(port: int, timeout: float, host: str = HOST) -> bool:
    """Return True once something accepts TCP connections on *port*."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _read(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


_PORT_IN_USE = re.compile(r"address already in use|could not bind", re.IGNORECASE)


class PostgresServer:
    """A PostgreSQL cluster made with initdb and run with pg_ctl.

    Trust authentication, superuser ``postgres``, UTF8, durability switched
    off for speed. As root, the cluster is run by the ``postgres`` system user,
    because PostgreSQL refuses to run as root.
    """

    user = "postgres"

    def __init__(self) -> None:
        self.host = HOST
        self.port: int | None = None
        self.bindir = self.find_bindir()
        self.tmpdir: Path | None = None
        self._running = False

    @staticmethod
    def find_bindir() -> Path:
        on_path = shutil.which("pg_ctl")
        if on_path and shutil.which("initdb"):
            return Path(on_path).resolve().parent
        # Debian and Ubuntu keep the server binaries off PATH, one dir per version.
        candidates = [
            Path(d)
            for d in glob.glob("/usr/lib/postgresql/*/bin")
            if (Path(d) / "pg_ctl").exists() and (Path(d) / "initdb").exists()
        ]
        candidates.sort(key=lambda d: _version_key(d.parent.name))
        if candidates:
            return candidates[-1]
        raise ServerUnavailable(
            "The tests need a PostgreSQL server, but neither pg_ctl/initdb on PATH "
            "nor /usr/lib/postgresql/*/bin was found. Install it, e.g. "
            "`apt-get install postgresql`, or point SCS_TEST_PG_PORT at a running "
            "server."
        )

    # -- running commands, as the postgres user when we are root --------------

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        runuser = shutil.which("runuser")
        if runuser:
            return [runuser, "-u", self.user, "--", *argv]
        return ["su", self.user, "-s", "/bin/sh", "-c", shlex.join(argv)]

    def _run(self, argv: list[str], log: Path) -> int:
        assert self.tmpdir is not None
        # Output goes to a file, not a pipe: the postmaster started by pg_ctl
        # outlives it and would keep a pipe open.
        with open(log, "ab") as out:
            return subprocess.call(
                self._as_owner(argv),
                cwd=self.tmpdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def _make_tmpdir(self) -> Path:
        tmpdir = Path(tempfile.mkdtemp(prefix="scs-django-pg-"))
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam(self.user)
            except KeyError:
                shutil.rmtree(tmpdir, ignore_errors=True)
                raise ServerUnavailable(
                    "PostgreSQL refuses to run as root and there is no 'postgres' "
                    "system user to run it as. `apt-get install postgresql` creates "
                    "one."
                ) from None
            os.chown(tmpdir, owner.pw_uid, owner.pw_gid)
        return tmpdir

    # -- lifecycle -------------------------------------------------------------

    def start(self, port: int | None = None) -> PostgresServer:
        """Create the cluster and start it on *port* (or a free port).

        If the port turns out to be taken, another free one is used: read
        ``self.port`` afterwards.
        """
        if self._running:
            return self
        self.tmpdir = self._make_tmpdir()
        atexit.register(self.stop)
        datadir = self.tmpdir / "data"
        initdb_log = self.tmpdir / "initdb.log"
        argv = [
            str(self.bindir / "initdb"),
            "--pgdata",
            str(datadir),
            "--username",
            self.user,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ]
        if self._run(argv, initdb_log) != 0:
            log = _read(initdb_log)
            self.stop()
            hint = ""
            if os.geteuid() == 0:
                hint = (
                    f"\n(As root, PostgreSQL runs as the {self.user!r} user, which "
                    "must be able to reach the temporary directory: set TMPDIR to "
                    "one it can, such as /tmp.)"
                )
            raise ServerUnavailable(f"initdb failed:\n{log}{hint}")

        port = port or free_port()
        for _attempt in range(_START_ATTEMPTS):
            if self._start_on(port):
                self.port = port
                self._running = True
                return self
            log = _read(self.tmpdir / "postgresql.log")
            if not _PORT_IN_USE.search(log):
                break
            port = free_port()
        self.stop()
        raise ServerUnavailable(
            f"PostgreSQL did not start on {self.host}:{port}:\n"
            f"{_read(self.tmpdir / 'pg_ctl.log')}\n{log}"
        )

    def _start_on(self, port: int) -> bool:
        assert self.tmpdir is not None
        options = [
            "-h", self.host,
            "-p", str(port),
            "-k", str(self.tmpdir),
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
        ]  # fmt: skip
        argv = [
            str(self.bindir / "pg_ctl"),
            "start",
            "--pgdata",
            str(self.tmpdir / "data"),
            "--log",
            str(self.tmpdir / "postgresql.log"),
            "--wait",
            "--timeout",
            "60",
            # pg_ctl hands these to a shell.
            "-o",
            shlex.join(options),
        ]
        if self._run(argv, self.tmpdir / "pg_ctl.log") != 0:
            return False
        if wait_for_port(port, timeout=30):
            return True
        self._pg_ctl_stop()
        return False

    def _pg_ctl_stop(self) -> None:
        assert self.tmpdir is not None
        argv = [
            str(self.bindir / "pg_ctl"),
            "stop",
            "--pgdata",
            str(self.tmpdir / "data"),
            "--mode",
            "immediate",
            "--wait",
        ]
        self._run(argv, self.tmpdir / "pg_ctl.log")

    def stop(self) -> None:
        """Stop the server and remove its files. Safe to call more than once."""
        if self.tmpdir is None:
            return
        # Also after a failed start: pg_ctl may have given up on a postmaster
        # that is running.
        if (self.tmpdir / "data" / "postmaster.pid").exists():
            self._pg_ctl_stop()
        self._running = False
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        self.tmpdir = None
        atexit.unregister(self.stop)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _ServerProcess:
    """What the servers run as a child process share: stopping it, and
    removing its temporary directory."""

    tmpdir: Path | None
    _process: subprocess.Popen[bytes] | None
    STOP_SECONDS = 10  # for a clean shutdown before the process is killed

    def start(self: _S) -> _S:
        raise NotImplementedError

    def _terminate(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()  # a clean shutdown
            try:
                self._process.wait(timeout=self.STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def stop(self) -> None:
        """Stop the server and remove its files. Safe to call more than once."""
        self._terminate()
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None
            atexit.unregister(self.stop)

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


_S = TypeVar("_S", bound=_ServerProcess)


class MariaDBServer(_ServerProcess):
    """A MariaDB server on a data directory made with mariadb-install-db.

    Started without any option file (``--no-defaults``), so nothing of a
    system-wide installation applies; utf8mb4, and durability switched off for
    speed. The tests connect over TCP as :attr:`user`, created with every
    privilege at startup (``--init-file``): Django's test runner makes and
    drops its own databases. As root, the server runs as the ``mysql`` system
    user, as MariaDB advises, which the Debian package creates.
    """

    STOP_SECONDS = 30  # InnoDB flushes on a clean shutdown

    user = "scs"
    password = "scs-django-tests"
    system_user = "mysql"
    _SEARCH = ("/usr/sbin", "/usr/local/sbin", "/usr/libexec", "/usr/local/mysql/bin")

    def __init__(self, host: str = HOST) -> None:
        self.host = host
        self.port: int | None = None
        self.server, self.install_db = self.find_binaries()
        self.tmpdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def find_binaries(cls) -> tuple[str, str]:
        """The server and the data directory initializer (MariaDB's names first)."""
        path = os.pathsep.join([os.environ.get("PATH", ""), *cls._SEARCH])
        server = shutil.which("mariadbd", path=path) or shutil.which(
            "mysqld", path=path
        )
        install_db = shutil.which("mariadb-install-db", path=path) or shutil.which(
            "mysql_install_db", path=path
        )
        if server and install_db:
            return server, install_db
        raise ServerUnavailable(
            "The tests need a MariaDB server, but mariadbd and mariadb-install-db "
            "were not found on PATH or in /usr/sbin. Install it, e.g. `apt-get "
            "install mariadb-server`, or point SCS_TEST_MARIADB_PORT at a running "
            "server."
        )

    def _owner_option(self) -> list[str]:
        # mariadbd refuses to run as root unless told which user to become.
        return [f"--user={self.system_user}"] if os.geteuid() == 0 else []

    def _make_tmpdir(self) -> Path:
        tmpdir = Path(tempfile.mkdtemp(prefix="scs-django-mariadb-"))
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam(self.system_user)
            except KeyError:
                shutil.rmtree(tmpdir, ignore_errors=True)
                raise ServerUnavailable(
                    "MariaDB should not run as root and there is no 'mysql' system "
                    "user to run it as. `apt-get install mariadb-server` creates one."
                ) from None
            os.chown(tmpdir, owner.pw_uid, owner.pw_gid)
        return tmpdir

    def start(self, port: int | None = None) -> MariaDBServer:
        """Initialize a data directory and start the server on *port* (or a free
        port); read ``self.port`` afterwards."""
        if self._process is not None:
            return self
        self.tmpdir = self._make_tmpdir()
        atexit.register(self.stop)
        install_log = self.tmpdir / "install.log"
        argv = [
            self.install_db,
            "--no-defaults",
            f"--datadir={self.tmpdir / 'data'}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
            *self._owner_option(),
        ]
        with open(install_log, "wb") as out:
            status = subprocess.call(
                argv,
                cwd=self.tmpdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if status != 0:
            log = _read(install_log)
            self.stop()
            raise ServerUnavailable(f"mariadb-install-db failed:\n{log}")
        init = self.tmpdir / "init.sql"
        # Run at every start, so OR REPLACE: a retry on another port starts again.
        init.write_bytes(
            self._time_zones()
            + f"CREATE OR REPLACE USER '{self.user}'@'{self.host}' "
            f"IDENTIFIED BY '{self.password}';\n"
            f"GRANT ALL PRIVILEGES ON *.* TO '{self.user}'@'{self.host}';\n".encode()
        )
        init.chmod(0o644)

        log = self.tmpdir / "mariadb.log"
        port = port or free_port()
        for _attempt in range(_START_ATTEMPTS):
            self.port = port
            log.unlink(missing_ok=True)
            with open(self.tmpdir / "mariadbd.out", "ab") as out:
                self._process = subprocess.Popen(
                    self._argv(port, log),
                    cwd=self.tmpdir,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            if self._wait_ready(log, timeout=60):
                return self
            self._terminate()
            if not _PORT_IN_USE.search(_read(log)):
                break
            port = free_port()
        text = _read(log) or _read(self.tmpdir / "mariadbd.out")
        self.stop()
        raise ServerUnavailable(
            f"mariadbd did not start on {self.host}:{port}:\n{text}"
        )

    @classmethod
    def _time_zones(cls) -> bytes:
        # Django's datetime lookups in a time zone (the admin's date hierarchy)
        # need the server's time zone tables, which a new data directory lacks.
        path = os.pathsep.join([os.environ.get("PATH", ""), *cls._SEARCH])
        tool = shutil.which("mariadb-tzinfo-to-sql", path=path) or shutil.which(
            "mysql_tzinfo_to_sql", path=path
        )
        if tool is None or not Path("/usr/share/zoneinfo").is_dir():
            raise ServerUnavailable(
                "The tests load MariaDB's time zone tables with mariadb-tzinfo-to-sql "
                "from /usr/share/zoneinfo. Install them, e.g. `apt-get install "
                "mariadb-client tzdata` (which mariadb-server brings along)."
            )
        done = subprocess.run(
            [tool, "/usr/share/zoneinfo"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            raise ServerUnavailable(
                f"{tool} failed:\n{done.stderr.decode(errors='replace')[-4000:]}"
            )
        return b"USE mysql;\n" + done.stdout + b"\n"

    def _argv(self, port: int, log: Path) -> list[str]:
        assert self.tmpdir is not None
        return [
            self.server,
            "--no-defaults",
            *self._owner_option(),
            f"--datadir={self.tmpdir / 'data'}",
            f"--socket={self.tmpdir / 'mariadb.sock'}",
            f"--pid-file={self.tmpdir / 'mariadb.pid'}",
            f"--log-error={log}",
            f"--init-file={self.tmpdir / 'init.sql'}",
            "--skip-networking=0",
            f"--bind-address={self.host}",
            f"--port={port}",
            "--skip-name-resolve",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-doublewrite=0",
            "--innodb-buffer-pool-size=64M",
            "--skip-log-bin",
        ]

    def _wait_ready(self, log: Path, timeout: float) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            # Written by our server once it listens: not another process that
            # held the port when ours failed to bind (ours then exits).
            if "ready for connections" in _read(log) and wait_for_port(
                self.port, timeout=1, host=self.host
            ):
                return True
            time.sleep(0.05)
        return False


class RedisServer(_ServerProcess):
    """A redis-server without persistence, listening on 127.0.0.1."""

    def __init__(self, host: str = HOST, port: int | None = None) -> None:
        self.host = host
        self.port = port
        self.tmpdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @staticmethod
    def find_binary() -> str:
        binary = shutil.which("redis-server")
        if binary:
            return binary
        raise ServerUnavailable(
            "The tests need a Redis server, but redis-server is not on PATH. "
            "Install it, e.g. `apt-get install redis-server`, or point "
            "SCS_TEST_REDIS_URL at a running server."
        )

    def ping(self, timeout: float = 2.0) -> bool:
        """Return True if the server answers PING."""
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout) as s:
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def start(self, port: int | None = None) -> RedisServer:
        """Start the server on *port* (or a free port); read ``self.port`` after."""
        if self._process is not None:
            return self
        binary = self.find_binary()
        self.tmpdir = Path(tempfile.mkdtemp(prefix="scs-django-redis-"))
        atexit.register(self.stop)
        log = self.tmpdir / "redis.log"
        port = port or self.port or free_port()
        for _attempt in range(_START_ATTEMPTS):
            self.port = port
            with open(log, "wb") as out:
                self._process = subprocess.Popen(
                    self._argv(binary, port),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            if self._wait_ready(timeout=30):
                return self
            self._terminate()
            if not _PORT_IN_USE.search(_read(log)):
                break
            port = free_port()
        text = _read(log)
        self.stop()
        raise ServerUnavailable(
            f"redis-server did not start on {self.host}:{port}:\n{text}"
        )

    def _argv(self, binary: str, port: int) -> list[str]:
        assert self.tmpdir is not None
        return [
            binary,
            "--bind", self.host,
            "--port", str(port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.tmpdir),
            "--daemonize", "no",
        ]  # fmt: skip

    def _wait_ready(self, timeout: float) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            # Ours, not another server that held the port when ours failed to bind.
            if self._server_pid() == self._process.pid:
                return True
            time.sleep(0.05)
        return False

    def _server_pid(self) -> int | None:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                s.sendall(b"INFO server\r\nQUIT\r\n")
                reply = b""
                while chunk := s.recv(65536):
                    reply += chunk
        except OSError:
            return None
        match = re.search(rb"process_id:(\d+)", reply)
        return int(match.group(1)) if match else None


class _ClusterNode(RedisServer):
    """One redis-server of a :class:`RedisCluster`.

    The cluster bus gets a free port of its own (``--cluster-port``, Redis 7)
    instead of the default port + 10000, which may be taken or above 65535.
    """

    bus_port: int | None = None

    def _argv(self, binary: str, port: int) -> list[str]:
        assert self.tmpdir is not None
        self.bus_port = free_port()
        while self.bus_port == port:
            self.bus_port = free_port()
        return [
            *super()._argv(binary, port),
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(self.tmpdir / f"nodes-{port}.conf"),
            "--cluster-port", str(self.bus_port),
        ]  # fmt: skip


class RedisCluster:
    """A Redis Cluster of ``size`` primaries without replicas on 127.0.0.1.

    Each node is a :class:`RedisServer` in cluster mode; ``redis-cli --cluster
    create`` spreads the 16384 slots over them, and ``start()`` returns once
    every node reports ``cluster_state:ok`` and knows all the others. Connect
    with ``redis.cluster.RedisCluster.from_url(cluster.url)`` (any node's URL
    will do: the client discovers the rest).
    """

    def __init__(self, size: int = 3, host: str = HOST) -> None:
        if size < 3:
            raise ValueError("A Redis Cluster needs at least 3 primaries.")
        self.size = size
        self.host = host
        self.nodes: list[_ClusterNode] = []

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes if node.port is not None]

    @property
    def url(self) -> str:
        """The ``redis://`` URL of the first node."""
        return self.nodes[0].url

    @staticmethod
    def find_cli() -> str:
        binary = shutil.which("redis-cli")
        if binary:
            return binary
        raise ServerUnavailable(
            "The Redis Cluster tests need redis-cli to create the cluster, but it "
            "is not on PATH. Install it, e.g. `apt-get install redis-tools` (which "
            "`apt-get install redis-server` brings along)."
        )

    def start(self) -> RedisCluster:
        """Start the nodes, join them into one cluster and wait until it is ok."""
        if self.nodes:
            return self
        RedisServer.find_binary()  # both binaries before any process starts
        cli = self.find_cli()
        atexit.register(self.stop)
        try:
            for _ in range(self.size):
                node = _ClusterNode(host=self.host)
                self.nodes.append(node)
                node.start()
            self._create(cli)
            self._wait_ok(timeout=30)
        except BaseException:
            self.stop()
            raise
        return self

    def _create(self, cli: str) -> None:
        argv = [
            cli,
            "--cluster", "create",
            *(f"{self.host}:{port}" for port in self.ports),
            "--cluster-replicas", "0",
            "--cluster-yes",
        ]  # fmt: skip
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=60,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            output = (exc.output or b"").decode(errors="replace")
            raise ServerUnavailable(
                f"redis-cli --cluster create did not finish:\n{output[-4000:]}"
            ) from None
        if done.returncode != 0:
            output = done.stdout.decode(errors="replace")
            raise ServerUnavailable(
                f"redis-cli --cluster create failed (exit {done.returncode}):\n"
                f"{output[-4000:]}{self._logs()}"
            )

    def cluster_info(self, port: int) -> dict[str, str]:
        """``CLUSTER INFO`` of the node on *port*, as a dict ({} if unreachable)."""
        try:
            with socket.create_connection((self.host, port), timeout=2) as s:
                s.sendall(b"CLUSTER INFO\r\nQUIT\r\n")
                reply = b""
                while chunk := s.recv(65536):
                    reply += chunk
        except OSError:
            return {}
        return dict(re.findall(r"^(\w+):(\S*)\r?$", reply.decode(), re.MULTILINE))

    def _wait_ok(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            infos = {port: self.cluster_info(port) for port in self.ports}
            if all(
                info.get("cluster_state") == "ok"
                and info.get("cluster_known_nodes") == str(self.size)
                for info in infos.values()
            ):
                return
            if time.monotonic() > deadline:
                states = ", ".join(
                    f"{port}: state={info.get('cluster_state')} "
                    f"known_nodes={info.get('cluster_known_nodes')}"
                    for port, info in infos.items()
                )
                raise ServerUnavailable(
                    f"The Redis Cluster did not become ok within {timeout:g} s "
                    f"({states}).{self._logs()}"
                )
            time.sleep(0.05)

    def _logs(self) -> str:
        parts = []
        for node in self.nodes:
            if node.tmpdir is not None:
                parts.append(f"\n--- node {node.port} ---\n")
                parts.append(_read(node.tmpdir / "redis.log", limit=1500))
        return "".join(parts)

    def stop(self) -> None:
        """Stop every node and remove their files. Safe to call more than once."""
        for node in reversed(self.nodes):
            node.stop()
        self.nodes = []
        atexit.unregister(self.stop)

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name))
