"""Views the tests drive through the test client."""

from django.contrib import messages
from django.db import router, transaction
from django.http import HttpResponse, HttpResponseServerError, JsonResponse
from django.middleware.csrf import get_token
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import csrf_exempt

from scs_django import sessions


def untouched(request):
    return HttpResponse("no session here")


def read(request):
    return JsonResponse(
        {
            "value": request.session.get("value"),
            "user": request.session.get("_auth_user_id"),
        }
    )


def write(request):
    request.session["value"] = request.GET.get("value", "written")
    return HttpResponse("ok")


def write_then_fail(request):
    request.session["value"] = "from a failed request"
    return HttpResponseServerError("boom")


def renew(request):
    request.session.renew_token()
    return HttpResponse("renewed")


def logout_view(request):
    request.session.flush()
    return HttpResponse("bye")


def set_expiry(request):
    request.session["value"] = "expiring"
    request.session.set_expiry(int(request.GET["seconds"]))
    return HttpResponse("ok")


def add_message(request):
    messages.success(request, request.GET.get("text", "hello"))
    return HttpResponse("added")


def show_messages(request):
    return JsonResponse(
        {"messages": [m.message for m in messages.get_messages(request)]}
    )


def csrf_token_view(request):
    return HttpResponse(get_token(request))


@csrf_exempt
def exempt_write(request):
    request.session["value"] = request.POST.get("value", "posted")
    return HttpResponse("ok")


async def async_read(request):
    return JsonResponse({"value": await request.session.aget("value")})


async def async_write(request):
    await request.session.aset("value", request.GET.get("value", "async"))
    return HttpResponse("ok")


# A test sets this to run another request while one is in flight.
IN_FLIGHT = None


def slow_write(request):
    request.session.get("value")  # loaded before the other request runs
    IN_FLIGHT()
    request.session["value"] = "written by the slow request"
    return HttpResponse("ok")


def slow_read(request):
    value = request.session.get("value")
    IN_FLIGHT()
    return JsonResponse({"value": value})


def write_other(request):
    request.session["other"] = request.GET.get("value", "other")
    return HttpResponse("ok")


def my_sessions(request):
    """A "your devices" page."""
    return JsonResponse(
        {
            "sessions": [
                {"hash_prefix": s.hash_prefix, "is_current": s.is_current}
                for s in sessions.for_user(request.user, request)
            ]
        }
    )


@csrf_exempt
def end_other_sessions(request):
    """The "log out everywhere else" button."""
    return JsonResponse({"ended": sessions.revoke(request.user, keep=request.session)})


# -- tests/security ---------------------------------------------------------------


def write_oversized(request):
    request.session["value"] = "x" * int(request.GET["bytes"])
    return HttpResponse("ok")


def _unstorable(kind):
    if kind == "object":
        return object()
    if kind == "circular":
        loop = []
        loop.append(loop)
        return loop
    nested = []
    for _ in range(100_000):
        nested = [nested]
    return nested


def write_unstorable(request):
    request.session["value"] = _unstorable(request.GET["kind"])
    return HttpResponse("ok")


class ViewFailed(Exception):
    pass


def write_then_raise(request):
    request.session["value"] = "from a request that raised"
    raise ViewFailed("the view failed after changing the session")


def write_then_503(request):
    request.session["value"] = "from a request answered 503"
    return HttpResponse("busy", status=503)


def write_key(request):
    request.session[request.GET["key"]] = request.GET["value"]
    return HttpResponse("ok")


@cache_control(public=True, max_age=60)
def write_public(request):
    request.session["value"] = "public page"
    return HttpResponse("ok")


def session_items(request):
    """Every key and value of the session, for tests that count them."""
    return JsonResponse(dict(request.session.items()))


def cycle_key(request):
    """What update_session_auth_hash() does for an admin changing another
    user's password: cycle_key() and nothing else."""
    request.session.cycle_key()
    return HttpResponse("cycled")


# -- tests/security/test_failure_modes.py ------------------------------------------


async def async_logout_session(request):
    await request.session.aflush()
    return HttpResponse("bye")


async def async_renew(request):
    await request.session.acycle_key()
    return HttpResponse("renewed")


@csrf_exempt
def slow_end_other_sessions(request):
    """The "log out everywhere else" button, with IN_FLIGHT run once the
    session is loaded."""
    request.user.pk  # noqa: B018 - loads the session
    IN_FLIGHT()
    return JsonResponse({"ended": sessions.revoke(request.user, keep=request.session)})


class RolledBack(Exception):
    pass


def write_in_rolled_back_transaction(request):
    """Saves the session inside a transaction that then fails."""
    using = router.db_for_write(request.session.get_model_class())
    with transaction.atomic(using=using):
        request.session["value"] = "never committed"
        request.session.save()
        raise RolledBack("the transaction that saved the session failed")


def peek(request):
    # A status poll: reads the session without counting as the user's activity.
    request.session.state.count_activity = False
    return JsonResponse({"value": request.session.get("value")})


def _remember_choice(request):
    remember = request.POST.get("remember") == "on"
    idle = int(request.POST["idle"]) if request.POST.get("idle") else None
    return remember, idle


@csrf_exempt
def sign_in_remembering(request):
    # The documented one line after login(), on a plain login view.
    from django.contrib.auth import authenticate, login

    user = authenticate(
        request, username=request.POST["username"], password=request.POST["password"]
    )
    login(request, user)
    remember, idle = _remember_choice(request)
    request.session.remember_me(remember, idle=idle)
    return HttpResponse("signed in")


@csrf_exempt
async def async_sign_in_remembering(request):
    from django.contrib.auth import aauthenticate, alogin

    user = await aauthenticate(
        request, username=request.POST["username"], password=request.POST["password"]
    )
    await alogin(request, user)
    remember, idle = _remember_choice(request)
    await request.session.aremember_me(remember, idle=idle)
    return HttpResponse("signed in")
