"""docs/quickstart.rst, step by step, in a new project in a temporary folder.

The edits come from the very files the page includes (docs/quickstart/), so
the page and this test cannot drift apart. Every step is a subprocess of
this virtualenv's Django, as a reader would run it; step 5 signs in through
a real development server.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from scs_django import tokens

DOCS = Path(__file__).resolve().parent.parent / "docs"
SNIPPETS = DOCS / "quickstart"
BIN = Path(sys.executable).parent
USERNAME, PASSWORD = "admin", "quickstart-password"


def apply_diff(text, diff):
    """``text`` with the hunks of the unified ``diff`` applied, each found by
    its content (line numbers ignored, so any Django's template fits)."""
    hunks = re.split(r"^@@[^\n]*@@\n", diff, flags=re.MULTILINE)[1:]
    assert hunks, "no hunks in the diff"
    for hunk in hunks:
        old, new = [], []
        for line in hunk.splitlines(keepends=True):
            mark, rest = line[:1], line[1:]
            if mark in (" ", "-"):
                old.append(rest)
            if mark in (" ", "+"):
                new.append(rest)
        before, after = "".join(old), "".join(new)
        assert text.count(before) == 1, f"hunk does not apply:\n{before}"
        text = text.replace(before, after)
    return text


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def env():
    """The environment of a reader's shell: no test settings, no test paths."""
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}}
    env.pop("PYTHONPATH", None)
    env["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
    return env


def run(args, cwd, env, stdin=None):
    done = subprocess.run(
        args, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def serve(cwd, env, port):
    """``manage.py runserver`` (step 5), up once it answers."""
    server = subprocess.Popen(
        [BIN / "python", "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            assert server.poll() is None, server.stderr.read()
            time.sleep(0.1)
    server.kill()
    pytest.fail("runserver did not start")


def sign_in(base, jar):
    """Sign in through the login form as a browser keeping its cookies in
    ``jar`` does; the URL and the page it lands on."""
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    browser.open(f"{base}/accounts/login/", timeout=10).read()
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    form = urllib.parse.urlencode(
        {"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": csrf}
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - http on loopback
        f"{base}/accounts/login/", data=form, headers={"Referer": f"{base}/"}
    )
    with browser.open(request, timeout=10) as response:
        return response.geturl(), response.read().decode()


def session_cookie(jar):
    return next(c.value for c in jar if c.name == "sessionid")


def test_the_quickstart_gives_a_working_login_with_sealed_sessions(tmp_path, env):
    # 1. Install (this virtualenv has Django and scs_django) and start a project.
    run([BIN / "django-admin", "startproject", "mysite"], tmp_path, env)
    project = tmp_path / "mysite"

    # 2. Settings: the patch, then the block at the end.
    settings = project / "mysite" / "settings.py"
    text = apply_diff(settings.read_text(), (SNIPPETS / "settings.diff").read_text())
    settings.write_text(text + "\n" + (SNIPPETS / "settings_append.py").read_text())

    # 3. Migrate, and a user.
    run([BIN / "python", "manage.py", "migrate"], project, env)
    run(
        [BIN / "python", "manage.py", "createsuperuser", "--noinput"]
        + ["--username", USERNAME, "--email", "admin@example.com"],
        project,
        env,
    )

    # 4. A login URL: urls.py and the templates.
    shutil.copy(SNIPPETS / "urls.py", project / "mysite" / "urls.py")
    shutil.copytree(SNIPPETS / "templates", project / "templates")

    # 5. Run, and sign in.
    port = free_port()
    server = serve(project, env, port)
    try:
        jar = CookieJar()
        landed, page = sign_in(f"http://127.0.0.1:{port}", jar)
        first = session_cookie(jar)
        sign_in(f"http://127.0.0.1:{port}", jar)  # again: a new token
        second = session_cookie(jar)
    finally:
        server.terminate()
        server.wait(timeout=10)

    assert landed == f"http://127.0.0.1:{port}/"
    assert f'<strong id="username">{USERNAME}</strong>' in page
    assert tokens.is_well_formed(first) and tokens.is_well_formed(second)
    assert first != second
    assert f'<code id="hash-prefix">{tokens.hash_token(first)[:8]}</code>' in page

    # The stored sessions, as the page's script shows them: hashes, sealed data.
    shown = run(
        [BIN / "python", "manage.py", "shell"],
        project,
        env,
        stdin=(SNIPPETS / "show_sessions.py").read_text(),
    )
    assert f"session {tokens.hash_token(second)[:8]}: user 1" in shown
    assert shown.count("session ") == 1  # the first token's session is gone
    assert "readable without the key: False" in shown
    assert "readable without the key: True" not in shown
    assert first not in shown and second not in shown
