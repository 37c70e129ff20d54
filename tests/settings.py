"""Django settings for the test suite.

"default" is PostgreSQL, "mariadb" MariaDB and "sqlite" SQLite;
tests.routers.PinnedRouter sends every query to one of them. Unless
SCS_TEST_PG_PORT names a running server, tests/conftest.py starts a throwaway
PostgreSQL on the port chosen here before pytest-django creates the test
databases. MariaDB likewise, unless SCS_TEST_MARIADB_PORT is set, and Redis,
unless SCS_TEST_REDIS_URL is.
"""

import os
import tempfile
from pathlib import Path

from tests.servers import HOST, MariaDBServer, reserve_port

TESTS_DIR = Path(__file__).resolve().parent

SECRET_KEY = "scs-django-tests-not-secret"
DEBUG = False
USE_TZ = True
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "/static/"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "scs_django",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "scs_django.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

SESSION_ENGINE = "scs_django.backends.db"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [TESTS_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# An already running server (SCS_TEST_PG_PORT) or the throwaway one.
TEST_POSTGRES_EXTERNAL = bool(os.environ.get("SCS_TEST_PG_PORT"))

# Likewise (SCS_TEST_MARIADB_PORT): a MariaDB or MySQL server whose user may
# create and drop the test databases.
TEST_MARIADB_EXTERNAL = bool(os.environ.get("SCS_TEST_MARIADB_PORT"))

SQLITE_DIR = Path(tempfile.gettempdir())

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("SCS_TEST_PG_HOST", HOST),
        "PORT": os.environ.get("SCS_TEST_PG_PORT") or str(reserve_port("pg")),
        "NAME": "scs_django",
        "USER": os.environ.get("SCS_TEST_PG_USER", "postgres"),
        "PASSWORD": os.environ.get("SCS_TEST_PG_PASSWORD", ""),
    },
    "mariadb": {
        "ENGINE": "django.db.backends.mysql",
        "HOST": os.environ.get("SCS_TEST_MARIADB_HOST", HOST),
        "PORT": os.environ.get("SCS_TEST_MARIADB_PORT") or str(reserve_port("mariadb")),
        "NAME": "scs_django",
        "USER": os.environ.get("SCS_TEST_MARIADB_USER", MariaDBServer.user),
        "PASSWORD": os.environ.get("SCS_TEST_MARIADB_PASSWORD", MariaDBServer.password),
        "OPTIONS": {"charset": "utf8mb4"},
        "TEST": {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
    },
    "sqlite": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": SQLITE_DIR / "scs-django.sqlite3",
        # A file rather than in-memory: threads in race tests then open real,
        # separate connections that wait on locks instead of failing with
        # "database table is locked" as shared-cache memory databases do.
        # One per process, so that concurrent runs from one checkout don't
        # clobber each other's; Django deletes it at the end of the run.
        "TEST": {"NAME": str(SQLITE_DIR / f"scs-django-test-{os.getpid()}.sqlite3")},
        "OPTIONS": {
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF",
        },
    },
}

DATABASE_ROUTERS = ["tests.routers.PinnedRouter"]

# Two more pairs, split the way a site splits them with the AuthRouter of
# Django's multi-database docs: the users (auth, contenttypes, the admin's log)
# in one database, scs_django's sessions in the other, each holding only its
# own apps' tables (tests.routers.SPLITS, tests/test_multiple_databases.py).
# The PostgreSQL pair lives on the server of "default".


def _sqlite_file(name):
    return {
        **DATABASES["sqlite"],
        "NAME": SQLITE_DIR / f"scs-django-{name}.sqlite3",
        "TEST": {
            "NAME": str(SQLITE_DIR / f"scs-django-test-{name}-{os.getpid()}.sqlite3")
        },
    }


DATABASES["users"] = {**DATABASES["default"], "NAME": "scs_django_users"}
DATABASES["sessions"] = {**DATABASES["default"], "NAME": "scs_django_sessions"}
DATABASES["sqlite_users"] = _sqlite_file("users")
DATABASES["sqlite_sessions"] = _sqlite_file("sessions")

TEST_REDIS_EXTERNAL = bool(os.environ.get("SCS_TEST_REDIS_URL"))
TEST_REDIS_URL = (
    os.environ.get("SCS_TEST_REDIS_URL") or f"redis://{HOST}:{reserve_port('redis')}/0"
)

# "default" stays in this process, so Django's own cache users never reach
# Redis; the engine fixture (tests/conftest.py) points SCS["CACHE_ALIAS"] at
# "redis" or "locmem". conftest.redis_server moves the "redis" LOCATION along
# with TEST_REDIS_URL when the throwaway server had to take another port.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "scs-django-tests-default",
    },
    "redis": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": TEST_REDIS_URL,
        # A stopped server fails a request fast instead of hanging the test.
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
    },
    "locmem": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "scs-django-tests-sessions",
    },
}

LOGIN_REDIRECT_URL = "/read/"
