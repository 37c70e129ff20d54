from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    # login/, logout/ and the password pages, named "login", "logout", ...
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
]
