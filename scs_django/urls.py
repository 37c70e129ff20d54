"""The "your devices" pages and the session status endpoints.

``path("account/sessions/", include("scs_django.urls"))`` mounts them under
the ``scs_django`` namespace: ``scs_django:devices``, ``scs_django:sign_out``
(with the session's 8-character hash prefix), ``scs_django:sign_out_others``,
``scs_django:status`` and ``scs_django:stay``.
"""

from django.urls import path, re_path

from . import views

app_name = "scs_django"

urlpatterns = [
    path("", views.device_list, name="devices"),
    path("sign-out-others/", views.sign_out_others, name="sign_out_others"),
    path("status/", views.session_status, name="status"),
    path("stay/", views.stay_signed_in, name="stay"),
    re_path(r"^(?P<prefix>[0-9a-f]{8})/sign-out/$", views.sign_out, name="sign_out"),
]
