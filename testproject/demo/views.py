"""Pages that show what scs_django keeps about the current session."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST


def home(request: HttpRequest) -> HttpResponse:
    session = request.session
    # Reading the properties never creates a session: a first visit stays
    # without a row and without a cookie.
    key_hash = session.key_hash
    return render(
        request,
        "demo/home.html",
        {
            "hash_prefix": key_hash[:8] if key_hash else None,
            "created_at": session.created_at,
            "idle_expiry": session.idle_expiry,
            "absolute_expiry": session.absolute_expiry,
            "counter": session.get("counter", 0),
        },
    )


@require_POST
def increment(request: HttpRequest) -> HttpResponse:
    request.session["counter"] = request.session.get("counter", 0) + 1
    return redirect("home")
