"""The URLconf of tests/test_devices.py, test_session_status.py and
test_ajax.py: scs_django's pages mounted as a site would, a login page, and a
few views of their own."""

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.template import engines
from django.urls import include, path

WARNING_PAGE = "{% load scs_sessions %}<body>{% scs_expiry_warning %}</body>"


@login_required
def protected(request):
    return JsonResponse({"user": request.user.pk})


def elsewhere(request):
    # A redirect that does not go to the login page.
    return HttpResponseRedirect("/protected/")


def warning_page(request):
    page = engines["django"].from_string(WARNING_PAGE)
    return HttpResponse(page.render(request=request))


def write(request):
    request.session["value"] = request.GET.get("value", "written")
    return HttpResponse("ok")


urlpatterns = [
    path("account/sessions/", include("scs_django.urls")),
    path("accounts/login/", auth_views.LoginView.as_view()),
    path("protected/", protected),
    path("elsewhere/", elsewhere),
    path("warning/", warning_page),
    path("write/", write),
]
