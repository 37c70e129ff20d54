"""Settings of the demo project (testproject/) as the browser tests serve it.

The demo's own settings, on a SQLite file of the test's (its path in
``SCS_BROWSER_DATABASE``), with IP and user agent recording on. With
``SCS_BROWSER_IDLE_TIMEOUT`` set, sessions end after that many idle seconds
and the expiry warning shows two seconds before that.

testproject/ must be on ``sys.path`` (tests/browser/conftest.py puts it on
``PYTHONPATH``), as ``manage.py`` puts it there for the demo.
"""

import os

from testproject.settings import *  # noqa: F403
from testproject.settings import SCS

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["SCS_BROWSER_DATABASE"],
        # uvicorn's request threads share the file: wait for a lock, never fail.
        "OPTIONS": {"timeout": 20},
    }
}

SCS = {**SCS, "RECORD_IP": True, "RECORD_USER_AGENT": True}

if idle := os.environ.get("SCS_BROWSER_IDLE_TIMEOUT"):
    SCS.update(
        IDLE_TIMEOUT=int(idle),
        # Below the idle timeout, as the checks require. The page's status
        # polls fall within it; tests/test_asgi_server.py checks the status
        # answered after a touch interval has passed.
        TOUCH_INTERVAL=int(idle) - 1,
        IDLE_WARNING=max(int(idle) - 2, 1),
    )
