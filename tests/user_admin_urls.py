"""tests.urls plus an admin site whose user admin has UserSessionsAdminMixin,
as docs/admin.rst tells users to set it up."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.urls import path

from scs_django.admin import UserSessionsAdminMixin

from . import urls


class SessionsUserAdmin(UserSessionsAdminMixin, UserAdmin):
    pass


site = admin.AdminSite(name="users_admin")
site.register(User, SessionsUserAdmin)

urlpatterns = [path("users-admin/", site.urls), *urls.urlpatterns]
