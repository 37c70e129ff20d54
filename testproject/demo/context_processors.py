"""What every demo page shows about the visitor's session, in its header."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from . import shop

# The list page of scs_django.urls, mounted at account/sessions/.
DEVICES_URL_NAME = "scs_django:devices"


def _seconds_until(deadline: datetime | None, now: datetime) -> int | None:
    if deadline is None:
        return None
    return max(0, int((deadline - now).total_seconds()))


def devices_url() -> str | None:
    try:
        return reverse(DEVICES_URL_NAME)
    except NoReverseMatch:
        return None


def session_summary(request: HttpRequest) -> dict[str, Any]:
    """The token-hash prefix, the deadlines and the cart's size, as ``scs_demo``."""
    session: Any = getattr(request, "session", None)
    if session is None or not hasattr(session, "ensure_loaded"):
        return {}
    # Loading tells a live session from a stale cookie's token; without a
    # cookie it costs nothing and creates nothing (no row, no cookie).
    session.ensure_loaded()
    key_hash = session.key_hash
    now = timezone.now()
    return {
        "scs_demo": {
            "hash_prefix": key_hash[:8] if key_hash else None,
            "created_at": session.created_at,
            "idle_expiry": session.idle_expiry,
            "idle_seconds": _seconds_until(session.idle_expiry, now),
            "absolute_expiry": session.absolute_expiry,
            "absolute_seconds": _seconds_until(session.absolute_expiry, now),
            "cart_count": shop.item_count(session),
            "devices_url": devices_url(),
        }
    }
