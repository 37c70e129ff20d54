"""URLs of the test project under uvicorn: tests/urls.py plus tests/asgi_views.py
and scs_django's own pages, mounted as a site mounts them."""

from django.urls import include, path

from tests import asgi_views
from tests.urls import urlpatterns as test_urlpatterns

urlpatterns = [
    path("asgi/write/", asgi_views.async_write),
    path("asgi/read/", asgi_views.async_read),
    path("asgi/login/", asgi_views.async_login),
    path("asgi/logout/", asgi_views.async_logout),
    path("asgi/cycle/", asgi_views.async_cycle),
    path("asgi/connections/", asgi_views.async_connections),
    path("sync/write/", asgi_views.sync_write),
    path("sync/login/", asgi_views.sync_login),
    path("account/sessions/", include("scs_django.urls")),
    *test_urlpatterns,
]
