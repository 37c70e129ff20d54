from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("untouched/", views.untouched),
    path("read/", views.read),
    path("write/", views.write),
    path("write-then-fail/", views.write_then_fail),
    path("renew/", views.renew),
    path("logout-session/", views.logout_view),
    path("set-expiry/", views.set_expiry),
    path("messages/add/", views.add_message),
    path("messages/", views.show_messages),
    path("csrf/", views.csrf_token_view),
    path("exempt-write/", views.exempt_write),
    path("slow/write/", views.slow_write),
    path("slow/read/", views.slow_read),
    path("write-other/", views.write_other),
    path("async/read/", views.async_read),
    path("async/write/", views.async_write),
    path("accounts/login/", auth_views.LoginView.as_view()),
    path("accounts/logout/", auth_views.LogoutView.as_view()),
    path(
        "accounts/password_change/",
        auth_views.PasswordChangeView.as_view(success_url="/read/"),
    ),
    path("my-sessions/", views.my_sessions),
    path("my-sessions/end-others/", views.end_other_sessions),
    path("admin/", admin.site.urls),
]

# tests/security
urlpatterns += [
    path("write-oversized/", views.write_oversized),
    path("write-unstorable/", views.write_unstorable),
    path("write-then-raise/", views.write_then_raise),
    path("write-then-503/", views.write_then_503),
]
urlpatterns += [path("write-key/", views.write_key)]
urlpatterns += [path("write-public/", views.write_public)]
urlpatterns += [path("items/", views.session_items)]
urlpatterns += [path("cycle-key/", views.cycle_key)]
urlpatterns += [
    path("async/logout-session/", views.async_logout_session),
    path("async/renew/", views.async_renew),
    path("slow/end-others/", views.slow_end_other_sessions),
    path("write-rolled-back/", views.write_in_rolled_back_transaction),
]
urlpatterns += [path("peek/", views.peek)]
urlpatterns += [
    path("sign-in-remembering/", views.sign_in_remembering),
    path("async/sign-in-remembering/", views.async_sign_in_remembering),
]
