"""Views the tests drive through the test client."""

from django.contrib import messages
from django.http import HttpResponse, HttpResponseServerError, JsonResponse
from django.middleware.csrf import get_token
from django.views.decorators.csrf import csrf_exempt


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
