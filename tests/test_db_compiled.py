"""The db engine's read, compiled once per connection, against the ORM's.

scs_django.backends.db runs the ORM's own SQL for reading a session, compiled
once per connection wrapper and model; these check that what it sends and what
it returns are what the ORM would have sent and returned, on PostgreSQL and
SQLite.
"""

import threading
from datetime import timedelta
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from scs_django.backends import db
from scs_django.backends.base import Loaded
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


def orm_rows(key_hash, now):
    rows = Session.objects.filter(key_hash=key_hash, expiry__gt=now)
    return rows.values_list("data", "last_seen", "version")[:1]


def test_compiled_sql_is_the_orms(db_alias):
    now = timezone.now()
    orm_sql, orm_params = orm_rows(KEY, now).query.get_compiler(db_alias).as_sql()
    compiled = db._compiled_fetch(Session, db_alias)
    assert compiled is not None
    assert compiled.sql == orm_sql
    assert len(compiled.params) == len(orm_params) == 2
    assert {compiled.key_slot, compiled.now_slot} == {0, 1}
    assert orm_params[compiled.key_slot] == KEY


def test_sent_statement_is_the_orms_with_the_values_in_place(db_alias):
    # The logged statement has the parameters interpolated, so this compares
    # the SQL and the prepared values (datetimes are strings on SQLite).
    stored()
    now = timezone.now()
    connection = connections[db_alias]
    with CaptureQueriesContext(connection) as orm:
        expected = list(orm_rows(KEY, now))
    with CaptureQueriesContext(connection) as ours:
        loaded = db.SessionStore()._fetch(KEY, now)
    assert [q["sql"] for q in ours.captured_queries] == [
        q["sql"] for q in orm.captured_queries
    ]
    assert loaded == Loaded(*expected[0])


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
    assert loaded == Loaded(*list(orm_rows(KEY, now))[0])


def test_fetch_returns_none_for_an_expired_row_and_an_unknown_hash(db_alias):
    row = stored()
    store = db.SessionStore()
    assert store._fetch(KEY, row.expiry - timedelta(microseconds=1)) is not None
    assert store._fetch(KEY, row.expiry) is None  # expiry is exclusive
    assert store._fetch(KEY, row.expiry + timedelta(seconds=1)) is None
    assert store._fetch("b" * 64, timezone.now()) is None


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
    assert wrapped == [db._compiled_fetch(Session, db_alias).sql]


def test_compiled_once_per_connection_and_model(db_alias):
    stored()
    connection = connections[db_alias]
    db._compiled.pop(connection, None)
    with mock.patch.object(db, "_compile_fetch", wraps=db._compile_fetch) as compile_:
        for _ in range(3):
            assert db.SessionStore()._fetch(KEY, timezone.now()) is not None
    compile_.assert_called_once_with(Session, db_alias)
    assert set(db._compiled[connection]) == {Session}


def test_falls_back_to_the_orm_when_the_sql_cannot_be_reused(db_alias):
    row = stored()
    connection = connections[db_alias]
    db._compiled.pop(connection, None)
    with mock.patch.object(db, "_compile_fetch", return_value=None):
        loaded = db.SessionStore()._fetch(KEY, timezone.now())
        assert db.SessionStore()._fetch(KEY, row.expiry) is None
    assert loaded == Loaded(b"\x00payload\xff", row.last_seen, 7)
    assert type(loaded.payload) is bytes
    db._compiled.pop(connection, None)


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
            seen[name] += (db._compiled[connection][Session],)
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
    assert compiled_a is not db._compiled[main][Session]
    assert compiled_a.sql == compiled_b.sql == db._compiled[main][Session].sql
    assert loaded_a == loaded_b and loaded_a is not None and loaded_a.version == 7
    assert count_a == count_b == 1
    assert on_main.captured_queries == []
