"""Races: whatever ends a session wins over a request already holding it.

DESIGN §3.6 and §5. Each race is written twice:

* deterministically, with two store instances standing for two requests, the
  one that ends the session acting between the other's load and save, on
  every engine;
* with real threads on real PostgreSQL and Redis (transaction=True, so each
  thread has its own connection and commits as a server would), through the
  whole middleware stack. A ``threading.Barrier`` holds the in-flight request
  after it loaded the session until the other request has finished ("ordered"
  tests), or starts both at once, many times over, where any interleaving
  must keep the invariant ("free-running" tests).

tests/test_races.py covers the same races in one thread through the test client.
"""

import threading
from contextlib import contextmanager
from unittest import mock

import pytest
import time_machine
from django.conf import settings
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.db import connections

from scs_django import codec, tokens
from scs_django.backends.redis import TAG_LENGTH
from tests.engines import ENGINES, REDIS_ENGINES
from tests.security.transport import Transport, json_body, session_cookie

NAME = settings.SESSION_COOKIE_NAME
CLOCK = "2026-03-01 12:00:00+00:00"

# Engines whose store is a server other processes share: where threads race.
SHARED_ENGINES = ["db-postgresql", *REDIS_ENGINES]

deterministic = [
    pytest.mark.django_db(databases="__all__"),
    pytest.mark.parametrize("engine", list(ENGINES), indirect=True),
]
threaded = [
    pytest.mark.django_db(databases="__all__", transaction=True),
    pytest.mark.parametrize("engine", SHARED_ENGINES, indirect=True),
]


def hashed(*tokens_):
    return {tokens.hash_token(t) for t in tokens_}


def saved(engine, **data):
    session = engine.store_class()
    session.update(data)
    session.save()
    return session.session_key


def loaded(engine, token):
    """A store for ``token`` that has read the session, as a request in flight."""
    session = engine.store_class(token)
    assert session.get("value") is not None
    return session


def same_tag_tokens(count):
    """``count`` fresh tokens whose hashes share a Redis cluster tag, so the
    native Redis engine, which renews within a tag, can be made to collide."""
    by_tag = {}
    while True:
        token = tokens.new_token()
        group = by_tag.setdefault(tokens.hash_token(token)[:TAG_LENGTH], [])
        group.append(token)
        if len(group) == count:
            return group


@contextmanager
def next_tokens(*forced):
    """``tokens.new_token`` hands out ``forced`` first, then fresh ones."""
    queue = list(forced)
    lock = threading.Lock()
    real = tokens.new_token

    def new_token():
        with lock:
            if queue:
                return queue.pop(0)
        return real()

    with mock.patch.object(tokens, "new_token", new_token):
        yield


# -- deterministic: two store instances ---------------------------------------------


class TestTwoStores:
    pytestmark = deterministic

    def test_logout_between_load_and_save_is_not_undone(self, engine):
        token = saved(engine, value="cart")
        in_flight = loaded(engine, token)
        engine.store_class(token).flush()  # the logout, elsewhere
        in_flight["value"] = "late write"
        with pytest.raises(UpdateError):
            in_flight.save()
        assert engine.stored.hashes() == set()
        assert engine.store_class(token).get("value") is None

    def test_logout_between_load_and_asave_is_not_undone(self, engine):
        from asgiref.sync import async_to_sync

        token = saved(engine, value="cart")
        in_flight = loaded(engine, token)
        engine.store_class(token).delete()
        in_flight["value"] = "late write"
        with pytest.raises(UpdateError):
            async_to_sync(in_flight.asave)()
        assert engine.stored.hashes() == set()

    def test_logout_between_load_and_touch_is_not_undone(self, engine, settings):
        settings.SCS = {"IDLE_TIMEOUT": 600, "TOUCH_INTERVAL": 60}
        with time_machine.travel(CLOCK, tick=False) as clock:
            token = saved(engine, value="cart")
            clock.shift(120)
            in_flight = loaded(engine, token)
            assert in_flight.needs_touch
            engine.store_class(token).flush()
            with pytest.raises(UpdateError):
                in_flight.touch()
            assert engine.stored.hashes() == set()  # expiry judged on this clock

    def test_renew_between_load_and_save_keeps_the_old_token_dead(self, engine):
        token = saved(engine, value="cart")
        in_flight = loaded(engine, token)
        renewer = engine.store_class(token)
        renewer.renew_token()
        in_flight["value"] = "late write"
        with pytest.raises(UpdateError):
            in_flight.save()
        assert in_flight.session_key == token  # nothing new to send
        assert engine.stored.hashes() == hashed(renewer.session_key)
        assert engine.store_class(token).get("value") is None
        assert engine.store_class(renewer.session_key)["value"] == "cart"

    def test_two_renewals_of_one_session_leave_one_token(self, engine):
        token = saved(engine, value="cart")
        first, second = loaded(engine, token), loaded(engine, token)
        first.renew_token()
        second.renew_token()  # finds the old token gone
        assert second.session_key is None and second.is_empty()
        assert engine.stored.hashes() == hashed(first.session_key)
        assert engine.store_class(first.session_key)["value"] == "cart"

    def test_expiry_between_load_and_save_is_not_undone(self, engine, settings, stored):
        settings.SCS = {"ABSOLUTE_TIMEOUT": 60}
        with time_machine.travel(CLOCK, tick=False) as clock:
            token = saved(engine, value="cart")
            before = stored(token)
            clock.shift(59)
            in_flight = loaded(engine, token)
            clock.shift(1)  # the deadline passes; no cleanup ran yet
            in_flight["value"] = "late write"
            with pytest.raises(UpdateError):
                in_flight.save()
            # Left as it was (a database keeps the dead row until cleanup).
            assert stored(token) in (None, before)
            assert engine.store_class(token).get("value") is None

    def test_cleanup_between_load_and_save_is_not_undone(self, engine, settings):
        settings.SCS = {"ABSOLUTE_TIMEOUT": 60}
        with time_machine.travel(CLOCK, tick=False) as clock:
            token = saved(engine, value="cart")
            clock.shift(59)
            in_flight = loaded(engine, token)
            clock.shift(1)
            engine.store_class.clear_expired()
            in_flight["value"] = "late write"
            with pytest.raises(UpdateError):
                in_flight.save()
            assert engine.stored.hashes() == set()

    def test_forced_collision_at_create_never_overwrites(self, engine, stored):
        existing, fresh = same_tag_tokens(2)
        with next_tokens(existing):
            saved(engine, value="theirs")
        before = stored(existing)
        with next_tokens(existing, fresh):
            token = saved(engine, value="mine")
        assert token == fresh
        assert stored(existing) == before
        assert engine.store_class(existing)["value"] == "theirs"
        assert engine.store_class(fresh)["value"] == "mine"

    def test_forced_collision_at_renew_never_overwrites(self, engine, stored):
        existing, mine, fresh = same_tag_tokens(3)
        with next_tokens(existing, mine):
            saved(engine, value="theirs")
            saved(engine, value="mine")
        before = stored(existing)
        session = loaded(engine, mine)
        with next_tokens(existing, fresh):
            session.renew_token()
        assert session.session_key == fresh
        assert stored(existing) == before
        assert engine.stored.hashes() == hashed(existing, fresh)
        assert engine.store_class(fresh)["value"] == "mine"
        # Nor does a cache in front answer for the taken token with our data.
        assert engine.store_class(existing)["value"] == "theirs"

    def test_a_broken_random_source_fails_create_and_overwrites_nothing(
        self, engine, stored
    ):
        (existing,) = same_tag_tokens(1)
        with next_tokens(existing):
            saved(engine, value="theirs")
        before = stored(existing)
        with mock.patch.object(tokens, "new_token", lambda: existing):
            with pytest.raises(CreateError):
                saved(engine, value="mine")
        assert stored(existing) == before
        assert engine.stored.hashes() == hashed(existing)

    def test_a_broken_random_source_fails_renewal_and_overwrites_nothing(
        self, engine, stored
    ):
        existing, mine = same_tag_tokens(2)
        with next_tokens(existing, mine):
            saved(engine, value="theirs")
            saved(engine, value="mine")
        before = {t: stored(t) for t in (existing, mine)}
        session = loaded(engine, mine)
        # secrets itself is broken: every token drawn is the existing one.
        with (
            mock.patch("secrets.token_urlsafe", lambda nbytes=None: existing),
            pytest.raises(CreateError),
        ):
            session.renew_token()
        assert {t: stored(t) for t in (existing, mine)} == before
        assert engine.store_class(existing)["value"] == "theirs"
        assert engine.store_class(mine)["value"] == "mine"


# -- threads against PostgreSQL and Redis ---------------------------------------------


def in_threads(*actions, timeout=60):
    """Run each action in its own thread; re-raise the first failure."""
    results, errors = [None] * len(actions), []

    def run(index, action):
        try:
            results[index] = action()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=run, args=(i, action), daemon=True)
        for i, action in enumerate(actions)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        assert not thread.is_alive(), "a request hung"
    if errors:
        raise errors[0]
    return results


def while_in_flight(in_flight, slow_request, other_request):
    """``other_request`` runs, start to end, in another thread while
    ``slow_request`` (through a slow view) sits between load and save."""
    barrier = threading.Barrier(2, timeout=30)

    def hold():
        barrier.wait()  # loaded: let the other request run
        barrier.wait()  # it finished: go on to the save

    def other():
        barrier.wait()
        try:
            return other_request()
        finally:
            barrier.wait()

    in_flight(hold)
    return in_threads(slow_request, other)


def request(path, token, method="GET"):
    return lambda: Transport("wsgi").request(
        path, method=method, cookie=f"{NAME}={token}"
    )


def start(engine):
    return saved(engine, value="cart")


class TestThreads:
    pytestmark = threaded

    def test_logout_during_an_in_flight_write(self, engine, in_flight):
        token = start(engine)
        slow, logout = while_in_flight(
            in_flight,
            request("/slow/write/", token),
            request("/logout-session/", token),
        )
        assert session_cookie(logout).value == ""
        assert slow.status_code == 400  # SessionInterrupted
        assert session_cookie(slow) is None
        assert engine.stored.hashes() == set()

    def test_logout_during_an_in_flight_touch(self, engine, in_flight, settings):
        settings.SCS = {"IDLE_TIMEOUT": 600, "TOUCH_INTERVAL": 60}
        with time_machine.travel(CLOCK, tick=False) as clock:
            token = start(engine)
            clock.shift(120)  # the slow read is due to touch
            slow, _ = while_in_flight(
                in_flight,
                request("/slow/read/", token),
                request("/logout-session/", token),
            )
            assert engine.stored.hashes() == set()  # expiry judged on this clock
        assert slow.status_code == 400
        assert session_cookie(slow) is None

    @pytest.mark.parametrize("save_every_request", [False, True])
    def test_renew_during_an_in_flight_request(
        self, engine, in_flight, settings, save_every_request
    ):
        settings.SESSION_SAVE_EVERY_REQUEST = save_every_request
        token = start(engine)
        slow, renew = while_in_flight(
            in_flight,
            request("/slow/read/", token),
            request("/renew/", token),
        )
        renewed = session_cookie(renew).value
        assert renewed != token
        # Never a Set-Cookie with the old token, which would log the browser
        # out once it arrived after the renewal's.
        assert session_cookie(slow) is None
        assert slow.status_code == (400 if save_every_request else 200)
        assert engine.stored.hashes() == hashed(renewed)
        assert json_body(request("/read/", renewed)())["value"] == "cart"
        assert json_body(request("/read/", token)())["value"] is None

    def test_cleanup_during_an_in_flight_write(self, engine, in_flight, settings):
        settings.SCS = {"ABSOLUTE_TIMEOUT": 60}
        with time_machine.travel(CLOCK, tick=False) as clock:
            token = start(engine)
            clock.shift(59)

            def expire_and_clean():
                clock.shift(1)
                engine.store_class.clear_expired()

            slow, _ = while_in_flight(
                in_flight, request("/slow/write/", token), expire_and_clean
            )
            assert engine.stored.hashes() == set()
        assert slow.status_code == 400
        assert session_cookie(slow) is None

    def test_concurrent_creates_forced_onto_one_token_keep_both(self, engine):
        forced, *_ = same_tag_tokens(1)
        first_draws = {}
        real = tokens.new_token
        barrier = threading.Barrier(2, timeout=30)

        def new_token():
            # Each thread's first token is the same one.
            me = threading.get_ident()
            if me not in first_draws:
                first_draws[me] = forced
                barrier.wait()  # both hold it: insert at once
                return forced
            return real()

        with mock.patch.object(tokens, "new_token", new_token):
            a, b = in_threads(
                lambda: saved(engine, value="a"), lambda: saved(engine, value="b")
            )
        assert forced in (a, b) and a != b
        assert engine.stored.hashes() == hashed(a, b)
        assert engine.store_class(a)["value"] == "a"
        assert engine.store_class(b)["value"] == "b"

    def test_concurrent_renewals_forced_onto_one_token_keep_both(self, engine):
        forced, one, two = same_tag_tokens(3)
        with next_tokens(one, two):
            saved(engine, value="one")
            saved(engine, value="two")
        first_draws = set()
        real = tokens.new_token
        lock = threading.Lock()
        barrier = threading.Barrier(2, timeout=30)

        def new_token():
            me = threading.get_ident()
            with lock:
                first = me not in first_draws
                first_draws.add(me)
            if first:
                barrier.wait()
                return forced
            return real()

        def renew(token):
            session = loaded(engine, token)
            session.renew_token()
            return session.session_key

        with mock.patch.object(tokens, "new_token", new_token):
            new_one, new_two = in_threads(lambda: renew(one), lambda: renew(two))
        assert forced in (new_one, new_two) and new_one != new_two
        assert engine.stored.hashes() == hashed(new_one, new_two)
        assert engine.store_class(new_one)["value"] == "one"
        assert engine.store_class(new_two)["value"] == "two"


def new_sessions(response, token):
    """The new token ``response`` sets, if it started a session of its own."""
    morsel = session_cookie(response)
    if morsel is None or morsel.value == token:
        return []
    return [morsel.value]


def together(*actions):
    """Run the actions in threads released at the same moment."""
    barrier = threading.Barrier(len(actions), timeout=30)

    def released(action):
        def run():
            barrier.wait()
            return action()

        return run

    return in_threads(*(released(action) for action in actions))


class TestFreeRunningThreads:
    pytestmark = threaded
    ROUNDS = 10

    def test_logout_racing_a_write_never_leaves_a_session(self, engine):
        for _ in range(self.ROUNDS):
            token = start(engine)
            earlier = engine.stored.hashes() - hashed(token)
            write, _ = together(
                request("/write/", token), request("/logout-session/", token)
            )
            # The write landed first (and the logout then removed it), found
            # the session gone on saving (400), or loaded after the logout and
            # started a new session under a new token: never the old token.
            assert write.status_code in (200, 400)
            assert engine.stored.hashes() == earlier | hashed(
                *new_sessions(write, token)
            )

    def test_renew_racing_a_write_leaves_exactly_the_new_token(self, engine):
        for _ in range(self.ROUNDS):
            token = start(engine)
            earlier = engine.stored.hashes() - hashed(token)
            write, renew = together(
                request("/write/", token), request("/renew/", token)
            )
            assert write.status_code in (200, 400)
            renewed = session_cookie(renew).value
            assert engine.stored.hashes() == earlier | hashed(
                renewed, *new_sessions(write, token)
            )
            assert json_body(request("/read/", token)())["value"] is None


def write_key(token, key, value):
    return lambda: Transport("wsgi").get(
        "/write-key/", cookie=f"{NAME}={token}", query={"key": key, "value": value}
    )


class TestNoLostWrites:
    """DESIGN §8: concurrent writes to different keys of one session both
    survive; to the same key, the last writer wins; never a torn blob."""

    pytestmark = threaded
    ROUNDS = 10

    def assert_decodable(self, engine, token):
        stored = engine.stored.get(tokens.hash_token(token))
        assert codec.decode(stored["data"], tokens.hash_token(token)) is not None

    def test_writes_to_different_keys_both_survive(self, engine):
        token = start(engine)
        for round_ in range(self.ROUNDS):
            first, second = together(
                write_key(token, f"a{round_}", "from a"),
                write_key(token, f"b{round_}", "from b"),
            )
            assert (first.status_code, second.status_code) == (200, 200)
            self.assert_decodable(engine, token)
        data = dict(engine.store_class(token).items())
        for round_ in range(self.ROUNDS):
            assert data[f"a{round_}"] == "from a"
            assert data[f"b{round_}"] == "from b"
        assert data["value"] == "cart"

    def test_writes_to_one_key_leave_one_of_the_values(self, engine):
        token = start(engine)
        for round_ in range(self.ROUNDS):
            written = {f"a{round_}", f"b{round_}"}
            responses = together(
                *(write_key(token, "value", value) for value in sorted(written))
            )
            assert [r.status_code for r in responses] == [200, 200]
            self.assert_decodable(engine, token)
            assert engine.store_class(token)["value"] in written
