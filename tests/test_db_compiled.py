"""The db engine's plain-SQL statements against the ORM's.

scs_django.backends.db reads, writes, touches, creates and renames a session
with statements written once per database alias and model
(scs_django.backends.db_sql), and goes through the ORM for everything else,
and for any of those statements that cannot be written. These check, on
PostgreSQL, MariaDB and SQLite, that each statement leaves the database as
the ORM's equivalent leaves it (compared as the driver returns the row,
without Django's converters) and returns what the ORM would have returned.
"""

import contextlib
import gc
import threading
import weakref
from datetime import timedelta
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from django.contrib.sessions.backends.base import CreateError
from django.db import (
    DatabaseError,
    IntegrityError,
    OperationalError,
    connections,
    router,
    transaction,
)
from django.db.models import CharField, Model, QuerySet
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from scs_django.backends import db, db_sql
from scs_django.backends.base import Loaded, Record
from scs_django.models import Session
from tests.utils import SESSION_TABLE

pytestmark = pytest.mark.django_db(databases="__all__")

KEY = "a" * 64  # the ORM's row, where one is compared with ours
OURS = "c" * 64
COLUMNS = (
    "data",
    "created_at",
    "absolute_expiry",
    "expiry",
    "last_seen",
    "version",
    "user_id",
    "ip",
    "user_agent",
)


@pytest.fixture(autouse=True)
def written_afresh():
    # Each test starts and ends with no statement written on any connection,
    # so a test that makes one unwritable leaves no ORM path behind.
    db_sql._statements.clear()
    yield
    db_sql._statements.clear()


def stored(key_hash=KEY, *, expiry_in=timedelta(hours=1), version=7, now=None):
    now = now or timezone.now()
    return Session.objects.create(
        key_hash=key_hash,
        data=b"\x00payload\xff",
        created_at=now - timedelta(minutes=5),
        absolute_expiry=now + timedelta(days=1),
        expiry=now + expiry_in,
        last_seen=now - timedelta(minutes=1),
        version=version,
        ip="192.0.2.0",
        user_agent="Old/1.0",
    )


def twins(**kwargs):
    """The same session under KEY (for the ORM) and OURS."""
    now = timezone.now()
    return stored(KEY, now=now, **kwargs), stored(OURS, now=now, **kwargs)


def record(version, user_id=None, ip=None, user_agent=""):
    now = timezone.now()
    return Record(
        payload=b"\x01written\xfe%d" % version,
        created_at=now - timedelta(minutes=4),
        absolute_expiry=now + timedelta(days=2),
        expiry=now + timedelta(hours=2),
        last_seen=now,
        version=version,
        user_id=user_id,
        ip=ip,
        user_agent=user_agent,
    )


def fields(record, client=False):
    values = {
        "data": record.payload,
        "created_at": record.created_at,
        "absolute_expiry": record.absolute_expiry,
        "expiry": record.expiry,
        "last_seen": record.last_seen,
        "version": record.version,
        "user_id": record.user_id,
    }
    if client:
        values.update(ip=record.ip, user_agent=record.user_agent)
    return values


# -- the ORM's way to do what each statement does --------------------------------------


def live(key_hash, now):
    return Session.objects.filter(key_hash=key_hash, expiry__gt=now)


def orm_read(key_hash, now):
    rows = Session.objects.filter(key_hash=key_hash)
    row = rows.values_list("data", "last_seen", "version", "expiry").first()
    if row is None or row[3] <= now:
        return None
    return Loaded(bytes(row[0]), row[1], row[2])


def orm_write(key_hash, record, now, version):
    rows = live(key_hash, now).filter(version=version)
    return rows.update(**fields(record)) == 1


def orm_touch(key_hash, now, expiry):
    return live(key_hash, now).update(last_seen=now, expiry=expiry) == 1


def orm_insert(key_hash, record):
    try:
        with transaction.atomic(using=router.db_for_write(Session)):
            Session(key_hash=key_hash, **fields(record, client=True)).save(
                force_insert=True
            )
    except IntegrityError:
        return False
    return True


def orm_rename(key_hash, new_hash, record, now, version):
    rows = live(key_hash, now).filter(version=version)
    try:
        with transaction.atomic(using=router.db_for_write(Session)):
            return rows.update(key_hash=new_hash, **fields(record, client=True)) == 1
    except IntegrityError as exc:
        raise CreateError from exc


# -- what the database holds --------------------------------------------------------


def raw_row(alias, key_hash):
    """The row under key_hash as the driver returns it, no converter applied
    (datetimes are text on SQLite); None when there is none."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(name) for name in COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM {quote(SESSION_TABLE)} "  # noqa: S608
            f"WHERE {quote('key_hash')} = %s",
            [key_hash],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)


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


def sent(alias, action):
    """What action returns, and the SQL it executes."""
    connection = connections[alias]
    executed = []

    def wrapper(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        result = action()
    return result, executed


def session_sql(executed):
    # Without the savepoints around an insert or a rename in a transaction.
    return [sql for sql in executed if SESSION_TABLE in sql]


def statements(alias):
    return db_sql.statements(Session, alias)


# -- reads ----------------------------------------------------------------------------


def test_a_read_returns_what_the_orms_returns(db_alias):
    row = stored()
    now = timezone.now()
    loaded = db.SessionStore()._fetch(KEY, now)
    assert loaded == orm_read(KEY, now)
    assert type(loaded.payload) is bytes
    assert loaded.payload == b"\x00payload\xff"
    assert timezone.is_aware(loaded.last_seen)
    assert loaded.last_seen == row.last_seen
    assert loaded.version == 7
    assert type(loaded.version) is int


def test_naive_datetimes_without_use_tz_match_the_orm(db_alias, settings):
    stored()
    settings.USE_TZ = False
    now = timezone.now()
    loaded = db.SessionStore()._fetch(KEY, now)
    assert timezone.is_naive(loaded.last_seen)
    assert loaded == orm_read(KEY, now)


def test_a_read_written_before_use_tz_changed_is_written_again(db_alias, settings):
    # MySQL's backend converts datetimes to aware ones only under USE_TZ, and
    # chooses that converter when the statement is written.
    stored()
    store = db.SessionStore()
    assert timezone.is_aware(store._fetch(KEY, timezone.now()).last_seen)
    settings.USE_TZ = False
    now = timezone.now()
    loaded = store._fetch(KEY, now)
    assert timezone.is_naive(loaded.last_seen)
    assert loaded == orm_read(KEY, now)
    settings.USE_TZ = True
    now = timezone.now()
    assert store._fetch(KEY, now) == orm_read(KEY, now)


@pytest.mark.parametrize("setting", ["USE_TZ", "TIME_ZONE"])
def test_statements_are_forgotten_when_the_time_settings_change(
    db_alias, settings, setting
):
    written = statements(db_alias)
    assert statements(db_alias) is written
    setattr(settings, setting, {"USE_TZ": False, "TIME_ZONE": "Asia/Tokyo"}[setting])
    assert statements(db_alias) is not written


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
    store = db.SessionStore()
    with CaptureQueriesContext(connection) as ctx:
        loaded, executed = sent(db_alias, lambda: store._fetch(KEY, timezone.now()))
    assert loaded is not None
    assert executed == [statements(db_alias).read.sql]
    assert len(ctx.captured_queries) == 1, ctx.captured_queries
    assert SESSION_TABLE in ctx.captured_queries[0]["sql"]


WRITERS = ("write_read", "write_write", "write_touch", "write_insert", "write_rename")


def written_on(alias):
    """The statements written for the database ``alias``, by model."""
    settings_dict = connections[alias].settings_dict
    return db_sql._statements[alias, id(settings_dict)][1]


def test_written_once_per_database_and_model(db_alias, user_factory):
    stored()
    user_id = user_factory().pk
    store = db.SessionStore()
    patches = [
        mock.patch.object(db_sql, name, wraps=getattr(db_sql, name)) for name in WRITERS
    ]
    writers = [patch.start() for patch in patches]
    try:
        for version in range(7, 10):
            now = timezone.now()
            assert store._fetch(KEY, now) is not None
            assert store._update(KEY, record(version + 1, user_id), now, version)
            assert store._bump(KEY, now, now + timedelta(hours=1))
        assert store._insert(OURS, record(1))
        assert store._update(OURS, record(2), timezone.now(), 1, "d" * 64)
    finally:
        for patch in patches:
            patch.stop()
    for writer in writers:
        writer.assert_called_once_with(Session, connections[db_alias])
    assert set(written_on(db_alias)) == {Session}


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_threads_read_on_their_own_connections_with_the_statements_written_once(
    db_alias,
):
    # Django makes a connection wrapper per thread (and under ASGI, per
    # request): writing the statements again for each would cost a request
    # what they save.
    stored()
    main = connections[db_alias]
    with mock.patch.object(db_sql, "write_read", wraps=db_sql.write_read) as writer:
        db.SessionStore()._fetch(KEY, timezone.now())  # written on main's connection
        both_running = threading.Barrier(2, timeout=10)
        seen = {}
        errors = []

        def read(name):
            try:
                connection = connections[db_alias]
                both_running.wait()  # so the two connections exist at the same time
                with CaptureQueriesContext(connection) as ctx:
                    loaded = db.SessionStore()._fetch(KEY, timezone.now())
                seen[name] = (connection, loaded, len(ctx.captured_queries))
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
    (conn_a, loaded_a, count_a) = seen["a"]
    (conn_b, loaded_b, count_b) = seen["b"]
    assert len({id(main), id(conn_a), id(conn_b)}) == 3
    writer.assert_called_once_with(Session, main)
    assert loaded_a == loaded_b and loaded_a is not None and loaded_a.version == 7
    assert count_a == count_b == 1  # each on its own connection
    assert on_main.captured_queries == []


@contextlib.contextmanager
def another_wrapper(alias, settings_dict=None):
    """``connections[alias]`` is a new connection wrapper inside the block, as
    in another thread or another ASGI request (with other settings when
    given); yields a weak reference to it."""
    main = connections[alias]
    if settings_dict is None:
        other = connections.create_connection(alias)
    else:
        other = type(main)(settings_dict, alias)
    connections[alias] = other
    try:
        yield weakref.ref(other)
    finally:
        connections[alias] = main
        other.close()
        del other


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_the_statements_keep_no_connection_wrapper_alive(db_alias):
    # SQLite's and MySQL's datetime converters are methods of the wrapper's
    # operations: kept as such, every ASGI request's wrapper would live on.
    stored()
    with another_wrapper(db_alias) as wrapper:
        now = timezone.now()
        loaded = db.SessionStore()._fetch(KEY, now)
        assert loaded == orm_read(KEY, now)
    gc.collect()
    assert wrapper() is None
    assert set(written_on(db_alias)) == {Session}  # still there, for the next


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_a_read_converts_on_the_connection_it_runs_on(db_alias, settings):
    stored()
    with another_wrapper(db_alias):
        statements(db_alias)  # written on a wrapper gone by the read
    gc.collect()
    now = timezone.now()
    loaded = db.SessionStore()._fetch(KEY, now)
    assert loaded == orm_read(KEY, now)
    assert timezone.is_aware(loaded.last_seen)


def test_a_backend_converter_is_called_on_the_operations_it_is_given():
    class Operations:
        def convert(self, value, expression, connection):
            return self, value, expression, connection

    class Wrapper:
        def __init__(self):
            self.ops = Operations()

        def convert(self, value, expression, connection):
            return self, value

    written, reading = Wrapper(), Wrapper()
    on_ops = db_sql._portable(written.ops.convert, written)
    assert on_ops(1, "col", reading) == (reading.ops, 1, "col", reading)
    on_wrapper = db_sql._portable(written.convert, written)
    assert on_wrapper(2, "col", reading) == (reading, 2)

    def plain(value, expression, connection):
        return value

    assert db_sql._portable(plain, written) is plain
    field_method = Session._meta.get_field("data").get_db_prep_value
    assert db_sql._portable(field_method, written) is field_method


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_other_settings_for_an_alias_get_statements_of_their_own(db_alias):
    written = statements(db_alias)
    settings_dict = {**connections[db_alias].settings_dict}
    with another_wrapper(db_alias, settings_dict):
        assert statements(db_alias) is not written
        assert db.SessionStore()._fetch(KEY, timezone.now()) is None
    assert statements(db_alias) is written


# -- writes and touches -------------------------------------------------------------


@pytest.mark.parametrize("with_user", [False, True], ids=["anonymous", "user"])
@pytest.mark.parametrize("old_version", [7, 6, None], ids=["current", "stale", "none"])
def test_a_write_changes_the_row_as_the_orms_does(
    db_alias, user_factory, with_user, old_version
):
    twins(version=7)
    new = record(8, user_factory().pk if with_user else None, "198.51.100.0", "New")
    now = timezone.now()
    orm_written = orm_write(KEY, new, now, old_version)
    written, executed = sent(
        db_alias, lambda: db.SessionStore()._update(OURS, new, now, old_version)
    )
    assert executed == [statements(db_alias).write.sql]
    assert written is orm_written is (old_version == 7)
    assert raw_row(db_alias, OURS) == raw_row(db_alias, KEY)
    if old_version == 7:
        assert row_of(OURS) == (*new[:7],)
    else:
        assert row_of(OURS)[5:] == (7, None)
    # A write leaves the client metadata alone.
    assert Session.objects.get(key_hash=OURS).user_agent == "Old/1.0"


def test_the_user_is_written_and_cleared(db_alias, user_factory):
    twins(version=1)
    user_id = user_factory().pk
    store = db.SessionStore()
    for version, user in enumerate([user_id, None, user_id, user_id, None], 2):
        now, new = timezone.now(), record(version, user)
        assert orm_write(KEY, new, now, version - 1)
        assert store._update(OURS, new, now, version - 1)
        assert row_of(OURS)[5:] == (version, user)
        assert raw_row(db_alias, OURS) == raw_row(db_alias, KEY)


def test_a_write_returns_whether_it_found_the_session_at_that_version(db_alias):
    stored(version=7)
    store, now = db.SessionStore(), timezone.now()
    assert store._update(KEY, record(8), now, 6) is False
    assert store._update(KEY, record(8), now, 7) is True
    assert store._update(KEY, record(8), now, 7) is False  # now at version 8
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


def test_an_expired_session_is_never_written_touched_or_renamed(db_alias):
    row = stored(version=7, expiry_in=timedelta(minutes=1))
    before = raw_row(db_alias, KEY)
    store = db.SessionStore()
    for now in (row.expiry, row.expiry + timedelta(seconds=1)):  # expiry: exclusive
        assert store._update(KEY, record(8), now, 7) is False
        assert store._bump(KEY, now, now + timedelta(hours=1)) is False
        assert store._update(KEY, record(8), now, 7, "d" * 64) is False
    assert raw_row(db_alias, KEY) == before
    now = row.expiry - timedelta(microseconds=1)
    assert store._bump(KEY, now, now + timedelta(hours=1)) is True
    assert store._update(KEY, record(8), now, 7) is True


def test_a_touch_moves_the_deadlines_as_the_orms_does(db_alias):
    twins(version=7)
    now = timezone.now()
    expiry = now + timedelta(minutes=30)
    assert orm_touch(KEY, now, expiry)
    touched, executed = sent(
        db_alias, lambda: db.SessionStore()._bump(OURS, now, expiry)
    )
    assert touched is True
    assert executed == [statements(db_alias).touch.sql]
    assert raw_row(db_alias, OURS) == raw_row(db_alias, KEY)
    assert row_of(OURS)[3:5] == (expiry, now)
    assert row_of(OURS)[5] == 7  # a touch leaves the version alone
    assert db.SessionStore()._bump("b" * 64, now, expiry) is False


def test_writes_and_touches_without_use_tz_match_the_orm(db_alias, settings):
    twins(version=7)
    store = db.SessionStore()
    store._update(OURS, record(8), timezone.now(), 7)  # written, aware
    Session.objects.filter(key_hash=OURS).update(version=7)
    settings.USE_TZ = False
    now, new = timezone.now(), record(8)
    assert timezone.is_naive(new.last_seen)
    assert orm_write(KEY, new, now, 7)
    assert store._update(OURS, new, now, 7)
    assert raw_row(db_alias, OURS) == raw_row(db_alias, KEY)
    assert orm_touch(KEY, now, now + timedelta(hours=1))
    assert store._bump(OURS, now, now + timedelta(hours=1))
    assert raw_row(db_alias, OURS) == raw_row(db_alias, KEY)


def test_async_writes_and_touches(db_alias):
    stored(version=7)
    store, now = db.SessionStore(), timezone.now()
    assert async_to_sync(store._aupdate)(KEY, record(8), now, 7) is True
    assert async_to_sync(store._aupdate)(KEY, record(9), now, 7) is False
    expiry = now + timedelta(hours=3)
    assert async_to_sync(store._abump)(KEY, now, expiry) is True
    assert async_to_sync(store._abump)("b" * 64, now, expiry) is False
    assert row_of()[3:6] == (expiry, now, 8)


# -- creating and renaming ---------------------------------------------------------


@pytest.mark.parametrize(
    "ip, user_agent",
    [(None, ""), ("203.0.113.0", "Browser/2.0"), ("2001:db8::", "Ü/1")],
    ids=["no-client", "ipv4", "ipv6"],
)
@pytest.mark.parametrize("with_user", [False, True], ids=["anonymous", "user"])
def test_an_insert_stores_the_row_the_orms_stores(
    db_alias, user_factory, with_user, ip, user_agent
):
    new = record(1, user_factory().pk if with_user else None, ip, user_agent)
    assert orm_insert(KEY, new)
    inserted, executed = sent(db_alias, lambda: db.SessionStore()._insert(OURS, new))
    assert inserted is True
    assert session_sql(executed) == [statements(db_alias).insert.sql]
    assert raw_row(db_alias, OURS) == raw_row(db_alias, KEY)
    session = Session.objects.get(key_hash=OURS)
    assert (session.ip, session.user_agent) == (ip, user_agent)
    assert row_of(OURS) == (*new[:7],)


def test_an_insert_of_a_taken_hash_is_refused_and_the_transaction_goes_on(db_alias):
    stored(version=7)
    before = raw_row(db_alias, KEY)
    assert orm_insert(KEY, record(1)) is False
    with transaction.atomic(using=db_alias):
        assert db.SessionStore()._insert(KEY, record(1)) is False
        assert db.SessionStore()._insert(OURS, record(1)) is True
    assert raw_row(db_alias, KEY) == before
    assert row_of(OURS)[5] == 1


@pytest.mark.parametrize("old_version", [7, 6], ids=["current", "stale"])
def test_a_rename_moves_the_row_as_the_orms_does(db_alias, user_factory, old_version):
    twins(version=7)
    user_id = user_factory().pk
    new = record(8, user_id, "198.51.100.0", "Renamed/1.0")
    now = timezone.now()
    orm_renamed = orm_rename(KEY, "b" * 64, new, now, old_version)
    renamed, executed = sent(
        db_alias,
        lambda: db.SessionStore()._update(OURS, new, now, old_version, "d" * 64),
    )
    assert session_sql(executed) == [statements(db_alias).rename.sql]
    assert renamed is orm_renamed is (old_version == 7)
    if renamed:
        assert raw_row(db_alias, OURS) is raw_row(db_alias, KEY) is None
        assert raw_row(db_alias, "d" * 64) == raw_row(db_alias, "b" * 64)
        assert raw_row(db_alias, "d" * 64)[8] == "Renamed/1.0"
        assert row_of("d" * 64) == (*new[:7],)
    else:
        assert raw_row(db_alias, "d" * 64) is raw_row(db_alias, "b" * 64) is None
        assert raw_row(db_alias, OURS) == raw_row(db_alias, KEY)


def test_a_rename_onto_a_taken_hash_raises_create_error_and_changes_nothing(
    db_alias,
):
    twins(version=7)
    taken = stored("e" * 64, version=3)
    before = [raw_row(db_alias, key) for key in (KEY, OURS, taken.key_hash)]
    now = timezone.now()
    with pytest.raises(CreateError):
        orm_rename(KEY, taken.key_hash, record(8), now, 7)
    with transaction.atomic(using=db_alias):
        with pytest.raises(CreateError):
            db.SessionStore()._update(OURS, record(8), now, 7, taken.key_hash)
        # Inside a transaction, the failed rename had a savepoint of its own.
        assert db.SessionStore()._update(OURS, record(8), now, 7) is True
    assert [raw_row(db_alias, key) for key in (KEY, taken.key_hash)] == [
        before[0],
        before[2],
    ]
    assert row_of(OURS)[5] == 8


# -- the ORM's path, and errors ------------------------------------------------------


def test_the_orm_does_not_write_or_save_once_the_statements_are_written(db_alias):
    stored(version=7)
    store, now = db.SessionStore(), timezone.now()
    with (
        mock.patch.object(QuerySet, "update", side_effect=AssertionError("ORM")),
        mock.patch.object(QuerySet, "values_list", side_effect=AssertionError("ORM")),
        mock.patch.object(Model, "save", side_effect=AssertionError("ORM")),
    ):
        assert store._fetch(KEY, now) is not None
        assert store._update(KEY, record(8), now, 7) is True
        assert store._bump(KEY, now, now + timedelta(hours=1)) is True
        assert store._insert(OURS, record(1)) is True
        assert store._update(OURS, record(2), now, 1, "d" * 64) is True


@pytest.mark.parametrize(
    "failure",
    [AttributeError("moved"), TypeError("refused"), NotImplementedError("no")],
    ids=["attribute-error", "type-error", "not-implemented"],
)
@pytest.mark.parametrize("writer", WRITERS)
def test_a_statement_that_cannot_be_written_goes_through_the_orm(
    db_alias, writer, failure
):
    stored(version=7)
    store, now = db.SessionStore(), timezone.now()
    with mock.patch.object(db_sql, writer, side_effect=failure):
        written = statements(db_alias)
    unwritten = writer.removeprefix("write_")
    assert getattr(written, unwritten) is None
    assert all(
        getattr(written, name) is not None
        for name in written._fields
        if name != unwritten
    )
    orm_updates = []
    update = QuerySet.update

    def counted(rows, **values):
        orm_updates.append(values)
        return update(rows, **values)

    with mock.patch.object(QuerySet, "update", counted):
        assert store._fetch(KEY, now) == Loaded(b"\x00payload\xff", row_of()[4], 7)
        assert store._fetch(KEY, row_of()[3]) is None
        assert store._update(KEY, record(8), now, 7) is True
        assert store._update(KEY, record(9), now, 7) is False
        assert store._bump(KEY, now, now + timedelta(hours=3)) is True
        assert store._insert(OURS, record(1)) is True
        assert store._insert(OURS, record(1)) is False
        assert store._update(OURS, record(2), now, 1, "d" * 64) is True
        with pytest.raises(CreateError):
            store._update(KEY, record(9), now, 8, "d" * 64)
    assert row_of()[3:6] == (now + timedelta(hours=3), now, 8)
    assert row_of("d" * 64)[5] == 2
    expected = {"write": 2, "touch": 1, "rename": 2}.get(unwritten, 0)
    assert len(orm_updates) == expected


def test_a_field_with_a_placeholder_of_its_own_is_left_to_the_orm(db_alias):
    # user_agent and key_hash, among the columns an insert or a rename sets.
    with mock.patch.object(
        CharField, "get_placeholder", create=True, return_value="%s"
    ):
        written = statements(db_alias)
    assert written.insert is None and written.rename is None
    assert None not in (written.read, written.write, written.touch)


@pytest.mark.parametrize("action", ["read", "write", "touch", "insert", "rename"])
def test_an_error_running_a_statement_propagates(db_alias, action):
    stored(version=7)
    connection = connections[db_alias]
    store, now = db.SessionStore(), timezone.now()
    statements(db_alias)
    calls = []

    def fail(execute, sql, params, many, context):
        if SESSION_TABLE not in sql:
            return execute(sql, params, many, context)  # the savepoints
        calls.append(sql)
        raise OperationalError("refused")

    run = {
        "read": lambda: store._fetch(KEY, now),
        "write": lambda: store._update(KEY, record(8), now, 7),
        "touch": lambda: store._bump(KEY, now, now + timedelta(hours=1)),
        "insert": lambda: store._insert(OURS, record(1)),
        "rename": lambda: store._update(KEY, record(8), now, 7, "d" * 64),
    }[action]
    with connection.execute_wrapper(fail), pytest.raises(OperationalError) as raised:
        run()
    # Raised as it came, not answered by the ORM's statement instead, and
    # classified as an outage (a 503) by the engine.
    assert calls == [getattr(statements(db_alias), action).sql]
    assert db.SessionStore.is_unavailable(raised.value)


@pytest.mark.parametrize("action", ["write", "touch", "insert", "rename"])
def test_a_failed_write_marks_the_transaction_for_rollback(db_alias, action):
    stored(version=7)
    connection = connections[db_alias]
    store, now = db.SessionStore(), timezone.now()
    statements(db_alias)

    def fail(execute, sql, params, many, context):
        if SESSION_TABLE not in sql:
            return execute(sql, params, many, context)  # the savepoints
        raise DatabaseError("refused")

    run = {
        "write": lambda: store._update(KEY, record(9), now, 7),
        "touch": lambda: store._bump(KEY, now, now + timedelta(hours=2)),
        "insert": lambda: store._insert(OURS, record(1)),
        "rename": lambda: store._update(KEY, record(9), now, 7, "d" * 64),
    }[action]
    with transaction.atomic(using=db_alias):
        with connection.execute_wrapper(fail), pytest.raises(DatabaseError):
            run()
        # As QuerySet.update and Model.save leave it (the insert and the
        # rename roll back their own savepoint).
        assert connection.needs_rollback is (action in ("write", "touch"))
    assert row_of()[5] == 7
