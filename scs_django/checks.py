"""System checks: misconfiguration is reported at startup, never per request."""

from __future__ import annotations

import difflib
import re
from typing import Any

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from . import conf
from .backends.base import ScsSessionStore
from .backends.cache import SessionStore as CacheStore
from .backends.cached_db import SessionStore as CachedDBStore
from .backends.cookie import SessionStore as CookieStore

DJANGO_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
OUR_MIDDLEWARE = "scs_django.middleware.SessionMiddleware"

_POSITIVE_INTS = ("ABSOLUTE_TIMEOUT", "TOUCH_INTERVAL", "MAX_BYTES", "IDLE_WARNING")
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
    base = values["DEVICES_BASE_TEMPLATE"]
    if not isinstance(base, str) or not base:
        errors.append(_bad_value("DEVICES_BASE_TEMPLATE", base, "a template name"))
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
    proxies = values["TRUSTED_PROXY_COUNT"]
    if not _is_int(proxies) or proxies <= 0:
        errors.append(
            _bad_value("TRUSTED_PROXY_COUNT", proxies, "a positive number of proxies")
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
    warn = values["IDLE_WARNING"]
    if idle is not None and touch < idle and warn > idle - touch:
        errors.append(
            checks.Warning(
                f'SCS["IDLE_WARNING"] ({warn}) is larger than IDLE_TIMEOUT - '
                f"TOUCH_INTERVAL ({idle - touch}): the expiry warning can show before "
                '"Stay signed in" is able to move the idle deadline.',
                hint="Lower IDLE_WARNING, or TOUCH_INTERVAL.",
                id="scs_django.W031",
            )
        )
    if "TRUSTED_PROXY_COUNT" in (raw or {}) and header is None:
        errors.append(
            checks.Warning(
                'SCS["TRUSTED_PROXY_COUNT"] is set but SCS["TRUSTED_PROXY_HEADER"] is '
                "None, so it has no effect: RECORD_IP records REMOTE_ADDR, which behind "
                "a proxy is the proxy's address.",
                hint='Name the header your proxies set, such as SCS["TRUSTED_PROXY_HEADER"] '
                '= "HTTP_X_FORWARDED_FOR", or remove TRUSTED_PROXY_COUNT.',
                id="scs_django.W030",
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
    try:
        engine = conf.session_engine()
    except (ImportError, AttributeError) as exc:
        messages.append(
            checks.Error(
                f"SESSION_ENGINE {settings.SESSION_ENGINE!r} cannot be imported: {exc}",
                hint="Name a module with a SessionStore class, such as "
                '"scs_django.backends.db".',
                id="scs_django.E004",
            )
        )
    else:
        if not issubclass(engine, (ScsSessionStore, CookieStore)):
            messages.append(
                checks.Warning(
                    f"SESSION_ENGINE is {settings.SESSION_ENGINE!r}, not an scs_django "
                    "engine, so scs_django's protections are not in use.",
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


LOCMEM = "django.core.cache.backends.locmem.LocMemCache"


@checks.register(checks.Tags.compatibility, checks.Tags.caches)
def check_cache(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        engine = conf.session_engine()
    except (ImportError, AttributeError):
        return []  # scs_django.E004 says so
    if not issubclass(engine, (CacheStore, CachedDBStore)):
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
    if issubclass(engine, CacheStore) and not native:
        messages.append(
            checks.Warning(
                f"The cache engine on {backend} cannot make writes conditional "
                "atomically or list a user's sessions (its cache.add locks hold "
                "only while a writer is faster than their timeout), and Django's "
                "cache layer unpickles what it reads: whoever can write to that "
                "cache can run code.",
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


# -- the session cookie ----------------------------------------------------------------
# Django's security.W010-W015 look for django.contrib.sessions in INSTALLED_APPS
# or its middleware in MIDDLEWARE, so they go quiet once scs_django replaces both.

_HOST_PREFIX = "__host-"
_SECURE_PREFIX = "__secure-"


@checks.register(checks.Tags.security, deploy=True)
def check_cookie_deploy(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    if settings.SESSION_COOKIE_SECURE is not True:
        messages.append(
            checks.Warning(
                "SESSION_COOKIE_SECURE is not True, so browsers also send the session "
                "cookie over plain HTTP, where anyone on the network can read it.",
                hint="Set SESSION_COOKIE_SECURE = True once the site is served over HTTPS.",
                id="scs_django.W020",
            )
        )
    if settings.SESSION_COOKIE_HTTPONLY is not True:
        messages.append(
            checks.Warning(
                "SESSION_COOKIE_HTTPONLY is not True, so scripts on your pages can read "
                "the session cookie: a single XSS flaw then gives sessions away.",
                hint="Set SESSION_COOKIE_HTTPONLY = True (Django's default).",
                id="scs_django.W021",
            )
        )
    return messages


@checks.register(checks.Tags.security, deploy=True)
def check_idle_timeout_deploy(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    if conf.scs_malformed():
        return []  # scs_django.E002 says so
    values = conf.get_settings()
    if values["IDLE_TIMEOUT"] is not None:
        return []
    return [
        checks.Warning(
            'SCS["IDLE_TIMEOUT"] is not set, so a session left unused does not end: '
            f"it lives until its absolute deadline, {values['ABSOLUTE_TIMEOUT']} "
            "seconds after it began, even on a computer its user walked away from.",
            hint='Set SCS["IDLE_TIMEOUT"] to the seconds of inactivity after which a '
            "session ends, such as 1800 (30 minutes).",
            id="scs_django.W023",
        )
    ]


@checks.register(checks.Tags.security)
def check_cookie(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    name = str(settings.SESSION_COOKIE_NAME)
    secure = settings.SESSION_COOKIE_SECURE is True
    # Browsers match the prefixes without regard to case.
    prefix = next(
        (p for p in (_HOST_PREFIX, _SECURE_PREFIX) if name.lower().startswith(p)), None
    )
    if prefix == _HOST_PREFIX:
        wrong = []
        if settings.SESSION_COOKIE_DOMAIN:
            wrong.append(f"SESSION_COOKIE_DOMAIN is {settings.SESSION_COOKIE_DOMAIN!r}")
        if settings.SESSION_COOKIE_PATH != "/":
            wrong.append(f"SESSION_COOKIE_PATH is {settings.SESSION_COOKIE_PATH!r}")
        if wrong:
            messages.append(
                checks.Error(
                    f"SESSION_COOKIE_NAME {name!r} has the __Host- prefix, but "
                    f"{' and '.join(wrong)}: browsers refuse such a cookie, so no "
                    "session would ever be kept.",
                    hint='Set SESSION_COOKIE_DOMAIN = None and SESSION_COOKIE_PATH = "/", '
                    "or drop the prefix.",
                    id="scs_django.E020",
                )
            )
    if prefix is not None and not secure:
        messages.append(
            checks.Error(
                f"SESSION_COOKIE_NAME {name!r} has the {name[: len(prefix)]} prefix, but "
                "SESSION_COOKIE_SECURE is not True: browsers refuse such a cookie "
                "without Secure, so no session would be kept over plain HTTP.",
                hint="Set SESSION_COOKIE_SECURE = True, or drop the prefix.",
                id="scs_django.E021",
            )
        )
    samesite = settings.SESSION_COOKIE_SAMESITE
    if isinstance(samesite, str) and samesite.lower() == "none" and not secure:
        messages.append(
            checks.Error(
                'SESSION_COOKIE_SAMESITE is "None" but SESSION_COOKIE_SECURE is not True: '
                "browsers refuse a SameSite=None cookie without Secure.",
                hint='Set SESSION_COOKIE_SECURE = True, or use SameSite "Lax" (the default).',
                id="scs_django.E022",
            )
        )
    return messages


@checks.register(checks.Tags.security)
def check_serializer(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    path = str(settings.SESSION_SERIALIZER)
    if not _uses_pickle(path):
        return []
    return [
        checks.Warning(
            f"SESSION_SERIALIZER {path!r} uses pickle: whoever can write to the session "
            "store (a leaked database or Redis password is enough) can run code in "
            "your application when the session is loaded.",
            hint='Use "django.contrib.sessions.serializers.JSONSerializer" (the default).',
            id="scs_django.W022",
        )
    ]


def _uses_pickle(path: str) -> bool:
    if "pickle" in path.lower():
        return True
    try:
        blob = import_string(path)().dumps({})
    except Exception:  # noqa: BLE001 - a serializer that fails is not ours to report
        return False
    # Every pickle of protocol 2 or later starts with the PROTO opcode.
    return isinstance(blob, bytes) and blob[:1] == b"\x80"
