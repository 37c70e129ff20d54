import os
from contextlib import nullcontext
from urllib.parse import urlsplit

import pytest
import time_machine
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS
from django.test.utils import override_settings

from tests import views
from tests.engines import ENGINES, use_engine
from tests.factories import UserFactory
from tests.routers import use_database
from tests.servers import MariaDBServer, PostgresServer, RedisServer, port_variable
from tests.utils import START
from tests.utils import count_session_queries as _count_session_queries

# db_alias ids -> database aliases in tests/settings.py
DATABASE_ALIASES = {
    "postgresql": DEFAULT_DB_ALIAS,
    "sqlite": "sqlite",
    "mariadb": "mariadb",
}


@pytest.fixture(scope="session", autouse=True)
def postgresql_server():
    """The throwaway PostgreSQL behind the "default" alias (None if external).

    Autouse, so that a machine without PostgreSQL fails every run instead of
    skipping the database tests.
    """
    if settings.TEST_POSTGRES_EXTERNAL:
        yield None
        return
    db = settings.DATABASES[DEFAULT_DB_ALIAS]
    with PostgresServer().start(port=int(db["PORT"])) as server:
        if str(server.port) != str(db["PORT"]):
            # The chosen port was taken meanwhile. No connection exists yet,
            # and connections[...] shares these dicts, so updating them
            # suffices; the other aliases on this server move along. (Not
            # override_settings: connections never read DATABASES again.)
            for other in settings.DATABASES.values():
                if other is not db and other.get("PORT") == db["PORT"]:
                    other["PORT"] = str(server.port)
            db["PORT"] = str(server.port)
            os.environ[port_variable("pg")] = str(server.port)
        yield server


@pytest.fixture(scope="session", autouse=True)
def mariadb_server():
    """The throwaway MariaDB behind the "mariadb" alias (None if external).

    Autouse for the same reason as postgresql_server.
    """
    if settings.TEST_MARIADB_EXTERNAL:
        yield None
        return
    db = settings.DATABASES["mariadb"]
    with MariaDBServer(host=db["HOST"]).start(port=int(db["PORT"])) as server:
        if str(server.port) != str(db["PORT"]):
            # As in postgresql_server: no connection exists yet.
            db["PORT"] = str(server.port)
            os.environ[port_variable("mariadb")] = str(server.port)
        yield server


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix, postgresql_server, mariadb_server
):
    """pytest-django's hook before it creates the test databases.

    Overridden only to depend on the database servers, so they are up by then.
    """


@pytest.fixture(scope="session", autouse=True)
def redis_server():
    """A Redis server for the tests; its URL is settings.TEST_REDIS_URL."""
    url = urlsplit(settings.TEST_REDIS_URL)
    server = RedisServer(host=url.hostname, port=url.port)
    if settings.TEST_REDIS_EXTERNAL:
        yield server
        return
    with server.start() as server:
        moved = nullcontext()
        if server.port != url.port:
            # The chosen port was taken meanwhile: for the whole run, through
            # an override like any other (caches[...] follows CACHES).
            redis = {**settings.CACHES["redis"], "LOCATION": server.url}
            moved = override_settings(
                TEST_REDIS_URL=server.url, CACHES={**settings.CACHES, "redis": redis}
            )
            os.environ[port_variable("redis")] = str(server.port)
        with moved:
            yield server


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "db_aliases(*ids): run the test's db_alias on these databases only "
        "(keys of tests.conftest.DATABASE_ALIASES)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc):
    marker = metafunc.definition.get_closest_marker("db_aliases")
    if marker is not None and "db_alias" in metafunc.fixturenames:
        # As a parametrize mark, which takes the place of the fixture's params.
        metafunc.definition.add_marker(
            pytest.mark.parametrize("db_alias", marker.args, indirect=True)
        )


@pytest.fixture(params=list(DATABASE_ALIASES))
def db_alias(request):
    """Run the test once per database, with every query routed to it.

    Yields the alias. Tests using it need
    ``@pytest.mark.django_db(databases="__all__")``; narrow the databases with
    ``@pytest.mark.db_aliases("postgresql", "sqlite")``.
    """
    with use_database(DATABASE_ALIASES[request.param]) as alias:
        yield alias


@pytest.fixture
def store_class(engine):
    """The ``SessionStore`` class of the engine under test."""
    return engine.store_class


@pytest.fixture
def clock():
    """The application's clock stopped at ``tests.utils.START``; the test moves
    it (``clock.shift(...)``, ``clock.move_to(...)``)."""
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def user_factory():
    return UserFactory


@pytest.fixture
def count_session_queries():
    """``tests.utils.count_session_queries``, as a fixture."""
    return _count_session_queries


@pytest.fixture(scope="session", autouse=True)
def log_scan():
    """Every log record of the run, checked for tokens (tests/security/logscan.py)."""
    from tests.security.logscan import LogScan

    scan = LogScan()
    scan.install()
    yield scan
    scan.uninstall()
    if problems := scan.problems():
        pytest.fail("\n".join(["Log records leak session secrets:", *problems]))


@pytest.fixture(autouse=True)
def no_secrets_in_logs(log_scan):
    """Fail a test whose log records hold a token or a full token hash."""
    earlier = log_scan.problems()  # logged between tests
    yield log_scan
    if problems := earlier + log_scan.problems():
        pytest.fail("\n".join(["Log records leak session secrets:", *problems]))


@pytest.fixture(params=list(ENGINES))
def engine(request, settings):
    """Run the test once per session engine of tests/engines.py.

    SESSION_ENGINE, SCS["CACHE_ALIAS"] (kept when the test replaces SCS) and
    the pinned database follow the engine; Redis and the LocMem caches are
    emptied before and after. Yields a ``tests.engines.Engine``: ``.id``,
    ``.store_class``, ``.alias``, ``.stored`` (what the store holds). Tests
    using it need ``@pytest.mark.django_db(databases="__all__")``; narrow it
    with ``@pytest.mark.parametrize("engine", [...], indirect=True)``.
    """
    with use_engine(request.param, settings) as engine:
        yield engine


@pytest.fixture
def live_token(engine):
    """The token of a session stored on the engine, holding ``{"value": "secret"}``."""
    session = engine.store_class()
    session["value"] = "secret"
    session.save()
    return session.session_key


@pytest.fixture
def in_flight():
    """``in_flight(action)`` runs ``action`` in the middle of the slow views."""

    def install(action):
        views.IN_FLIGHT = action

    yield install
    views.IN_FLIGHT = None
