"""Floods of cookie-less and garbage-token requests leave nothing behind.

DESIGN §3.4: crawlers and random tokens must not fill the session store or get
cookies. Each flood is 10,000 requests through the whole middleware stack,
taking turns at a view that reads the session, one that never touches it and
Django's LogoutView reached anonymously. The requests go straight to the WSGI
test handler, about twice as fast as the test client (which also records
templates and parses cookies per response); cookie parsing under ASGI is
covered request by request in test_cookie_hygiene.
"""

import secrets
from collections import Counter

import pytest
from django.core.cache import caches
from django.db import connections

from tests.engines import ENGINES
from tests.security.transport import Transport

pytestmark = pytest.mark.django_db(databases="__all__")

REQUESTS = 10_000

# path, method, and whether the view loads the session
VIEWS = [
    ("/read/", "GET", True),
    ("/untouched/", "GET", False),
    ("/accounts/logout/", "POST", True),
]


@pytest.fixture
def statements(engine):
    """Counts the SQL statements run on the pinned alias, by first keyword.

    (CaptureQueriesContext keeps only the last 9,000.)
    """
    counts = Counter()

    def count(execute, sql, params, many, context):
        counts[sql.lstrip().split(None, 1)[0].upper()] += 1
        return execute(sql, params, many, context)

    with connections[engine.alias].execute_wrapper(count):
        yield counts


def stored_anything(engine):
    """Whether the engine's stores hold anything at all (rows, keys, entries)."""
    rows = (
        engine.store_class.get_model_class().objects.exists()
        if engine.kind != "cache"
        else False
    )
    if engine.on_redis:
        return rows or engine.redis().dbsize() > 0
    if engine.cache_alias:
        return rows or bool(caches[engine.cache_alias]._cache)
    return rows


def flood(cookies, settings):
    settings.LOGOUT_REDIRECT_URL = "/untouched/"  # a redirect: no template to render
    transport = Transport("wsgi")
    lookups = 0
    for i in range(REQUESTS):
        path, method, loads = VIEWS[i % len(VIEWS)]
        cookie = None
        if cookies:
            cookie = f"{settings.SESSION_COOKIE_NAME}={secrets.token_urlsafe(32)}"
            lookups += loads
        response = transport.request(path, method=method, cookie=cookie)
        assert response.status_code in (200, 302)
        if cookie and loads:
            # The unknown token is cleared, as Django does, and nothing else.
            cleared = response.cookies[settings.SESSION_COOKIE_NAME]
            assert (cleared.value, cleared["max-age"]) == ("", 0)
            assert len(response.cookies) == 1, response.cookies.output()
        else:
            assert not response.cookies, response.cookies.output()
    return lookups


@pytest.mark.parametrize("engine", ["db-postgresql"], indirect=True)
def test_flood_without_cookies_stores_nothing_and_sets_no_cookie(
    engine, statements, settings
):
    # No store is asked anything, so one engine is enough.
    flood(False, settings)
    assert dict(statements) == {}
    assert not stored_anything(engine)


@pytest.mark.parametrize("engine", list(ENGINES), indirect=True)
def test_flood_of_random_tokens_stores_nothing_and_only_clears_the_cookie(
    engine, statements, settings
):
    lookups = flood(True, settings)
    queries = dict(statements)
    if engine.kind == "db":
        # One lookup per random token, where the view looks at the session.
        assert queries == {"SELECT": lookups}
    else:
        assert set(queries) <= {"SELECT"}, queries  # cached_db reads behind a miss
    assert not stored_anything(engine)
