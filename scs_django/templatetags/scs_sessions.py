"""Template tags of scs_django: ``{% load scs_sessions %}``.

``{% scs_expiry_warning %}`` puts the expiry warning on a page: a hidden box
that ``scs_django/expiry.js`` shows before the idle timeout ends the session,
with a "Stay signed in" button, and that sends the browser to the login page
once the session has ended. It renders nothing for an anonymous visitor.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.contrib.auth.views import redirect_to_login
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import SafeString

from .. import conf
from ..views import expiry_status

register = template.Library()


@register.simple_tag(takes_context=True)
def scs_expiry_warning(
    context: template.Context,
    warn_before: int | None = None,
    status_url: str | None = None,
    stay_url: str | None = None,
    login_url: str | None = None,
) -> str:
    """The expiry warning and its script, configured for this page.

    ``warn_before``: seconds before the idle end to show the warning (default
    ``SCS["IDLE_WARNING"]``). The URLs default to the ``scs_django:status`` and
    ``scs_django:stay`` views and to ``LOGIN_URL`` with this page as ``next``.
    """
    request: Any = getattr(context, "request", None) or context.get("request")
    user = getattr(request, "user", None)
    if request is None or user is None or not user.is_authenticated:
        return SafeString("")
    values = {
        "status_url": status_url or reverse("scs_django:status"),
        "stay_url": stay_url or reverse("scs_django:stay"),
        "login_url": login_url
        or redirect_to_login(request.get_full_path())["Location"],
        "warn_before": int(
            conf.get("IDLE_WARNING") if warn_before is None else warn_before
        ),
        "status": expiry_status(request.session, authenticated=True),
        "csrf_token": get_token(request),
    }
    return render_to_string("scs_django/expiry_warning.html", values, request=None)
