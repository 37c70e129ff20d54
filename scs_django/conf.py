"""The ``SCS`` settings dict, merged over defaults and read at call time, and
the engine ``SESSION_ENGINE`` names."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from datetime import timezone as dt_timezone
from importlib import import_module
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

# None means "derive at call time" (ABSOLUTE_TIMEOUT follows SESSION_COOKIE_AGE).
DEFAULTS: dict[str, Any] = {
    "ABSOLUTE_TIMEOUT": None,
    "IDLE_TIMEOUT": None,
    "TOUCH_INTERVAL": 60,
    "RENEW_ON_LOGIN": True,
    "MAX_BYTES": 64 * 1024,
    "FAIL_OPEN": False,
    # While moving over from django.contrib.sessions: also accept its 32-character
    # session keys as tokens (hashed like ours), so imported sessions keep working.
    "ACCEPT_LEGACY_TOKENS": False,
    "CACHE_ALIAS": "default",
    "REVOKE_ON_PASSWORD_CHANGE": True,
    # Client metadata: off by default (privacy). IPs are cut to /24 and /64
    # unless IP_FULL; REMOTE_ADDR is used unless a trusted proxy header is named,
    # then the entry TRUSTED_PROXY_COUNT from its right (see metadata.py).
    "RECORD_IP": False,
    "RECORD_USER_AGENT": False,
    "IP_FULL": False,
    "TRUSTED_PROXY_HEADER": None,
    "TRUSTED_PROXY_COUNT": 1,
    # Sealing of stored sessions (crypto.py): on unless set to None. Without
    # ENCRYPTION_KEYS, keys are derived from SECRET_KEY and its fallbacks.
    "ENCRYPTION": "aes-gcm",
    "ENCRYPTION_KEYS": None,
    # The "your devices" pages (views.py) extend this template's "content" block.
    "DEVICES_BASE_TEMPLATE": "scs_django/base.html",
    # The expiry warning ({% scs_expiry_warning %}) shows this many seconds
    # before the idle end.
    "IDLE_WARNING": 60,
}

_cache: dict[str, Any] | None = None
_use_tz: bool | None = None


def get_settings() -> dict[str, Any]:
    """Return ``settings.SCS`` merged over :data:`DEFAULTS` (cached)."""
    global _cache
    if _cache is None:
        merged = dict(DEFAULTS)
        merged.update(getattr(settings, "SCS", None) or {})
        if merged["ABSOLUTE_TIMEOUT"] is None:
            merged["ABSOLUTE_TIMEOUT"] = settings.SESSION_COOKIE_AGE
        _cache = merged
    return _cache


def get(name: str) -> Any:
    """Return one ``SCS`` setting by name."""
    return (_cache or get_settings())[name]


def use_tz() -> bool:
    """``settings.USE_TZ``, read once: the read path asks on every request."""
    global _use_tz
    if _use_tz is None:
        _use_tz = bool(settings.USE_TZ)
    return _use_tz


def now() -> datetime:
    """``django.utils.timezone.now()`` with ``USE_TZ`` read once, not per call."""
    use = _use_tz if _use_tz is not None else use_tz()
    return datetime.now(dt_timezone.utc) if use else datetime.now()


def scs_malformed() -> bool:
    """True when ``settings.SCS`` is set to something other than a dict
    (check ``scs_django.E002``): the other checks then have nothing to read."""
    raw = getattr(settings, "SCS", None)
    return raw is not None and not isinstance(raw, dict)


def unknown_keys() -> list[str]:
    """Keys of ``settings.SCS`` that scs_django does not know."""
    return sorted(set(getattr(settings, "SCS", None) or {}) - set(DEFAULTS))


def session_engine() -> type[Any]:
    """The ``SessionStore`` class of ``SESSION_ENGINE``, imported at call time.

    Checks, commands and the per-user API ask this class what the engine can
    do (``issubclass`` of an scs_django engine), never compare the setting's
    string, so a subclass of an scs_django engine counts as that engine.
    Raises ``ImportError`` or ``AttributeError`` for a setting that names no
    engine.
    """
    engine: type[Any] = import_module(settings.SESSION_ENGINE).SessionStore
    return engine


# What other modules keep derived from settings: (setting names, reset).
_resets: list[tuple[frozenset[str], Callable[[], None]]] = []


def reset_on_change(names: Iterable[str], reset: Callable[[], None]) -> None:
    """Call ``reset()`` whenever one of the settings ``names`` changes (as
    tests do with ``override_settings``), so no cache outlives its setting."""
    _resets.append((frozenset(names), reset))


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    # The one receiver for every cache scs_django keeps of a setting.
    global _cache, _use_tz
    if setting in ("SCS", "SESSION_COOKIE_AGE"):
        _cache = None
    elif setting == "USE_TZ":
        _use_tz = None
    for names, reset in _resets:
        if setting in names:
            reset()
