"""The test infrastructure itself: servers, databases, router, helpers."""

import socket

import pytest
from django.contrib.auth.models import User
from django.db import connection, connections

from tests.routers import current_database


@pytest.mark.django_db
def test_default_database_is_postgresql():
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


@pytest.mark.django_db(databases=["sqlite"])
def test_sqlite_alias_is_sqlite():
    assert connections["sqlite"].vendor == "sqlite"
    with connections["sqlite"].cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


@pytest.mark.django_db(databases="__all__")
def test_db_alias_pins_orm_writes(db_alias):
    other = "sqlite" if db_alias == "default" else "default"
    assert current_database() == db_alias

    User.objects.create(username="pinned")

    assert User.objects.using(db_alias).filter(username="pinned").exists()
    assert not User.objects.using(other).filter(username="pinned").exists()


@pytest.mark.django_db(databases="__all__")
def test_user_factory_follows_pinned_database(db_alias, user_factory):
    other = "sqlite" if db_alias == "default" else "default"

    user = user_factory()

    assert user._state.db == db_alias
    assert (
        User.objects.using(db_alias)
        .get(pk=user.pk)
        .check_password("correct horse battery staple")
    )
    assert not User.objects.using(other).filter(username=user.username).exists()


@pytest.mark.django_db(databases="__all__")
def test_count_session_queries_picks_out_the_session_table(
    db_alias, count_session_queries
):
    with count_session_queries(db_alias) as ctx:
        User.objects.filter(username="nobody").exists()
        with connections[db_alias].cursor() as cursor:
            cursor.execute("SELECT 1 AS scs_django_session")

    assert len(ctx.queries) == 2
    assert [q["sql"] for q in ctx.session_queries] == ["SELECT 1 AS scs_django_session"]


def test_redis_server_answers_ping(redis_server, settings):
    assert settings.TEST_REDIS_URL == redis_server.url
    with socket.create_connection((redis_server.host, redis_server.port), 5) as s:
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        assert s.recv(64) == b"+PONG\r\n"
