"""A JSON 401 instead of a login redirect, for requests that asked for JSON.

A script polling an endpoint after its session ended would otherwise follow
the redirect and get the login page's HTML, which it cannot use. The
middleware hands every 302 here; only one that goes to the login page and
answers a request that prefers JSON is replaced.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.shortcuts import resolve_url
from django.utils.cache import patch_cache_control, patch_vary_headers

# What a browser's navigation accepts ("text/html,...,*/*;q=0.8") prefers the
# first of these; a script's "Accept: application/json" the second.
_CHOICES = ("text/html", "application/json")


def wants_json(request: HttpRequest) -> bool:
    """True when the request prefers JSON to HTML (``Accept``), or comes from
    a script that says so (``X-Requested-With: XMLHttpRequest``)."""
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return True
    return request.get_preferred_type(_CHOICES) == "application/json"


def _to_login(response: HttpResponseBase) -> bool:
    location = response.get("Location")
    if not location:
        return False
    login = urlsplit(resolve_url(settings.LOGIN_URL))
    target = urlsplit(location)
    # A login page on another host (a single sign-on service) must match by
    # host too; a relative Location is on this site's.
    if login.netloc and target.netloc and login.netloc != target.netloc:
        return False
    return target.path == login.path


def login_redirect_as_401(
    request: HttpRequest, response: HttpResponseBase
) -> HttpResponseBase:
    """``response``, or a 401 JSON answer ``{"authenticated": false,
    "login_url": ...}`` when it redirects a JSON request to the login page."""
    if not _to_login(response):
        return response
    # The same URL is answered by the Accept header: a cache must tell them apart.
    patch_vary_headers(response, ("Accept", "X-Requested-With"))
    if not wants_json(request):
        return response
    answer = JsonResponse(
        {"authenticated": False, "login_url": response["Location"]}, status=401
    )
    patch_vary_headers(answer, ("Accept", "X-Requested-With"))
    patch_cache_control(answer, no_store=True)
    return answer
