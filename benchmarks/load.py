"""Load and CPU accounting for benchmarks/server.py: wrk runs and /proc.

Each wrk thread holds one connection and the signed-in session given to it
(a ``Cookie`` header), and stops after a bound on its requests; the CPU time
of a process tree is read from ``/proc/<pid>/stat``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

# Per wrk thread: one connection, the signed-in session given to it, and a
# bound on its requests.
WRK_SCRIPT = """
local max_requests = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "0")
local cookies = {}
for c in string.gmatch(os.getenv("BENCH_COOKIES") or "", "[^,]+") do
  table.insert(cookies, c)
end
local started = 0
function setup(thread)
  started = started + 1
  if #cookies > 0 then thread:set("cookie", cookies[(started - 1) % #cookies + 1]) end
end
function init(args)
  if cookie then wrk.headers["Cookie"] = cookie end
  done = 0
end
function response(status, headers, body)
  done = done + 1
  if max_requests > 0 and done >= max_requests then wrk.thread:stop() end
end
"""


# -- CPU time of process trees, from /proc ---------------------------------------------


def _processes() -> dict[int, tuple[int, float]]:
    """pid: (parent pid, CPU seconds of the process and its waited-for children)."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        # After the name: state, ppid, ..., utime (14), stime, cutime, cstime.
        cpu = sum(int(value) for value in fields[11:15]) / tick
        found[int(entry.name)] = (int(fields[1]), cpu)
    return found


def tree_cpu(roots: list[int]) -> float:
    """CPU seconds used so far by ``roots`` and all their live descendants."""
    processes = _processes()
    children = defaultdict(list)
    for pid, (parent, _cpu) in processes.items():
        children[parent].append(pid)
    total, pending = 0.0, [pid for pid in roots if pid in processes]
    while pending:
        pid = pending.pop()
        total += processes[pid][1]
        pending.extend(children[pid])
    return total


# -- wrk ------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _millis(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


@dataclass
class Run:
    requests: int
    seconds: float
    p50: float  # ms
    p99: float
    errors: int


def parse_wrk(output: str) -> Run:
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    if done is None:
        raise RuntimeError(f"wrk reported no requests:\n{output}")
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+(?:us|ms|s|m))$", output, re.M))
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    for socket_errors in re.findall(r"Socket errors: (.*)", output):
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors))
    return Run(
        requests=int(done[1]),
        seconds=_millis(done[2] + done[3]) / 1000,
        p50=_millis(latency["50"]),
        p99=_millis(latency["99"]),
        errors=errors,
    )


def run_wrk(
    url: str, cookies: list[str], args: argparse.Namespace, script: Path
) -> Run:
    env = {
        **os.environ,
        "BENCH_COOKIES": ",".join(cookies),
        "BENCH_MAX_REQUESTS": str(args.max_requests),
    }
    argv = [
        args.wrk,
        "--latency",
        "-t", str(args.connections),
        "-c", str(args.connections),
        "-d", f"{args.duration}s",
        "--timeout", "10s",
        "-s", str(script),
        url,
    ]  # fmt: skip
    done = subprocess.run(  # noqa: S603
        argv,
        env=env,
        capture_output=True,
        text=True,
        timeout=args.duration + 60,
        check=True,
    )
    return parse_wrk(done.stdout)
