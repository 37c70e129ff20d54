"""The user a session's data names, as ``django.contrib.auth`` stored it."""

from __future__ import annotations

from typing import Any


def user_id_of(data: dict[str, Any], unusable: Any = None) -> Any:
    """The user id in ``data``: None when anonymous, ``unusable`` when the
    stored value is no id of the user model."""
    from django.contrib.auth import SESSION_KEY, get_user_model

    raw = data.get(SESSION_KEY)
    if raw is None:
        return None
    try:
        return get_user_model()._meta.pk.to_python(raw)
    except Exception:  # noqa: BLE001 - a bad id is no user, never a crash
        return unusable
