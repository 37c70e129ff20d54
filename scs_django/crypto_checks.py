"""System checks of sealing (``SCS["ENCRYPTION"]`` and
``SCS["ENCRYPTION_KEYS"]``, and the cookie engine, which needs it): a bad key
fails at startup, never per request."""

from __future__ import annotations

import difflib
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from . import conf, crypto
from .backends.cookie import SessionStore as CookieStore


@checks.register(checks.Tags.security)
def check_encryption(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    if conf.scs_malformed():
        return []  # scs_django.E002 says so
    values = conf.get_settings()
    messages: list[checks.CheckMessage] = []
    algorithm = values["ENCRYPTION"]
    if algorithm is not None and (
        not isinstance(algorithm, str) or algorithm not in crypto.ALGORITHMS
    ):
        close = (
            difflib.get_close_matches(algorithm.lower(), crypto.ALGORITHMS, n=1)
            if isinstance(algorithm, str)
            else []
        )
        messages.append(
            checks.Error(
                f'SCS["ENCRYPTION"] is {algorithm!r}, which is not an algorithm '
                "scs_django knows.",
                hint=f'Did you mean SCS["ENCRYPTION"] = "{close[0]}"?'
                if close
                else 'Use "aes-gcm" (the default), "chacha20-poly1305", or None to '
                "store sessions unencrypted.",
                id="scs_django.E040",
            )
        )
    keys = values["ENCRYPTION_KEYS"]
    if keys is not None:
        messages.extend(_key_list_messages(keys))
    elif algorithm is not None:
        try:
            settings.SECRET_KEY  # noqa: B018 - Django raises when it is empty
        except ImproperlyConfigured:
            messages.append(
                checks.Error(
                    "Sessions are encrypted, but SECRET_KEY is empty and "
                    'SCS["ENCRYPTION_KEYS"] is not set, so there is no key.',
                    hint='Set SECRET_KEY, or give SCS["ENCRYPTION_KEYS"] a list of '
                    "keys.",
                    id="scs_django.E044",
                )
            )
    return messages


def _key_list_messages(keys: Any) -> list[checks.CheckMessage]:
    # Messages name a key by its place in the list: never print a key.
    if not isinstance(keys, (list, tuple)) or not keys:
        problem = "empty" if isinstance(keys, (list, tuple)) else "not a list"
        return [
            checks.Error(
                f'SCS["ENCRYPTION_KEYS"] is {problem}; it must be a list of keys, or '
                "None to derive them from SECRET_KEY.",
                hint='Write SCS["ENCRYPTION_KEYS"] = [new_key, old_key, ...]: the first '
                "encrypts, all decrypt.",
                id="scs_django.E041",
            )
        ]
    messages: list[checks.CheckMessage] = []
    seen: dict[bytes, int] = {}
    for index, value in enumerate(keys):
        try:
            key = crypto.parse_key(value)
        except ValueError as exc:
            messages.append(
                checks.Error(
                    f'SCS["ENCRYPTION_KEYS"][{index}] is not a key: {exc}.',
                    hint="A key is 32 random bytes, or their base64 text, such as "
                    'base64.b64encode(os.urandom(32)).decode("ascii").',
                    id="scs_django.E042",
                )
            )
            continue
        if key in seen:
            messages.append(
                checks.Error(
                    f'SCS["ENCRYPTION_KEYS"][{index}] is the same key as '
                    f'SCS["ENCRYPTION_KEYS"][{seen[key]}].',
                    hint="Keep each key once, in the place that says when it was "
                    "made: the first encrypts.",
                    id="scs_django.E043",
                )
            )
        else:
            seen[key] = index
    return messages


@checks.register(checks.Tags.security, deploy=True)
def check_encryption_deploy(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    if conf.scs_malformed():
        return []  # scs_django.E002 says so
    if conf.get_settings()["ENCRYPTION"] is not None:
        return []
    return [
        checks.Warning(
            'SCS["ENCRYPTION"] is None, so session data is stored unencrypted: '
            "whoever reads the database, the cache or a backup reads every session, "
            "and whoever can write there can change one.",
            hint='Remove SCS["ENCRYPTION"] to use "aes-gcm", the default.',
            id="scs_django.W040",
        )
    ]


def _cookie_engine() -> bool:
    try:
        return issubclass(conf.session_engine(), CookieStore)
    except (ImportError, AttributeError):
        return False  # scs_django.E004 says so


@checks.register(checks.Tags.security)
def check_cookie_engine(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    if not _cookie_engine() or conf.scs_malformed():
        return []  # a malformed SCS is scs_django.E002's to report
    if conf.get("ENCRYPTION") is not None:
        return []
    return [
        checks.Error(
            'The cookie session engine needs sealing, but SCS["ENCRYPTION"] is None: '
            "anyone could write an unsealed cookie, so the engine refuses to work.",
            hint='Remove SCS["ENCRYPTION"] to seal with "aes-gcm", the default.',
            id="scs_django.E050",
        )
    ]


@checks.register(checks.Tags.security, deploy=True)
def check_cookie_engine_deploy(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    if not _cookie_engine():
        return []
    return [
        checks.Warning(
            "Sessions are sealed into their cookies (scs_django.backends.cookie), so "
            "the server cannot end one: logout clears the browser's cookie, but a "
            "copy of it keeps working until its idle or absolute deadline, and a "
            "user's sessions cannot be listed or revoked.",
            hint="Use the db or cache engine where a logout must end the session "
            "everywhere; otherwise keep the timeouts short and silence this check.",
            id="scs_django.W050",
        )
    ]
