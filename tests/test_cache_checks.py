"""System checks for the cache engines."""

from scs_django.checks import check_cache
from tests.utils import ids_and_messages

REDIS = {
    "BACKEND": "django_redis.cache.RedisCache",
    "LOCATION": "redis://127.0.0.1:1/0",
}
LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}


def test_db_engine_needs_no_cache(settings):
    settings.SESSION_ENGINE = "scs_django.backends.db"
    settings.CACHES = {"default": LOCMEM}
    assert check_cache() == []


def test_cache_engine_on_django_redis_is_clean(settings):
    settings.SESSION_ENGINE = "scs_django.backends.cache"
    settings.CACHES = {"default": REDIS}
    assert check_cache() == []


def test_unknown_cache_alias(settings):
    settings.SESSION_ENGINE = "scs_django.backends.cached_db"
    settings.CACHES = {"default": REDIS}
    settings.SCS = {"CACHE_ALIAS": "sessions"}
    assert ids_and_messages(check_cache()) == [
        (
            "scs_django.E010",
            "SCS[\"CACHE_ALIAS\"] is 'sessions', which is not a cache in CACHES.",
        )
    ]


def test_cache_engine_on_locmem_in_production(settings):
    settings.SESSION_ENGINE = "scs_django.backends.cache"
    settings.CACHES = {"default": LOCMEM}
    settings.DEBUG = False
    assert ids_and_messages(check_cache()) == [
        (
            "scs_django.W010",
            "The cache engine on django.core.cache.backends.locmem.LocMemCache cannot "
            "make writes conditional atomically or list a user's sessions (its "
            "cache.add locks hold only while a writer is faster than their "
            "timeout), and Django's cache layer unpickles what it reads: whoever "
            "can write to that cache can run code.",
        ),
        (
            "scs_django.W011",
            'Sessions are kept in the LocMem cache "default", which lives in one '
            "process: other workers do not see them and a restart loses them.",
        ),
    ]


def test_locmem_is_fine_while_debugging_but_still_weaker(settings):
    settings.SESSION_ENGINE = "scs_django.backends.cache"
    settings.CACHES = {"default": LOCMEM}
    settings.DEBUG = True
    assert [m.id for m in check_cache()] == ["scs_django.W010"]


def test_cached_db_on_locmem_warns_only_about_locmem(settings):
    settings.SESSION_ENGINE = "scs_django.backends.cached_db"
    settings.CACHES = {"default": LOCMEM}
    settings.DEBUG = False
    assert [m.id for m in check_cache()] == ["scs_django.W011"]
