"""Views that tests/test_asgi_server.py drives through uvicorn.

The ``async_*`` views use only the session's and auth's async API (``aget``,
``aset``, ``asave``, ``acycle_key``, ``aauthenticate``, ``alogin``,
``alogout``), so what they store comes from the async path; the ``sync_*``
views do the same through the sync API, to compare what each path stores.
The login views are exempt from CSRF: the test posts from no form.
``async_connections`` reports on the server process itself: whether the db
engine's statements are still those an earlier request saw, and how many
connection wrappers are alive.
"""

import gc

from asgiref.sync import sync_to_async
from django.contrib.auth import aauthenticate, alogin, alogout, authenticate, login
from django.db import router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from scs_django.backends import db_sql
from scs_django.models import Session


async def async_write(request):
    await request.session.aset(
        request.GET.get("key", "value"), request.GET.get("value", "written")
    )
    # Saved here by the view, before the middleware's own save.
    await request.session.asave()
    return HttpResponse("ok")


async def async_read(request):
    user = await request.auser()
    return JsonResponse(
        {
            "value": await request.session.aget(request.GET.get("key", "value")),
            "session_user": await request.session.aget("_auth_user_id"),
            "user": user.pk,
        }
    )


@csrf_exempt
async def async_login(request):
    user = await aauthenticate(
        request,
        username=request.POST.get("username"),
        password=request.POST.get("password"),
    )
    if user is None:
        return HttpResponse("wrong credentials", status=403)
    await alogin(request, user)
    return JsonResponse({"user": user.pk})


@csrf_exempt
async def async_logout(request):
    await alogout(request)
    return HttpResponse("bye")


async def async_cycle(request):
    await request.session.acycle_key()
    return HttpResponse("cycled")


def sync_write(request):
    request.session[request.GET.get("key", "value")] = request.GET.get(
        "value", "written"
    )
    request.session.save()
    return HttpResponse("ok")


@csrf_exempt
def sync_login(request):
    user = authenticate(
        request,
        username=request.POST.get("username"),
        password=request.POST.get("password"),
    )
    if user is None:
        return HttpResponse("wrong credentials", status=403)
    login(request, user)
    return JsonResponse({"user": user.pk})


# The db engine's statements first seen by async_connections, per alias.
_first_statements = {}


def _connections_now():
    alias = router.db_for_read(Session)
    found = db_sql.statements(Session, alias)
    first = _first_statements.setdefault(alias, found)
    gc.collect()
    wrappers = sum(isinstance(o, BaseDatabaseWrapper) for o in gc.get_objects())
    return {"same_statements": found is first, "wrappers": wrappers}


async def async_connections(request):
    """Whether this request's db engine statements are those an earlier
    request saw, and how many connection wrappers the process holds."""
    return JsonResponse(await sync_to_async(_connections_now)())
