"""Settings of the scs_django demo project: SQLite, DEBUG on, never for production."""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# A fixed key is fine for a demo that only listens on localhost.
SECRET_KEY = "demo-only-insecure-key-do-not-use-in-production"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "scs_django",
    "demo",
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

# Short enough that the countdowns visibly move; the "your devices" page shows
# the browser and a truncated address of each session.
SCS = {
    "IDLE_TIMEOUT": 10 * 60,
    "ABSOLUTE_TIMEOUT": 8 * 3600,
    "TOUCH_INTERVAL": 30,
    "RECORD_IP": True,
    "RECORD_USER_AGENT": True,
    # The "your devices" pages in the demo's own frame.
    "DEVICES_BASE_TEMPLATE": "demo/devices_base.html",
    # The expiry warning shows two minutes before the idle timeout.
    "IDLE_WARNING": 120,
}

ROOT_URLCONF = "testproject.urls"
WSGI_APPLICATION = "testproject.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "demo.context_processors.session_summary",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# Show scs_django's security log lines (malformed cookies and the like) on the console.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"scs_django": {"handlers": ["console"], "level": "INFO"}},
}
