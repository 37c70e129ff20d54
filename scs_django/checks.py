"""System checks: misconfiguration is reported at startup, never per request."""

from __future__ import annotations

import difflib
import re
from typing import Any

from django.conf import settings
from django.core import checks

from . import conf

ENGINES = (
    "scs_django.backends.db",
    "scs_django.backends.cache",
    "scs_django.backends.cached_db",
)
DJANGO_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
OUR_MIDDLEWARE = "scs_django.middleware.SessionMiddleware"

_POSITIVE_INTS = ("ABSOLUTE_TIMEOUT", "TOUCH_INTERVAL", "MAX_BYTES")
_BOOLS = (
    "RENEW_ON_LOGIN",
    "FAIL_OPEN",
    "ACCEPT_LEGACY_TOKENS",
    "REVOKE_ON_PASSWORD_CHANGE",
    "RECORD_IP",
    "RECORD_USER_AGENT",
    "IP_FULL",
)
# A request.META key, as Django's own SECURE_PROXY_SSL_HEADER takes it.
_META_KEY = re.compile(r"[A-Z][A-Z0-9_]*")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@checks.register(checks.Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    raw = getattr(settings, "SCS", None)
    if raw is not None and not isinstance(raw, dict):
        return [
            checks.Error(
                "The SCS setting must be a dict.",
                hint='Write SCS = {"IDLE_TIMEOUT": 1800, ...} or remove it.',
                id="scs_django.E002",
            )
        ]
    for key in conf.unknown_keys():
        close = difflib.get_close_matches(key, conf.DEFAULTS, n=1)
        errors.append(
            checks.Error(
                f'SCS["{key}"] is not a scs_django setting.',
                hint=f'Did you mean SCS["{close[0]}"]?'
                if close
                else "See the configuration page of the scs_django docs.",
                id="scs_django.E001",
            )
        )
    values = conf.get_settings()
    for name in _POSITIVE_INTS:
        if not _is_int(values[name]) or values[name] <= 0:
            errors.append(
                _bad_value(
                    name,
                    values[name],
                    "a positive number of seconds"
                    if name != "MAX_BYTES"
                    else "a positive number of bytes",
                )
            )
    idle = values["IDLE_TIMEOUT"]
    if idle is not None and (not _is_int(idle) or idle <= 0):
        errors.append(
            _bad_value("IDLE_TIMEOUT", idle, "None or a positive number of seconds")
        )
    for name in _BOOLS:
        if not isinstance(values[name], bool):
            errors.append(_bad_value(name, values[name], "True or False"))
    header = values["TRUSTED_PROXY_HEADER"]
    if header is not None and not (
        isinstance(header, str) and _META_KEY.fullmatch(header)
    ):
        errors.append(
            _bad_value(
                "TRUSTED_PROXY_HEADER",
                header,
                'None or a request.META key such as "HTTP_X_FORWARDED_FOR"',
            )
        )
    if errors:
        return errors
    absolute, touch = values["ABSOLUTE_TIMEOUT"], values["TOUCH_INTERVAL"]
    if idle is not None and idle >= absolute:
        errors.append(
            checks.Error(
                f'SCS["IDLE_TIMEOUT"] ({idle}) is not smaller than '
                f'SCS["ABSOLUTE_TIMEOUT"] ({absolute}), so it never takes effect.',
                hint="Lower IDLE_TIMEOUT, raise ABSOLUTE_TIMEOUT, or set IDLE_TIMEOUT to None.",
                id="scs_django.E003",
            )
        )
    if idle is not None and touch >= idle:
        errors.append(
            checks.Error(
                f'SCS["TOUCH_INTERVAL"] ({touch}) is not smaller than '
                f'SCS["IDLE_TIMEOUT"] ({idle}): active sessions would expire.',
                hint="Keep TOUCH_INTERVAL a small fraction of IDLE_TIMEOUT (the default is 60).",
                id="scs_django.E003",
            )
        )
    return errors


def _bad_value(name: str, value: Any, expected: str) -> checks.Error:
    return checks.Error(
        f'SCS["{name}"] is {value!r}; it must be {expected}.',
        hint=f'Fix SCS["{name}"] or remove it to use the default.',
        id="scs_django.E002",
    )


@checks.register(checks.Tags.compatibility)
def check_engine(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    if settings.SESSION_ENGINE not in ENGINES:
        messages.append(
            checks.Warning(
                f"SESSION_ENGINE is {settings.SESSION_ENGINE!r}, not an scs_django engine, "
                "so scs_django's protections are not in use.",
                hint='Set SESSION_ENGINE = "scs_django.backends.db".',
                id="scs_django.W001",
            )
        )
    middleware = list(getattr(settings, "MIDDLEWARE", None) or ())
    if DJANGO_MIDDLEWARE in middleware:
        messages.append(
            checks.Warning(
                "Django's SessionMiddleware is in MIDDLEWARE; scs_django's cookie and "
                "write rules need its own.",
                hint=f'Replace "{DJANGO_MIDDLEWARE}" with "{OUR_MIDDLEWARE}".',
                id="scs_django.W002",
            )
        )
    return messages


CACHE_ENGINES = ("scs_django.backends.cache", "scs_django.backends.cached_db")
LOCMEM = "django.core.cache.backends.locmem.LocMemCache"


@checks.register(checks.Tags.compatibility, checks.Tags.caches)
def check_cache(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if settings.SESSION_ENGINE not in CACHE_ENGINES:
        return []
    alias = conf.get_settings().get("CACHE_ALIAS")
    caches_setting = getattr(settings, "CACHES", {}) or {}
    if alias not in caches_setting:
        return [
            checks.Error(
                f'SCS["CACHE_ALIAS"] is {alias!r}, which is not a cache in CACHES.',
                hint='Name one of your CACHES in SCS["CACHE_ALIAS"] (default "default").',
                id="scs_django.E010",
            )
        ]
    backend = caches_setting[alias].get("BACKEND", "")
    messages: list[checks.CheckMessage] = []
    native = backend.startswith("django_redis.")
    if settings.SESSION_ENGINE == "scs_django.backends.cache" and not native:
        messages.append(
            checks.Warning(
                f"The cache engine on {backend} cannot make writes conditional "
                "atomically or list a user's sessions (a logout racing another "
                "request's write can be undone), and Django's cache layer unpickles "
                "what it reads: whoever can write to that cache can run code.",
                hint="Use django-redis, the cached_db engine or the db engine where "
                "that matters; see the backends page of the scs_django docs.",
                id="scs_django.W010",
            )
        )
    if backend == LOCMEM and not settings.DEBUG:
        messages.append(
            checks.Warning(
                f'Sessions are kept in the LocMem cache "{alias}", which lives in one '
                "process: other workers do not see them and a restart loses them.",
                hint="Use Redis (django-redis) or the db engine in production.",
                id="scs_django.W011",
            )
        )
    return messages
