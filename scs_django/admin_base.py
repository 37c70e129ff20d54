"""What the session admin's pages share: who may see and end sessions, where a
user's sessions page is, the confirmation page every revoke goes through, and
the short cells that keep the session list narrow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.admin.utils import quote
from django.contrib.auth import get_permission_codename, get_user_model
from django.db import router
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from django.utils.timesince import timesince, timeuntil
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from . import conf, tokens
from .devices import describe_agent
from .models import Session

ACTIVE, IDLE_EXPIRED, ABSOLUTE_EXPIRED = "active", "idle-expired", "absolute-expired"
STATES = {
    ACTIVE: gettext_lazy("Active"),
    IDLE_EXPIRED: gettext_lazy("Idle-expired"),
    ABSOLUTE_EXPIRED: gettext_lazy("Absolute-expired"),
}

USER_SESSIONS_URL = "admin:scs_django_session_user"
CONFIRMATION_TEMPLATE = "admin/scs_django/revoke_confirmation.html"
# The most characters of a user agent shown when no browser is recognised in it.
AGENT_LENGTH = 24


def may_revoke(request: HttpRequest) -> bool:
    """Whether ``request.user`` may end sessions: ``scs_django.delete_session``.

    Every revoke in the admin asks this, from the session list or the user list.
    """
    opts = Session._meta
    codename = get_permission_codename("delete", opts)
    return request.user.has_perm(f"{opts.app_label}.{codename}")


def may_view(request: HttpRequest) -> bool:
    """Whether ``request.user`` may see sessions, as ``ModelAdmin`` decides it
    (``view_session`` or ``change_session``)."""
    opts = Session._meta
    return any(
        request.user.has_perm(f"{opts.app_label}.{get_permission_codename(a, opts)}")
        for a in ("view", "change")
    )


def state_of(session: Session, now: Any) -> str:
    """``active``, ``idle-expired`` (idle or fixed deadline passed) or ``absolute-expired``."""
    if session.absolute_expiry <= now:
        return ABSOLUTE_EXPIRED
    if session.expiry <= now:
        return IDLE_EXPIRED
    return ACTIVE


def users_together() -> bool:
    """True when the router reads sessions and users from the same database,
    so a query can join them."""
    return router.db_for_read(Session) == router.db_for_read(get_user_model())


def table_in_use() -> bool:
    """Whether ``SESSION_ENGINE`` keeps its sessions in the Session table.

    True for the db and cached_db engines. With any other engine (the cache
    engine, or Django's own) the table holds at most rows left from before.
    """
    store = conf.session_engine()
    get_model_class = getattr(store, "get_model_class", None)
    return get_model_class is not None and issubclass(get_model_class(), Session)


def user_sessions_url(request: HttpRequest, user_pk: Any, site_name: str) -> str:
    """The admin page of one user's sessions, or "" when ``request.user`` may
    not see it or no admin site serves it.

    The page on the admin site ``site_name`` comes first; a site without the
    session admin (a separate site for users) links to the default one.
    """
    if user_pk is None or not may_view(request):
        return ""
    for current_app in (site_name, None):
        try:
            return reverse(
                USER_SESSIONS_URL, args=[quote(user_pk)], current_app=current_app
            )
        except NoReverseMatch:
            continue
    return ""


def report_revoked(model_admin: Any, request: HttpRequest, count: int) -> None:
    """Tell the admin how many sessions a revoke ended."""
    message = ngettext(
        "%(count)d session revoked.", "%(count)d sessions revoked.", count
    )
    model_admin.message_user(request, message % {"count": count}, messages.SUCCESS)


# -- the confirmation step, as django.contrib.admin's delete_selected has it ----------


def confirmed(request: HttpRequest) -> bool:
    """Whether a revoke was sent from its confirmation page ("Yes, I'm sure")."""
    return request.method == "POST" and request.POST.get("post") == "yes"


def confirmation(
    request: HttpRequest,
    admin_site: Any,
    *,
    opts: Any,
    question: str,
    items: Iterable[str],
    fields: Iterable[tuple[str, Any]],
    cancel_url: str,
    crumb: tuple[str, str] | None = None,
) -> TemplateResponse:
    """The page asking to confirm a revoke: ``question``, the ``items`` it ends,
    and a form that posts ``fields`` back with ``post=yes``.

    Nothing has changed when it shows; a revoke view acts only when
    :func:`confirmed`. ``crumb`` is a (label, url) breadcrumb before the page's.
    """
    request.current_app = admin_site.name
    context = {
        **admin_site.each_context(request),
        "opts": opts,
        "title": _("Are you sure?"),
        "subtitle": None,
        "question": question,
        "items": list(items),
        "fields": [*fields, ("post", "yes")],
        "cancel_url": cancel_url,
        "crumb": crumb,
    }
    return TemplateResponse(request, CONFIRMATION_TEMPLATE, context)


def session_line(session: Any, now: datetime, user: Any = None) -> str:
    """One session in a sentence, for a confirmation page: its hash prefix,
    ``user`` if given, when it was last seen, its IP address and user agent."""
    parts = [tokens.hash_prefix(session.key_hash)]
    if user is not None:
        parts.append(str(user))
    seen = _("last seen %(delta)s ago") % {
        "delta": timesince(session.last_seen, now, depth=1)
    }
    parts.append(seen)
    if session.expiry <= now:
        parts.append(_("already ended"))
    parts += [session.ip or "", Truncator(session.user_agent).chars(60)]
    return " · ".join(part for part in parts if part)


# -- short cells: the list fits a 1280-pixel window ---------------------------------


def full_time(value: datetime) -> str:
    """``value`` in full, in the current time zone, as the admin shows dates."""
    return formats.localize(
        timezone.localtime(value) if timezone.is_aware(value) else value
    )


def relative_time(value: datetime | None, now: datetime, note: str = "") -> str:
    """``value`` as "3 minutes ago" or "in 7 hours", the date and time in full
    (and ``note``) in a tooltip and in the ``<time>`` element's ``datetime``."""
    if value is None:
        return "-"
    if abs((value - now).total_seconds()) < 60:
        text = _("just now")
    elif value > now:
        text = _("in %(delta)s") % {"delta": timeuntil(value, now, depth=1)}
    else:
        text = _("%(delta)s ago") % {"delta": timesince(value, now, depth=1)}
    title = f"{full_time(value)}; {note}" if note else full_time(value)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>', value.isoformat(), title, text
    )


# A piece ending in a separator, or 8 characters without one.
_PIECE = re.compile(r"[^/.:;]{0,7}[/.:;]|[^/.:;]{1,8}")


def breakable(text: str) -> str:
    """``text`` with points where a line may break: after each ``/ . : ;``
    and at most 8 characters apart, so that an IPv6 address or an odd user
    agent does not make its column the widest in the list."""
    return format_html_join(
        mark_safe("<wbr>"), "{}", ((p,) for p in _PIECE.findall(text))
    )


def client_cell(user_agent: str, ip: str | None) -> str:
    """A browser's name ("Firefox on Windows") over its IP address, the whole
    user agent in a tooltip; "-" when neither was recorded."""
    parts: list[str] = []
    if user_agent:
        name = describe_agent(user_agent)
        if name.startswith("Unknown browser"):
            name = breakable(Truncator(user_agent).chars(AGENT_LENGTH))
        parts.append(format_html('<span title="{}">{}</span>', user_agent, name))
    if ip:
        parts.append(breakable(ip))
    return format_html_join(mark_safe("<br>"), "{}", ((p,) for p in parts)) or "-"
