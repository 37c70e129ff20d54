"""Settings of the test project when a real server process runs it (tests/realserver.py).

The test settings, pointed at the databases and Redis of the test run that
started the server (the environment carries them), with the overrides that
run chose.
"""

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES

DATABASES["default"]["NAME"] = os.environ["SCS_SERVER_DEFAULT_NAME"]
DATABASES["sqlite"]["NAME"] = os.environ["SCS_SERVER_SQLITE_NAME"]
DATABASES["mariadb"]["NAME"] = os.environ["SCS_SERVER_MARIADB_NAME"]
DATABASE_ROUTERS = ["tests.routers.EnvironmentRouter"]
ALLOWED_HOSTS = ["127.0.0.1", "testserver"]

globals().update(json.loads(os.environ.get("SCS_SERVER_SETTINGS", "{}")))
