"""One user's sessions in the admin: the page that lists and revokes them, and
the mixin that brings a link to it and a revoke action to a user admin."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from . import sessions
from .admin_base import (
    confirmation,
    confirmed,
    may_revoke,
    report_revoked,
    session_line,
    user_sessions_url,
)

ALL_OTHERS = "all-others"


class UserSessionsView:
    """A page listing one user's live sessions, with revoke buttons.

    It goes through :mod:`scs_django.sessions`, so it works on every engine,
    the cache engine on Redis included (through its per-user index), where the
    session changelist has no rows to show. A revoke button's POST shows a
    confirmation page; only the POST from that page ends sessions.
    """

    template_name = "admin/scs_django/user_sessions.html"

    def __init__(self, model_admin: Any) -> None:
        self.model_admin = model_admin

    def __call__(self, request: HttpRequest, user_id: str) -> HttpResponse:
        model_admin = self.model_admin
        if not model_admin.has_view_permission(request):
            raise PermissionDenied
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get(pk=unquote(user_id))
        except (user_model.DoesNotExist, ValueError, TypeError):
            raise Http404("No such user.") from None
        if request.method == "POST":
            if not may_revoke(request):
                raise PermissionDenied
            return self.revoke(request, user)
        context = {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.model._meta,
            "title": _("Sessions of %(user)s") % {"user": user},
            "subject": user,
            "is_self": user.pk == request.user.pk,
            "sessions": sessions.for_user(user, request),
            "can_revoke": may_revoke(request),
        }
        request.current_app = model_admin.admin_site.name
        return TemplateResponse(request, self.template_name, context)

    def revoke(self, request: HttpRequest, user: Any) -> HttpResponse:
        choice = request.POST.get("session", "")
        if not confirmed(request):
            return self.confirm(request, user, choice)
        if choice == ALL_OTHERS:
            count = sessions.revoke(user, keep=request.session)
        else:
            try:
                count = sessions.revoke_session(choice, user=user)
            except ValueError as exc:
                self.model_admin.message_user(request, str(exc), messages.ERROR)
                return redirect(request.path)
        report_revoked(self.model_admin, request, count)
        return redirect(request.path)

    def confirm(self, request: HttpRequest, user: Any, choice: str) -> HttpResponse:
        listed = sessions.for_user(user, request)
        if choice == ALL_OTHERS:
            ending = [s for s in listed if not s.is_current]
            question = _(
                "Revoke every session of %(user)s, except your own? These are "
                "live now; any that starts before you confirm ends too."
            )
        else:
            prefix = choice.strip().lower()
            ending = [
                s for s in listed if len(prefix) >= 8 and s.key_hash.startswith(prefix)
            ]
            question = _("Revoke this session of %(user)s?")
            if len(ending) != 1:
                message = _("No live session of %(user)s starts with %(prefix)r.")
                if ending:
                    message = _("More than one session starts with %(prefix)r.")
                self.model_admin.message_user(
                    request,
                    message % {"user": user, "prefix": choice[:70]},
                    messages.ERROR,
                )
                return redirect(request.path)
        now = timezone.now()
        opts = self.model_admin.model._meta
        return confirmation(
            request,
            self.model_admin.admin_site,
            opts=opts,
            question=question % {"user": user},
            items=[
                session_line(s, now) + (_(" (your session)") if s.is_current else "")
                for s in ending
            ],
            fields=[("session", choice)],
            cancel_url=request.path,
            crumb=(_("Sessions of %(user)s") % {"user": user}, request.path),
        )


class UserSessionsAdminMixin:
    """Add to your user admin: a link to each user's sessions and a "Revoke all
    sessions" action on users.

    ``class UserAdmin(UserSessionsAdminMixin, django.contrib.auth.admin.UserAdmin)``.
    Works on every engine; each user's sessions are listed at
    ``admin:scs_django_session_user``, linked from the user's change page (an
    item next to "History", from ``change_form_template``).
    """

    actions = ("revoke_all_sessions",)
    change_form_template = "admin/scs_django/user/change_form.html"

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        # Set even when empty: the user change page of django.contrib.auth's
        # own UserAdmin (admin/auth/user/change_form_object_tools.html) then
        # leaves the link to this one and does not show it twice.
        site_name = self.admin_site.name  # type: ignore[attr-defined]
        url = user_sessions_url(request, obj.pk, site_name) if obj else ""
        context["scs_sessions_url"] = url
        response: HttpResponse = super().render_change_form(  # type: ignore[misc]
            request, context, add, change, form_url, obj
        )
        return response

    def has_revoke_sessions_permission(self, request: HttpRequest) -> bool:
        # Seeing users is not enough: the action could log a superuser out.
        return may_revoke(request)

    @admin.action(
        description=gettext_lazy("Revoke all sessions of the selected users"),
        permissions=("revoke_sessions",),
    )
    def revoke_all_sessions(
        self, request: HttpRequest, queryset: QuerySet[Any]
    ) -> HttpResponse | None:
        # The admin offers the action only with the permission; a direct call
        # is checked too.
        if not may_revoke(request):
            raise PermissionDenied
        users = list(queryset)
        if not confirmed(request):
            return confirmation(
                request,
                self.admin_site,  # type: ignore[attr-defined]
                opts=queryset.model._meta,
                question=_(
                    "Revoke every session of these users? Your own session is kept."
                ),
                items=[user_line(user) for user in users],
                fields=[
                    ("action", "revoke_all_sessions"),
                    *((ACTION_CHECKBOX_NAME, user.pk) for user in users),
                ],
                cancel_url=request.get_full_path(),
            )
        count = sum(sessions.revoke(user, keep=request.session) for user in users)
        report_revoked(self, request, count)
        return None


def user_line(user: Any, live: int | None = None) -> str:
    """A user and how many live sessions they have, for a confirmation page."""
    if live is None:
        live = len(sessions.for_user(user))
    count = ngettext("%(count)d live session", "%(count)d live sessions", live)
    return f"{user}: {count % {'count': live}}"
