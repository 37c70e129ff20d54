"""The "your devices" pages and the session's status for scripts.

Mount them with ``path("account/sessions/", include("scs_django.urls"))``:

* ``devices``: the signed-in user's sessions;
* ``sign_out`` and ``sign_out_others``: a confirmation page (GET) and the
  sign-out itself (POST, with Django's CSRF check);
* ``session_status``: JSON about the request's session that does not count as
  the user's activity, and ``stay_signed_in`` (POST), which does.

Each view is written once, as steps (:mod:`scs_django.backends.steps`), and
run as async code when the engine's per-user calls are coroutines, as sync
code otherwise (see :func:`engine_is_async`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import (
    Http404,
    HttpRequest,
    HttpResponseBase,
    HttpResponseRedirect,
    JsonResponse,
)
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import conf, devices, lifetime, sessions
from .backends.engine import StoragePrimitives
from .backends.steps import Io, Steps, arun, run

# What an engine's auser_sessions is when it runs the sync one in a thread.
_THREADED = getattr(StoragePrimitives.auser_sessions, "__func__", None)


def engine_is_async() -> bool:
    """True when the configured engine lists a user's sessions with a coroutine
    of its own (the db and cached_db engines, on Django's async ORM).

    The pages then run as async code. On the cache engine, whose Redis client
    is sync (its ``a``-twins only run the sync calls in a thread), they run as
    sync code, in one thread.
    """
    listing = getattr(conf.session_engine(), "auser_sessions", None)
    own = getattr(listing, "__func__", None)
    return own is not None and own is not _THREADED


async def _serve(
    request: HttpRequest, steps_for: Callable[[HttpRequest], Steps[HttpResponseBase]]
) -> HttpResponseBase:
    # The one dispatcher between the async and the sync run of a view's steps.
    if engine_is_async():
        return await arun(steps_for(request))
    return await sync_to_async(run)(steps_for(request))


def _user(request: HttpRequest) -> Any:
    return request.user


async def _auser(request: HttpRequest) -> Any:
    return await request.auser()


def _user_io(request: HttpRequest) -> Io:
    return Io(_user, _auser, request)


# -- the session's status --------------------------------------------------------------


def _seconds_until(end: datetime | None, now: datetime) -> int | None:
    return None if end is None else max(0, lifetime.seconds_until(end, now))


def expiry_status(session: Any, authenticated: bool) -> dict[str, Any]:
    """What :func:`session_status` answers for a loaded ``session``.

    ``idle_seconds``: until the session ends without further activity (None
    without an idle timeout); ``absolute_seconds``: until it ends whatever
    the user does (the absolute deadline, or a fixed one set with
    ``set_expiry(datetime)`` when earlier). Both None for an anonymous user.
    """
    if not authenticated:
        return {"authenticated": False, "idle_seconds": None, "absolute_seconds": None}
    now = timezone.now()
    fixed = lifetime.fixed_deadline(session.get("_session_expiry"), conf.use_tz())
    ends = [getattr(session, "absolute_expiry", None), fixed]
    absolute = min((end for end in ends if end is not None), default=None)
    return {
        "authenticated": True,
        "idle_seconds": _seconds_until(getattr(session, "idle_expiry", None), now),
        "absolute_seconds": _seconds_until(absolute, now),
    }


def _status(request: HttpRequest, *, activity: bool) -> Steps[HttpResponseBase]:
    state = getattr(request.session, "state", None)
    if state is not None and not activity:
        # Read the session, but do not keep it alive: a poll is not the user.
        state.count_activity = False
    user = yield _user_io(request)
    return JsonResponse(expiry_status(request.session, user.is_authenticated))


@never_cache
@require_GET
async def session_status(request: HttpRequest) -> HttpResponseBase:
    """JSON ``{"authenticated", "idle_seconds", "absolute_seconds"}`` about the
    request's session, read without counting as the user's activity: polling
    it never moves the idle deadline."""
    return await _serve(request, functools.partial(_status, activity=False))


@never_cache
@require_POST
async def stay_signed_in(request: HttpRequest) -> HttpResponseBase:
    """The same JSON as :func:`session_status`, for a request that counts as
    the user's activity (the idle deadline moves as on any page)."""
    return await _serve(request, functools.partial(_status, activity=True))


# -- the devices pages -------------------------------------------------------------------


@dataclass(frozen=True)
class Device:
    """One row of the devices page: a session and what is shown of its client."""

    session: sessions.UserSession
    browser: str  # "" unless SCS["RECORD_USER_AGENT"] recorded one
    place: str  # "" unless SCS["RECORD_IP"] recorded one


def _device(session: sessions.UserSession) -> Device:
    return Device(
        session,
        devices.describe_agent(session.user_agent),
        devices.describe_address(session.ip),
    )


def _page(
    request: HttpRequest, template: str, context: dict[str, Any]
) -> TemplateResponse:
    context = {"base_template": conf.get("DEVICES_BASE_TEMPLATE"), **context}
    return TemplateResponse(request, f"scs_django/{template}", context)


def _back_to_list(request: HttpRequest) -> HttpResponseRedirect:
    match = request.resolver_match
    namespace = match.namespace if match is not None else None
    url = reverse("scs_django:devices", current_app=namespace)
    return HttpResponseRedirect(url)


def _listing(request: HttpRequest, user: Any) -> Steps[list[Device] | None]:
    # None: the engine cannot list a user's sessions (the sealed-cookie engine
    # keeps none on the server; a cache engine not on Redis has no index).
    try:
        listed = yield Io(sessions.for_user, sessions.afor_user, user, request)
    except NotImplementedError:
        return None
    return [_device(session) for session in listed]


def _devices(request: HttpRequest) -> Steps[HttpResponseBase]:
    user = yield _user_io(request)
    listed = yield from _listing(request, user)
    return _page(request, "devices.html", {"devices": listed})


@never_cache
@login_required
@require_GET
async def device_list(request: HttpRequest) -> HttpResponseBase:
    """The signed-in user's sessions, this one marked, each with a sign-out."""
    return await _serve(request, _devices)


def _signing_out(request: HttpRequest, prefix: str) -> Steps[HttpResponseBase]:
    user = yield _user_io(request)
    listed = yield from _listing(request, user)
    # Only another of the user's own sessions: someone else's, an unknown one
    # and the session making the request (a sign-out, not this page's job)
    # are all "not found", and nothing changes.
    device = next(
        (
            d
            for d in listed or ()
            if d.session.hash_prefix == prefix and not d.session.is_current
        ),
        None,
    )
    if device is None:
        raise Http404("None of your other sessions has this name.")
    if request.method != "POST":
        return _page(request, "sign_out.html", {"device": device})
    ended = yield Io(
        functools.partial(sessions.revoke_session, user=user),
        functools.partial(sessions.arevoke_session, user=user),
        device.session.key_hash,
    )
    if ended:
        text = gettext("Signed out the session %(name)s.")
    else:
        text = gettext("The session %(name)s had already ended.")
    messages.success(request, text % {"name": prefix}, fail_silently=True)
    return _back_to_list(request)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
async def sign_out(request: HttpRequest, prefix: str) -> HttpResponseBase:
    """GET: ask to confirm signing out the session named ``prefix`` (its
    8-character hash prefix); POST: sign it out. 404 unless it is another of
    the user's own live sessions."""
    return await _serve(request, functools.partial(_signing_out, prefix=prefix))


def _signing_out_others(request: HttpRequest) -> Steps[HttpResponseBase]:
    user = yield _user_io(request)
    listed = yield from _listing(request, user)
    if request.method != "POST" or listed is None:
        others = (
            None if listed is None else [d for d in listed if not d.session.is_current]
        )
        return _page(request, "sign_out_others.html", {"others": others})
    ended = yield Io(sessions.revoke, sessions.arevoke, user, request.session)
    text = ngettext(
        "Signed out %(count)d other session.",
        "Signed out %(count)d other sessions.",
        ended,
    )
    messages.success(request, text % {"count": ended}, fail_silently=True)
    return _back_to_list(request)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
async def sign_out_others(request: HttpRequest) -> HttpResponseBase:
    """GET: ask to confirm signing out every other session of the user; POST:
    do it, keeping the session making the request."""
    return await _serve(request, _signing_out_others)
