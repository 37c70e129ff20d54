"""A JSON 401 instead of a login redirect, for requests that asked for JSON.

A script polling an endpoint after its session ended would otherwise follow
the redirect and get the login page's HTML, which it cannot use. The
middleware hands every redirect here; only one that goes to the login page
and answers a request that asked for JSON is replaced.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.shortcuts import resolve_url


def wants_json(request: HttpRequest) -> bool:
    """True when the request asked for JSON (Accept) or came from a script
    that says so (``X-Requested-With: XMLHttpRequest``)."""
    accept = request.headers.get("Accept", "")
    return "application/json" in accept or (
        request.headers.get("X-Requested-With") == "XMLHttpRequest"
    )


def _to_login(response: HttpResponseBase) -> bool:
    location = response.get("Location")
    if not location:
        return False
    login = urlsplit(resolve_url(settings.LOGIN_URL)).path
    return urlsplit(location).path == login


def login_redirect_as_401(
    request: HttpRequest, response: HttpResponseBase
) -> HttpResponseBase:
    """``response``, or a 401 JSON answer when it redirects a JSON request to
    the login page."""
    if not (_to_login(response) and wants_json(request)):
        return response
    answer = JsonResponse(
        {"authenticated": False, "login_url": response["Location"]}, status=401
    )
    answer["Cache-Control"] = "no-store"
    return answer
