"""Deleting expired sessions: exactly the expired ones, in short bounded batches."""

import io
import re
from contextlib import contextmanager, nullcontext
from datetime import timedelta
from unittest import mock

import pytest
from django.core.management import CommandError, call_command, get_commands
from django.db import OperationalError, connections
from django.test.utils import CaptureQueriesContext

from scs_django import cleanup
from scs_django.backends.db import SessionStore
from scs_django.cleanup import delete_expired
from scs_django.models import Session
from tests.utils import START, Tty

pytestmark = pytest.mark.django_db(databases="__all__")

HOUR = timedelta(hours=1)
SUMMARY = re.compile(r"deleted (\d+) expired sessions in \d+\.\d\ds; (\d+) left")


@pytest.fixture(autouse=True)
def one_hour_sessions(settings):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 3600}


def store_session(value="x"):
    store = SessionStore()
    store["value"] = value
    store.save()
    return store


def stored_hashes(alias):
    return set(Session.objects.using(alias).values_list("key_hash", flat=True))


def make_expired(clock, count):
    """``count`` sessions created an hour and a minute before START + 1 hour."""
    clock.move_to(START - timedelta(minutes=1))
    stores = [store_session() for _ in range(count)]
    clock.move_to(START + HOUR)
    return stores


@contextmanager
def statements_take_a_second(alias, fake_clock, fail_on=None):
    """Make every DELETE on ``alias`` advance ``fake_clock`` by one second, or
    fail with OperationalError from the ``fail_on``-th one on."""
    deletes = 0

    def wrapper(execute, sql, params, many, context):
        nonlocal deletes
        if sql.lstrip().upper().startswith("DELETE"):
            deletes += 1
            if fail_on is not None and deletes >= fail_on:
                raise OperationalError("server closed the connection unexpectedly")
            fake_clock[0] += 1.0
        return execute(sql, params, many, context)

    with (
        connections[alias].execute_wrapper(wrapper),
        mock.patch.object(cleanup, "monotonic", lambda: fake_clock[0]),
    ):
        yield


def test_deletes_exactly_the_expired_sessions(db_alias, clock):
    clock.move_to(START - timedelta(minutes=30))
    long_dead = [store_session() for _ in range(3)]
    clock.move_to(START)
    dies_now = store_session()
    clock.move_to(START + timedelta(microseconds=1))
    lives_a_microsecond_longer = store_session()
    clock.move_to(START + timedelta(minutes=30))
    live = [store_session("kept") for _ in range(2)]
    clock.move_to(START + HOUR)

    result = delete_expired()

    assert (result.deleted, result.left, result.dry_run) == (4, 0, False)
    assert stored_hashes(db_alias) == {
        s.key_hash for s in [lives_a_microsecond_longer, *live]
    }
    assert not {s.key_hash for s in [*long_dead, dies_now]} & stored_hashes(db_alias)
    for store in live:
        assert SessionStore(store.session_key)["value"] == "kept"


def test_nothing_expired_costs_one_count(db_alias, clock):
    store_session()
    with CaptureQueriesContext(connections[db_alias]) as ctx:
        result = delete_expired()
    assert (result.deleted, result.batches, result.left) == (0, 0, 0)
    assert len(ctx.captured_queries) == 1
    assert ctx.captured_queries[0]["sql"].upper().startswith("SELECT COUNT")


def ids_in(sql):
    return {int(pk) for pk in re.search(r" IN \(([^)]*)\)", sql).group(1).split(",")}


def make_expired_in_order(clock, count):
    """``count`` expired sessions, one second apart: the expiry order is known."""
    clock.move_to(START - timedelta(minutes=30))
    stores = []
    for _ in range(count):
        stores.append(store_session())
        clock.shift(timedelta(seconds=1))
    clock.move_to(START + HOUR)
    return stores


# The two ways a batch finds its rows: one DELETE with the batch as a LIMITed
# subquery, or, where the database refuses LIMIT inside IN (MySQL, MariaDB),
# the batch's ids read first. PostgreSQL and SQLite also run MySQL's way, by
# turning off the feature flag it is chosen by; MariaDB runs it as its own.
BATCH_PATHS = [
    pytest.param("postgresql", "subquery", id="postgresql-subquery"),
    pytest.param("postgresql", "ids", id="postgresql-ids"),
    pytest.param("sqlite", "subquery", id="sqlite-subquery"),
    pytest.param("sqlite", "ids", id="sqlite-ids"),
    pytest.param("mariadb", "ids", id="mariadb-ids"),
]
on_batch_paths = pytest.mark.parametrize(
    "db_alias, path", BATCH_PATHS, indirect=["db_alias"]
)


def taking(path, alias):
    """Make delete_expired take ``path`` on ``alias``: forced unless it is the
    database's own."""
    features = connections[alias].features
    subquery = path == "subquery"
    if features.allow_sliced_subqueries_with_in == subquery:
        return nullcontext()
    return mock.patch.object(features, "allow_sliced_subqueries_with_in", subquery)


def test_mariadb_takes_the_ids_path_unforced():
    # So that the "mariadb-ids" runs test MySQL's path as it runs for real.
    assert connections["mariadb"].features.allow_sliced_subqueries_with_in is False


@on_batch_paths
def test_each_batch_is_one_delete_of_at_most_batch_size_rows_oldest_first(
    db_alias, path, clock
):
    expired = make_expired_in_order(clock, 25)
    live = store_session()
    remaining = []
    connection = connections[db_alias]

    with taking(path, db_alias), CaptureQueriesContext(connection) as ctx:
        result = delete_expired(
            batch_size=10,
            progress=lambda done, total: remaining.append(
                (done, total, stored_hashes(db_alias))
            ),
        )

    hashes = [s.key_hash for s in expired]
    assert remaining == [
        (10, 25, {*hashes[10:], live.key_hash}),
        (20, 25, {*hashes[20:], live.key_hash}),
        (25, 25, {live.key_hash}),
    ]
    assert (result.deleted, result.left, result.batches) == (25, 0, 3)
    statements = [
        q["sql"]
        for q in ctx.captured_queries[1:]  # after the count
        # not the progress callback's
        if connection.ops.quote_name("key_hash") not in q["sql"]
    ]
    assert [sql.split()[0] for sql in statements] == ["SELECT", "DELETE"] * 3
    selects, deletes = statements[0::2], statements[1::2]
    if path == "subquery":
        for sql in selects:  # where the next batch will start
            assert "LIMIT 1 OFFSET 9" in sql
        batches = deletes
    else:
        for sql in deletes:
            assert len(ids_in(sql)) == (10 if sql is not deletes[-1] else 5)
        batches = selects
    for sql in batches:
        assert "ORDER BY" in sql and "LIMIT 10" in sql
    # Later batches start at the last expiry deleted, not at the oldest entry.
    later = f"{connection.ops.quote_name('expiry')} >= "
    assert [later in sql for sql in batches] == [False, True, True]


def test_without_limit_in_subqueries_ids_are_read_first(db_alias, clock):
    # MySQL's way: SELECT the ids of a batch, then DELETE them by id.
    expired = make_expired_in_order(clock, 12)
    ids = dict(Session.objects.using(db_alias).values_list("key_hash", "pk"))
    oldest_first = [ids[s.key_hash] for s in expired]
    with (
        taking("ids", db_alias),
        CaptureQueriesContext(connections[db_alias]) as ctx,
    ):
        result = delete_expired(batch_size=5)

    deletes = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("DELETE")]
    assert (result.deleted, result.batches) == (12, 3)
    assert [ids_in(sql) for sql in deletes] == [
        set(oldest_first[:5]),
        set(oldest_first[5:10]),
        set(oldest_first[10:]),
    ]
    assert stored_hashes(db_alias) == set()


@on_batch_paths
def test_a_row_revived_before_the_delete_is_kept(db_alias, path, clock):
    # A clock behind ours (another server) may have moved an expiry forward.
    make_expired(clock, 3)
    first = Session.objects.using(db_alias).order_by("pk").first()

    def revive(execute, sql, params, many, context):
        if sql.startswith("DELETE"):
            Session.objects.using(db_alias).filter(pk=first.pk).update(
                expiry=START + 2 * HOUR
            )
        return execute(sql, params, many, context)

    with taking(path, db_alias), connections[db_alias].execute_wrapper(revive):
        result = delete_expired()

    assert result.deleted == 2
    assert stored_hashes(db_alias) == {first.key_hash}


def test_max_seconds_stops_between_batches_and_reports_what_is_left(db_alias, clock):
    make_expired(clock, 45)
    fake_clock = [0.0]
    with statements_take_a_second(db_alias, fake_clock):
        result = delete_expired(batch_size=10, max_seconds=2.5)

    assert (result.deleted, result.left, result.batches) == (30, 15, 3)
    assert result.seconds == 3.0
    assert result.longest_batch_seconds == 1.0
    assert Session.objects.using(db_alias).count() == 15


def test_command_reports_what_max_seconds_left(db_alias, clock):
    make_expired(clock, 45)
    out = io.StringIO()
    with statements_take_a_second(db_alias, [0.0]):
        call_command(
            "scs_cleanup", "--batch-size", "10", "--max-seconds", "2.5", stdout=out
        )
    assert out.getvalue() == "deleted 30 expired sessions in 3.00s; 15 left\n"


def test_dry_run_counts_and_deletes_nothing(db_alias, clock):
    make_expired(clock, 3)
    store_session()
    before = stored_hashes(db_alias)

    assert delete_expired(dry_run=True).deleted == 3
    out = io.StringIO()
    call_command("scs_cleanup", "--dry-run", stdout=out)

    assert (
        out.getvalue() == "would delete 3 expired sessions (dry run, nothing deleted)\n"
    )
    assert stored_hashes(db_alias) == before


def test_summary_line(db_alias, clock):
    make_expired(clock, 3)
    out = io.StringIO()
    call_command("scs_cleanup", stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert SUMMARY.fullmatch(lines[0]).groups() == ("3", "0")


def test_verbosity(db_alias, clock):
    make_expired(clock, 3)
    quiet, chatty = io.StringIO(), io.StringIO()
    call_command("scs_cleanup", verbosity=0, stdout=quiet)
    make_expired(clock, 3)
    call_command("scs_cleanup", "--batch-size", "2", verbosity=2, stdout=chatty)

    assert quiet.getvalue() == ""
    summary, detail = chatty.getvalue().splitlines()
    assert SUMMARY.fullmatch(summary).groups() == ("3", "0")
    assert re.fullmatch(
        r"2 batches of at most 2 rows; the longest took \d+\.\d{3}s", detail
    )


def test_progress_on_a_terminal(db_alias, clock):
    make_expired(clock, 25)
    out = Tty()
    call_command("scs_cleanup", "--batch-size", "10", stdout=out)
    text = out.getvalue()
    assert "\rDeleting expired sessions: 10/25 (40%)" in text
    assert "\rDeleting expired sessions: 25/25 (100%)" in text
    # The bar is wiped, and the summary stands on a line of its own.
    assert SUMMARY.fullmatch(text.rsplit("\r", 1)[-1].strip())


# Committed for real: the failed statement spoils a surrounding test transaction.
@pytest.mark.django_db(databases="__all__", transaction=True)
def test_database_failure_is_a_command_error_and_keeps_earlier_batches(db_alias, clock):
    make_expired(clock, 25)
    with (
        statements_take_a_second(db_alias, [0.0], fail_on=2),
        pytest.raises(CommandError) as excinfo,
    ):
        call_command("scs_cleanup", "--batch-size", "10", stdout=io.StringIO())
    assert str(excinfo.value) == (
        "Deleting expired sessions failed after 10 were deleted: "
        "server closed the connection unexpectedly"
    )
    assert Session.objects.using(db_alias).count() == 15


@pytest.mark.parametrize("option", ["--batch-size=0", "--max-seconds=0"])
def test_nonsense_options_are_refused(option):
    with pytest.raises(CommandError, match="not a positive number"):
        call_command("scs_cleanup", option)


def test_clearsessions_is_the_same_command(db_alias, clock):
    assert get_commands()["clearsessions"] == "scs_django"
    make_expired(clock, 3)
    live = store_session()
    out = io.StringIO()
    call_command("clearsessions", stdout=out)
    assert SUMMARY.fullmatch(out.getvalue().strip()).groups() == ("3", "0")
    assert stored_hashes(db_alias) == {live.key_hash}


@pytest.mark.parametrize(
    "engine, note",
    [
        (
            "scs_django.backends.cache",
            "the cache expires sessions itself; clear_expired() prunes the "
            "per-user indexes",
        ),
        (
            "django.contrib.sessions.backends.file",
            "django.contrib.sessions.backends.file keeps no scs_django session table",
        ),
    ],
)
def test_other_engines_clear_their_own_sessions(settings, engine, note):
    settings.SESSION_ENGINE = engine
    out = io.StringIO()
    with mock.patch(f"{engine}.SessionStore.clear_expired") as clear_expired:
        call_command("scs_cleanup", stdout=out)
        call_command("scs_cleanup", "--dry-run", stdout=out)
    clear_expired.assert_called_once_with()
    done, dry = out.getvalue().splitlines()
    assert re.fullmatch(
        re.escape(note) + r"; SessionStore\.clear_expired\(\) done in \d+\.\d\ds", done
    )
    assert dry == f"{note}; would call SessionStore.clear_expired() (dry run)"


def test_an_engine_that_cannot_clear_is_a_command_error(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    with (
        mock.patch(
            "django.contrib.sessions.backends.signed_cookies.SessionStore.clear_expired",
            side_effect=NotImplementedError,
        ),
        pytest.raises(CommandError, match="cannot clear expired sessions"),
    ):
        call_command("scs_cleanup")
