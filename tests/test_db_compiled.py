"""The db engine's read, write and touch, compiled once per connection,
against the ORM's.

scs_django.backends.db runs the ORM's own SQL for reading, writing and touching
a session, compiled once per connection wrapper and model; these check that
what it sends and what it returns are what the ORM would have sent and
returned, on PostgreSQL, MariaDB and SQLite.
"""

import functools
import threading
from datetime import timedelta
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connections, transaction
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from scs_django.backends import db
from scs_django.backends.base import Loaded, Record
from scs_django.models import Session
from tests.utils import SESSION_TABLE

pytestmark = pytest.mark.django_db(databases="__all__")

KEY = "a" * 64


def stored(key_hash=KEY, *, expiry_in=timedelta(hours=1), version=7):
    now = timezone.now()
    return Session.objects.create(
        key_hash=key_hash,
        data=b"\x00payload\xff",
        created_at=now - timedelta(minutes=5),
        absolute_expiry=now + timedelta(days=1),
        expiry=now + expiry_in,
        last_seen=now - timedelta(minutes=1),
        version=version,
    )


def record(version, user_id=None):
    now = timezone.now()
    return Record(
        payload=b"\x01written\xfe%d" % version,
        created_at=now - timedelta(minutes=4),
        absolute_expiry=now + timedelta(days=2),
        expiry=now + timedelta(hours=2),
        last_seen=now,
        version=version,
        user_id=user_id,
    )


def orm_write(key_hash, record, now, version):
    rows = Session.objects.filter(key_hash=key_hash, expiry__gt=now)
    return rows.filter(version=version).update(
        data=record.payload,
        created_at=record.created_at,
        absolute_expiry=record.absolute_expiry,
        expiry=record.expiry,
        last_seen=record.last_seen,
        version=record.version,
        user_id=record.user_id,
    )


def orm_bump(key_hash, now, expiry):
    rows = Session.objects.filter(key_hash=key_hash, expiry__gt=now)
    return rows.update(last_seen=now, expiry=expiry)


def sent(alias, action):
    """What action returns, the SQL it executes and the statements logged."""
    connection = connections[alias]
    executed = []

    def wrapper(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    with CaptureQueriesContext(connection) as ctx, connection.execute_wrapper(wrapper):
        result = action()
    return result, executed, [q["sql"] for q in ctx.captured_queries]


def row_of(key_hash=KEY):
    row = Session.objects.get(key_hash=key_hash)
    return (
        bytes(row.data),
        row.created_at,
        row.absolute_expiry,
        row.expiry,
        row.last_seen,
        row.version,
        row.user_id,
    )


def orm_rows(key_hash):
    # By key alone: the engine tells an expired row from a missing one.
    rows = Session.objects.filter(key_hash=key_hash)
    return rows.values_list("data", "last_seen", "version", "expiry")[:1]


def compiled_read(alias):
    return db._compiled_for(db._READ, Session, alias, (KEY,))


def test_compiled_sql_is_the_orms(db_alias):
    orm_sql, orm_params = orm_rows(KEY).query.get_compiler(db_alias).as_sql()
    compiled = compiled_read(db_alias)
    assert compiled is not None
    assert compiled.sql == orm_sql
    assert len(compiled.params) == len(orm_params) == 1
    [(key_slot, _)] = compiled.slots
    assert orm_params[key_slot] == KEY


def test_sent_statement_is_the_orms_with_the_values_in_place(db_alias):
    # The logged statement has the parameters interpolated, so this compares
    # the SQL and the prepared values (datetimes are strings on SQLite).
    stored()
    now = timezone.now()
    connection = connections[db_alias]
    with CaptureQueriesContext(connection) as orm:
        expected = list(orm_rows(KEY))
    with CaptureQueriesContext(connection) as ours:
        loaded = db.SessionStore()._fetch(KEY, now)
    assert [q["sql"] for q in ours.captured_queries] == [
        q["sql"] for q in orm.captured_queries
    ]
    assert loaded == Loaded(*expected[0][:3])


def test_fetch_returns_bytes_an_aware_datetime_and_the_version(db_alias):
    row = stored(version=7)
    loaded = db.SessionStore()._fetch(KEY, timezone.now())
    assert type(loaded.payload) is bytes
    assert loaded.payload == b"\x00payload\xff"
    assert timezone.is_aware(loaded.last_seen)
    assert loaded.last_seen == row.last_seen
    assert loaded.version == 7


def test_naive_datetimes_without_use_tz_match_the_orm(db_alias, settings):
    stored()
    settings.USE_TZ = False
    now = timezone.now()
    loaded = db.SessionStore()._fetch(KEY, now)
    assert timezone.is_naive(loaded.last_seen)
    assert loaded == Loaded(*list(orm_rows(KEY))[0][:3])


def test_a_read_compiled_before_use_tz_changed_is_compiled_again(db_alias, settings):
    # MySQL's backend converts datetimes to aware ones only under USE_TZ, and
    # chooses that converter when the statement is compiled.
    stored()
    store = db.SessionStore()
    assert timezone.is_aware(store._fetch(KEY, timezone.now()).last_seen)
    settings.USE_TZ = False
    loaded = store._fetch(KEY, timezone.now())
    assert timezone.is_naive(loaded.last_seen)
    assert loaded == Loaded(*list(orm_rows(KEY))[0][:3])
    settings.USE_TZ = True
    assert store._fetch(KEY, timezone.now()) == Loaded(*list(orm_rows(KEY))[0][:3])


def test_fetch_returns_none_for_an_expired_row_and_an_unknown_hash(db_alias):
    row = stored()
    store = db.SessionStore()
    assert store._fetch(KEY, row.expiry - timedelta(microseconds=1)) is not None
    assert store._dead_hash is None
    assert store._fetch("b" * 64, timezone.now()) is None
    assert store._dead_hash is None  # unknown: nothing to report
    assert store._fetch(KEY, row.expiry) is None  # expiry is exclusive
    assert store._dead_hash == KEY  # stored but expired: session_expired at load
    store._dead_hash = None
    assert store._fetch(KEY, row.expiry + timedelta(seconds=1)) is None
    assert store._dead_hash == KEY


def test_async_fetch_returns_the_same(db_alias):
    stored()
    store, now = db.SessionStore(), timezone.now()
    assert async_to_sync(store._afetch)(KEY, now) == store._fetch(KEY, now)
    assert async_to_sync(store._afetch)("b" * 64, now) is None


def test_a_read_is_one_logged_statement_seen_by_execute_wrappers(db_alias):
    stored()
    connection = connections[db_alias]
    wrapped = []

    def wrapper(execute, sql, params, many, context):
        wrapped.append(sql)
        return execute(sql, params, many, context)

    store = db.SessionStore()
    store._fetch(KEY, timezone.now())  # compiled, on a first read
    with CaptureQueriesContext(connection) as ctx, connection.execute_wrapper(wrapper):
        assert store._fetch(KEY, timezone.now()) is not None
    assert len(ctx.captured_queries) == 1, ctx.captured_queries
    assert SESSION_TABLE in ctx.captured_queries[0]["sql"]
    assert wrapped == [compiled_read(db_alias).sql]


def test_compiled_once_per_connection_model_and_statement(db_alias, user_factory):
    stored()
    user_id = user_factory().pk
    connection = connections[db_alias]
    db._compiled.pop(connection, None)
    store = db.SessionStore()
    with mock.patch.object(db, "_compile", wraps=db._compile) as compile_:
        for version in range(7, 10):
            now = timezone.now()
            assert store._fetch(KEY, now) is not None
            assert store._update(KEY, record(version + 1, user_id), now, version)
            assert store._bump(KEY, now, now + timedelta(hours=1))
    logged_in, anonymous = (False,) * 10, (False,) * 9 + (True,)
    assert {call.args for call in compile_.call_args_list} == {
        (db._READ, Session, db_alias, (False,)),
        (db._WRITE, Session, db_alias, logged_in),
        (db._TOUCH, Session, db_alias, (False,) * 4),
    }
    assert compile_.call_count == 3
    store._update(KEY, record(11), timezone.now(), 10)  # no user: another shape
    assert set(db._compiled[connection]) == {
        (Session, db._READ, (False,)),
        (Session, db._WRITE, logged_in),
        (Session, db._WRITE, anonymous),
        (Session, db._TOUCH, (False,) * 4),
    }


def test_falls_back_to_the_orm_when_the_sql_cannot_be_reused(db_alias):
    row = stored()
    connection = connections[db_alias]
    db._compiled.pop(connection, None)
    with mock.patch.object(db, "_compile", return_value=None):
        loaded = db.SessionStore()._fetch(KEY, timezone.now())
        assert db.SessionStore()._fetch(KEY, row.expiry) is None
    assert loaded == Loaded(b"\x00payload\xff", row.last_seen, 7)
    assert type(loaded.payload) is bytes
    db._compiled.pop(connection, None)


READ_KEY = (Session, db._READ, (False,))


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_each_thread_compiles_for_and_reads_on_its_own_connection(db_alias):
    stored()
    main = connections[db_alias]
    db.SessionStore()._fetch(KEY, timezone.now())  # compiled on main's connection
    both_running = threading.Barrier(2, timeout=10)
    seen = {}
    errors = []

    def read(name):
        try:
            connection = connections[db_alias]
            had_entry = connection in db._compiled
            both_running.wait()  # so the two connections exist at the same time
            with CaptureQueriesContext(connection) as ctx:
                loaded = db.SessionStore()._fetch(KEY, timezone.now())
            seen[name] = (connection, had_entry, loaded, len(ctx.captured_queries))
            seen[name] += (db._compiled[connection][READ_KEY],)
        except Exception as exc:  # reported below, with the thread's traceback
            errors.append(exc)
        finally:
            connections.close_all()

    with CaptureQueriesContext(main) as on_main:
        threads = [threading.Thread(target=read, args=(n,)) for n in "ab"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
    assert not errors, errors
    (conn_a, had_a, loaded_a, count_a, compiled_a) = seen["a"]
    (conn_b, had_b, loaded_b, count_b, compiled_b) = seen["b"]
    assert len({id(main), id(conn_a), id(conn_b)}) == 3
    assert not had_a and not had_b  # nothing inherited from another thread
    assert compiled_a is not compiled_b
    assert compiled_a is not db._compiled[main][READ_KEY]
    assert compiled_a.sql == compiled_b.sql == db._compiled[main][READ_KEY].sql
    assert loaded_a == loaded_b and loaded_a is not None and loaded_a.version == 7
    assert count_a == count_b == 1
    assert on_main.captured_queries == []


# -- writes and touches -------------------------------------------------------------


@pytest.mark.parametrize("with_user", [False, True], ids=["anonymous", "user"])
@pytest.mark.parametrize("old_version", [7, 6, None], ids=["current", "stale", "none"])
def test_a_write_sends_the_orms_statement_and_changes_the_same_rows(
    db_alias, user_factory, with_user, old_version
):
    stored(version=7)
    new = record(8, user_factory().pk if with_user else None)
    now = timezone.now()
    before = row_of()
    orm_count, orm_sql, orm_logged = sent(
        db_alias, lambda: orm_write(KEY, new, now, old_version)
    )
    orm_after = row_of()
    Session.objects.filter(key_hash=KEY).update(
        data=before[0], version=7, user_id=None
    )  # back as it was, for ours
    written, our_sql, our_logged = sent(
        db_alias, lambda: db.SessionStore()._update(KEY, new, now, old_version)
    )
    compiled = db._compiled_for(
        db._WRITE, Session, db_alias, (KEY, now, old_version, *db._written(new))
    )
    assert compiled is not None
    assert our_sql == orm_sql == [compiled.sql]
    assert our_logged == orm_logged
    assert orm_count == (1 if old_version == 7 else 0)
    assert written is (orm_count == 1)
    assert row_of() == orm_after
    if old_version == 7:
        assert row_of() == (*new[:7],)
    else:
        assert row_of()[5:] == (7, None)


def test_the_user_is_written_and_cleared(db_alias, user_factory):
    stored(version=1)
    user_id = user_factory().pk
    store = db.SessionStore()
    for version, user in enumerate([user_id, None, user_id, user_id, None], 2):
        assert store._update(KEY, record(version, user), timezone.now(), version - 1)
        assert row_of()[5:] == (version, user)
    # Each shape is the ORM's: Django 5.2 writes "user_id" = NULL into the
    # SQL, later versions send NULL as a parameter.
    for version, user in enumerate([None, user_id], 7):
        now = timezone.now()
        values = (KEY, now, version - 1, *db._written(record(version, user)))
        compiled = db._compiled_for(db._WRITE, Session, db_alias, values)
        rec = record(version, user)
        _, executed, _ = sent(db_alias, functools.partial(orm_write, KEY, rec, now, 0))
        assert executed == [compiled.sql]
        assert store._update(KEY, record(version, user), now, version - 1)
        assert row_of()[5:] == (version, user)


def test_the_compiled_write_returns_the_row_count(db_alias):
    stored(version=7)
    store, now = db.SessionStore(), timezone.now()
    new = record(8)
    values = (KEY, now, 7, *db._written(new))
    compiled = db._compiled_for(db._WRITE, Session, db_alias, values)
    assert db._run_update(compiled, db_alias, (KEY, now, 6, *db._written(new))) == 0
    assert db._run_update(compiled, db_alias, values) == 1
    assert db._run_update(compiled, db_alias, values) == 0  # now at version 8
    assert store._update(KEY, record(9), now, 8) is True
    assert store._update(KEY, record(10), now, 8) is False
    assert row_of()[5] == 9


def test_a_touch_or_write_that_changes_nothing_still_finds_the_session(db_alias):
    # MySQL counts the rows an UPDATE changed, not those it matched, unless
    # the client asks otherwise (Django's backend does): a repeated touch
    # within the same microsecond must not read as a session ended elsewhere.
    stored(version=7)
    store, now = db.SessionStore(), timezone.now()
    expiry = now + timedelta(minutes=30)
    assert store._bump(KEY, now, expiry) is True
    assert store._bump(KEY, now, expiry) is True
    same = Record(*row_of()[:6], None)  # every written column as it is stored
    assert store._update(KEY, same, now, 7) is True
    assert row_of() == (*same[:6], None)


def test_an_expired_session_is_never_written_or_touched(db_alias):
    row = stored(version=7, expiry_in=timedelta(minutes=1))
    before = row_of()
    store = db.SessionStore()
    for now in (row.expiry, row.expiry + timedelta(seconds=1)):  # expiry: exclusive
        assert store._update(KEY, record(8), now, 7) is False
        assert store._bump(KEY, now, now + timedelta(hours=1)) is False
    assert row_of() == before
    now = row.expiry - timedelta(microseconds=1)
    assert store._bump(KEY, now, now + timedelta(hours=1)) is True
    assert store._update(KEY, record(8), now, 7) is True


def test_a_touch_sends_the_orms_statement_and_moves_the_deadlines(db_alias):
    stored(version=7)
    now = timezone.now()
    expiry = now + timedelta(minutes=30)
    orm_count, orm_sql, orm_logged = sent(db_alias, lambda: orm_bump(KEY, now, expiry))
    orm_after = row_of()
    Session.objects.filter(key_hash=KEY).update(
        last_seen=now - timedelta(minutes=1), expiry=now + timedelta(hours=1)
    )
    touched, our_sql, our_logged = sent(
        db_alias, lambda: db.SessionStore()._bump(KEY, now, expiry)
    )
    compiled = db._compiled_for(db._TOUCH, Session, db_alias, (KEY, now, now, expiry))
    assert compiled is not None
    assert our_sql == orm_sql == [compiled.sql]
    assert our_logged == orm_logged
    assert orm_count == 1 and touched is True
    assert row_of() == orm_after
    assert row_of()[3:5] == (expiry, now)
    assert row_of()[5] == 7  # a touch leaves the version alone
    assert db.SessionStore()._bump("b" * 64, now, expiry) is False


def test_writes_without_use_tz_match_the_orm(db_alias, settings):
    stored(version=7)
    db.SessionStore()._update(KEY, record(8), timezone.now(), 7)  # compiled, aware
    settings.USE_TZ = False
    now, new = timezone.now(), record(9)
    Session.objects.filter(key_hash=KEY).update(version=8)
    _, _, orm_logged = sent(db_alias, lambda: orm_write(KEY, new, now, 8))
    orm_after = row_of()
    Session.objects.filter(key_hash=KEY).update(version=8)
    _, _, our_logged = sent(
        db_alias, lambda: db.SessionStore()._update(KEY, new, now, 8)
    )
    assert our_logged == orm_logged
    assert row_of() == orm_after
    _, _, orm_logged = sent(db_alias, lambda: orm_bump(KEY, now, now))
    _, _, our_logged = sent(db_alias, lambda: db.SessionStore()._bump(KEY, now, now))
    assert our_logged == orm_logged


@pytest.mark.parametrize("action", ["write", "touch"])
def test_a_failed_write_marks_the_transaction_for_rollback(db_alias, action):
    stored(version=7)
    connection = connections[db_alias]
    store, now = db.SessionStore(), timezone.now()
    store._update(KEY, record(8), now, 7)  # compiled, before the failure
    store._bump(KEY, now, now + timedelta(hours=1))

    def fail(execute, sql, params, many, context):
        raise DatabaseError("refused")

    with transaction.atomic(using=db_alias):
        with connection.execute_wrapper(fail), pytest.raises(DatabaseError):
            if action == "write":
                store._update(KEY, record(9), now, 8)
            else:
                store._bump(KEY, now, now + timedelta(hours=2))
        assert connection.needs_rollback  # as QuerySet.update leaves it
    assert row_of()[5] == 8


def test_the_orm_update_is_not_used_once_compiled(db_alias):
    stored(version=7)
    store, now = db.SessionStore(), timezone.now()
    with mock.patch.object(QuerySet, "update", side_effect=AssertionError("ORM")):
        assert store._update(KEY, record(8), now, 7) is True
        assert store._bump(KEY, now, now + timedelta(hours=1)) is True


@pytest.mark.parametrize(
    "cannot",
    [
        pytest.param({"return_value": None}, id="sql-not-reusable"),
        pytest.param({"side_effect": ValueError("probe")}, id="probe-refused"),
        pytest.param({"side_effect": ValidationError("probe")}, id="probe-invalid"),
    ],
)
def test_writes_fall_back_to_the_orm_when_the_sql_cannot_be_reused(db_alias, cannot):
    stored(version=7)
    connection = connections[db_alias]
    db._compiled.pop(connection, None)
    store, now = db.SessionStore(), timezone.now()
    updates = []
    update = QuerySet.update

    def orm_update(rows, **fields):
        updates.append(fields)
        return update(rows, **fields)

    with (
        mock.patch.object(db, "_compile", **cannot),
        mock.patch.object(QuerySet, "update", orm_update),
    ):
        assert store._update(KEY, record(8), now, 7) is True
        assert store._update(KEY, record(9), now, 7) is False
        assert store._bump(KEY, now, now + timedelta(hours=3)) is True
    assert len(updates) == 3
    assert row_of()[3:6] == (now + timedelta(hours=3), now, 8)
    db._compiled.pop(connection, None)


def test_async_writes_and_touches(db_alias):
    stored(version=7)
    store, now = db.SessionStore(), timezone.now()
    assert async_to_sync(store._aupdate)(KEY, record(8), now, 7) is True
    assert async_to_sync(store._aupdate)(KEY, record(9), now, 7) is False
    expiry = now + timedelta(hours=3)
    assert async_to_sync(store._abump)(KEY, now, expiry) is True
    assert async_to_sync(store._abump)("b" * 64, now, expiry) is False
    assert row_of()[3:6] == (expiry, now, 8)
