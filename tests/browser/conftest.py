"""Fixtures of the browser tests: Debian's chromium driven by Playwright, the
demo project (testproject/) under uvicorn on loopback, screenshots of failing
tests.

Playwright never downloads a browser here: it launches the system's chromium
(``apt-get install chromium``; ``SCS_CHROMIUM`` names another binary). Without
it the tests are skipped, except in CI (``CI`` set), where they fail.

A failing test leaves a screenshot of each of its pages in
``$SCS_ARTIFACTS/browser`` when ``SCS_ARTIFACTS`` is set, else in
``browser-artifacts`` under pytest's base temporary directory; the run's
summary names the folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.realserver import RealServer, serve

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("SCS_CHROMIUM", "/usr/bin/chromium")
# No sandbox: CI runs as root. The rest keeps chromium off the network: no
# QUIC, no update checks, no sync, nothing fetched in the background.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
SETTINGS = "tests.browser.settings"

# Screenshots taken in this run, for the summary.
saved: list[Path] = []
for_the_docs: list[Path] = []


def unavailable(reason: str) -> None:
    """Skip, or fail in CI, where the browser tests must run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} CI must run the browser tests.", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Chromium, headless, launched once for the module."""
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"{CHROMIUM} not found: apt-get install chromium.")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed: pip install -e '.[test]'.")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(autouse=True)
def browser_first(chromium: Any) -> None:
    """Launch (or miss) the browser before any server starts."""


def demo_environment(database: Path, **extra: str) -> dict[str, str]:
    path = os.pathsep.join([str(ROOT / "testproject"), str(ROOT)])
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "PYTHONPATH": path,
        "SCS_BROWSER_DATABASE": str(database),
        "SCS_BROWSER_IDLE_TIMEOUT": "",
        **extra,
    }


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with the demo's tables and users (demo/demo, alice/alice)."""
    database = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "django", "seed_demo"],
        cwd=ROOT,
        env=demo_environment(database),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return database


@contextmanager
def demo_server(database: Path, **extra: str) -> Iterator[RealServer]:
    """The demo under uvicorn on loopback, with the environment ``extra``."""
    argv = ["-m", "tests.asgi_serve", "{fd}", "tests.browser.asgi:application"]
    env = demo_environment(database, **extra)
    with serve(argv, env, ready_path="/accounts/login/") as server:
        yield server


@pytest.fixture(scope="module")
def demo(demo_database: Path) -> Iterator[RealServer]:
    """The demo with its own settings (an idle timeout of minutes)."""
    with demo_server(demo_database) as server:
        yield server


@pytest.fixture(scope="module")
def short_idle_demo(demo_database: Path) -> Iterator[RealServer]:
    """The demo with a 5-second idle timeout, the warning 3 seconds before its end."""
    with demo_server(demo_database, SCS_BROWSER_IDLE_TIMEOUT="5") as server:
        yield server


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots of failing browser tests go."""
    if os.environ.get("SCS_ARTIFACTS"):
        folder = Path(os.environ["SCS_ARTIFACTS"]) / "browser"
    else:
        folder = tmp_path_factory.getbasetemp() / "browser-artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Any:
    report = yield
    # For new_context's teardown, which runs after the call's report.
    item.stash.setdefault(outcomes, {})[report.when] = report
    return report


outcomes = pytest.StashKey[dict[str, Any]]()


@pytest.fixture
def new_context(
    chromium: Any, artifacts: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Any]]:
    """``new_context(**options)``: a fresh browser context (its own cookies),
    closed at the end of the test, its pages photographed if the test failed."""
    contexts: list[Any] = []

    def make(**options: Any) -> Any:
        context = chromium.new_context(viewport=VIEWPORT, **options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    yield make
    reports = request.node.stash.get(outcomes, {})
    failed = any(report.failed for report in reports.values())
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    for number, context in enumerate(contexts):
        if failed:
            for page_number, page in enumerate(context.pages):
                path = artifacts / f"{name}-{number}-{page_number}.png"
                try:
                    page.screenshot(path=path, full_page=True)
                except Exception:  # noqa: BLE001,S112 - a closed page: nothing to show
                    continue
                saved.append(path)
        context.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if saved:
        terminalreporter.write_line(
            f"Screenshots of the browser tests: {saved[0].parent} ({len(saved)} files)"
        )
