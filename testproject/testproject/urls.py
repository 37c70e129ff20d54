from demo import views
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", views.home, name="home"),
    path("shop/", views.cart, name="shop"),
    path("shop/add/<slug:slug>/", views.cart_add, name="cart-add"),
    path("shop/remove/<slug:slug>/", views.cart_remove, name="cart-remove"),
    path("shop/empty/", views.cart_empty, name="cart-empty"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", views.LogoutView.as_view(), name="logout"),
    # scs_django's "your devices" pages, as a site mounts them.
    path("account/sessions/", include("scs_django.urls")),
    path("admin/", admin.site.urls),
]
