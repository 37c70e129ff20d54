"""Settings of the bench project, from the environment benchmarks/server.py sets.

BENCH_ENGINE and BENCH_MIDDLEWARE name the session engine and its middleware,
BENCH_PG_PORT and BENCH_REDIS_URL the servers, and BENCH_ASGI=1 makes the views
async and the database connections pooled (under ASGI each request thread
would otherwise open a PostgreSQL connection of its own).
"""

import os

ASGI = os.environ.get("BENCH_ASGI") == "1"

DEBUG = False
SECRET_KEY = "benchmark-not-secret"  # noqa: S105
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "benchsite.urls"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "scs_django",
]
SESSION_ENGINE = os.environ.get("BENCH_ENGINE", "scs_django.backends.db")
MIDDLEWARE = [
    os.environ.get("BENCH_MIDDLEWARE", "scs_django.middleware.SessionMiddleware"),
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "127.0.0.1",
        "PORT": os.environ.get("BENCH_PG_PORT", "5432"),
        "NAME": "postgres",
        "USER": "postgres",
        # Sync workers keep one connection each; the pool needs CONN_MAX_AGE 0.
        "CONN_MAX_AGE": 0 if ASGI else None,
        "OPTIONS": (
            {
                "pool": {
                    "min_size": 2,
                    "max_size": int(os.environ.get("BENCH_POOL", "4")),
                }
            }
            if ASGI
            else {}
        ),
    }
}
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
    }
}
# A login's cost is the session's, not a deliberately slow password hash.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SILENCED_SYSTEM_CHECKS = ["scs_django.W001", "scs_django.W002"]
LOGGING = {"version": 1, "disable_existing_loggers": False}
