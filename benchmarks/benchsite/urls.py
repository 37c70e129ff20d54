"""The pages: /read/ and /write/ for a signed-in visitor, /login/ signs one in.

Under ASGI (BENCH_ASGI=1) the same pages are async views using the session's
``aget``/``aset`` and ``auser``/``alogin``.
"""

from typing import Any

from django.conf import settings
from django.contrib.auth import aauthenticate, alogin, authenticate, login
from django.http import HttpResponse
from django.urls import path

USERNAME = PASSWORD = "bench"  # noqa: S105 - a throwaway user of the bench database


def read(request: Any) -> HttpResponse:
    user = request.user
    return HttpResponse(f"{user.pk} {request.session.get('cart', 0)}")


def write(request: Any) -> HttpResponse:
    request.session["cart"] = request.session.get("cart", 0) + 1
    return HttpResponse("ok")


def sign_in(request: Any) -> HttpResponse:
    user = authenticate(request, username=USERNAME, password=PASSWORD)
    login(request, user)
    return HttpResponse("in")


async def aread(request: Any) -> HttpResponse:
    user = await request.auser()
    return HttpResponse(f"{user.pk} {await request.session.aget('cart', 0)}")


async def awrite(request: Any) -> HttpResponse:
    await request.session.aset("cart", await request.session.aget("cart", 0) + 1)
    return HttpResponse("ok")


async def asign_in(request: Any) -> HttpResponse:
    user = await aauthenticate(request, username=USERNAME, password=PASSWORD)
    await alogin(request, user)
    return HttpResponse("in")


if settings.ASGI:
    urlpatterns = [
        path("read/", aread),
        path("write/", awrite),
        path("login/", asign_in),
    ]
else:
    urlpatterns = [path("read/", read), path("write/", write), path("login/", sign_in)]
