"""Settings of the test project under uvicorn (tests/realserver.py's ``uvicorn``).

tests/server_settings.py (the test run's databases and Redis, the test's
overrides), with a pool of PostgreSQL connections.

Under ASGI, Django runs the synchronous part of each request (middleware,
ORM calls, sync views) in a thread of that request's own, and a persistent
connection (``CONN_MAX_AGE`` > 0) belongs to the thread that opened it: one
more idle PostgreSQL backend per request, until the server runs out. Django's
documentation therefore asks for ``CONN_MAX_AGE = 0`` under ASGI, which opens
and closes a connection in every request (a new backend process each time).
psycopg 3's pool, which Django 5.1+ drives through ``OPTIONS["pool"]``, hands
each request a connection already open and takes it back at the request's
end, with a bound on how many exist. SQLite and MariaDB keep
``CONN_MAX_AGE = 0``: opening an SQLite file is cheap, and the MariaDB tests
are few.
"""

from tests.server_settings import *  # noqa: F403
from tests.server_settings import DATABASES

DATABASES["default"] = {
    **DATABASES["default"],
    "CONN_MAX_AGE": 0,  # the pool refuses persistent connections
    "OPTIONS": {
        **DATABASES["default"].get("OPTIONS", {}),
        "pool": {"min_size": 1, "max_size": 8, "timeout": 20},
    },
}
