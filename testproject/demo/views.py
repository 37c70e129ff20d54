"""The demo's pages: what scs_django keeps about a session, a shop cart, login."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from scs_django import conf
from scs_django.models import Session

from . import shop

# Where the login view leaves the token-hash prefix from before the renewal,
# for the home page to show next to the current one.
RENEWAL_KEY = "demo_renewal"

DEMO_USERS = (
    ("demo", "demo", "staff and superuser: may open the admin"),
    ("alice", "alice", "a regular user"),
)


def _prefix(key_hash: str | None) -> str | None:
    return key_hash[:8] if key_hash else None


def stored_row(session: Any) -> dict[str, Any] | None:
    """What the database holds for ``session``: its row, with the sealed data
    shortened to its size and first bytes (None on a cache-only engine)."""
    key_hash = getattr(session, "stored_hash", None)
    if not key_hash or not settings.SESSION_ENGINE.endswith(
        ("backends.db", "backends.cached_db")
    ):
        return None
    row = (
        Session.objects.filter(key_hash=key_hash)
        .values("data", "ip", "user_agent", "user_id", "last_seen", "expiry")
        .first()
    )
    if row is None:
        return None
    data = bytes(row.pop("data"))
    return {**row, "size": len(data), "head": data[:20].hex(" ")}


def home(request: HttpRequest) -> HttpResponse:
    session: Any = request.session
    return render(
        request,
        "demo/home.html",
        {
            "renewal": session.get(RENEWAL_KEY),
            "data_keys": sorted(session.keys()),
            "row": stored_row(session),
            "sealing": conf.get("ENCRYPTION"),
        },
    )


def cart(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "demo/shop.html",
        {
            "products": shop.PRODUCTS.values(),
            "lines": shop.lines(request.session),
            "total": shop.total(request.session),
        },
    )


def _product(slug: str) -> shop.Product:
    try:
        return shop.PRODUCTS[slug]
    except KeyError:
        raise Http404("No such product.") from None


@require_POST
def cart_add(request: HttpRequest, slug: str) -> HttpResponse:
    product = _product(slug)
    shop.add(request.session, slug)
    messages.success(request, f"Added {product.name} to your cart.")
    return redirect("shop")


@require_POST
def cart_remove(request: HttpRequest, slug: str) -> HttpResponse:
    product = _product(slug)
    shop.remove(request.session, slug)
    messages.info(request, f"Removed one {product.name} from your cart.")
    return redirect("shop")


@require_POST
def cart_empty(request: HttpRequest) -> HttpResponse:
    shop.empty(request.session)
    messages.info(request, "Your cart is empty.")
    return redirect("shop")


class LoginView(auth_views.LoginView):
    """Django's login view, noting the token-hash prefix before and after."""

    extra_context = {"demo_users": DEMO_USERS}

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        session: Any = self.request.session
        session.ensure_loaded()
        before = _prefix(session.key_hash)
        response = super().form_valid(form)
        # login() renewed the token: same data (the cart), new token. A
        # session that did not exist yet gets its token when it is saved, at
        # the end of this request, so the pages show the new prefix.
        session[RENEWAL_KEY] = {"before": before}
        items = shop.item_count(session)
        kept = f" Your cart ({items} items) came along." if items else ""
        messages.success(
            self.request,
            f"Signed in as {form.get_user().get_username()} with a new token "
            f"(its hash began with {before or 'nothing: no session'} before).{kept}",
        )
        return response


class LogoutView(auth_views.LogoutView):
    """Django's logout view, saying what happened to the session."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        messages.info(
            request,
            "Signed out. The session was deleted from the store, so its token "
            "is worthless now, and its data (the cart) is gone with it.",
        )
        return response
