"""The live-session admin: read-only, with revoke actions.

It never shows a token (none is stored), shows only an 8-character prefix of
a token hash, and shows which keys a session holds, never their values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename, get_user_model
from django.db import router
from django.db.models import QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest
from django.utils import timezone
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import codec, conf, sessions, tokens
from .models import Session

# Never filtered, searched or ordered on: with the rows or their count as the
# answer, any such query is a yes/no question about what the list hides (a
# viewer read a whole hash, 8 shown characters and then one at a time, with
# ?key_hash__startswith= in about 450 requests).
SECRET_FIELDS = frozenset({"key_hash", "data"})

ACTIVE, IDLE_EXPIRED, ABSOLUTE_EXPIRED = "active", "idle-expired", "absolute-expired"
STATES = {
    ACTIVE: _("Active"),
    IDLE_EXPIRED: _("Idle-expired"),
    ABSOLUTE_EXPIRED: _("Absolute-expired"),
}


def may_revoke(request: HttpRequest) -> bool:
    """Whether ``request.user`` may end sessions: ``scs_django.delete_session``.

    Every revoke in the admin asks this, from the session list or the user list.
    """
    opts = Session._meta
    codename = get_permission_codename("delete", opts)
    return request.user.has_perm(f"{opts.app_label}.{codename}")


def state_of(session: Session, now: Any) -> str:
    """``active``, ``idle-expired`` (idle or fixed deadline passed) or ``absolute-expired``."""
    if session.absolute_expiry <= now:
        return ABSOLUTE_EXPIRED
    if session.expiry <= now:
        return IDLE_EXPIRED
    return ACTIVE


def users_together() -> bool:
    """True when the router reads sessions and users from the same database,
    so a query can join them."""
    return router.db_for_read(Session) == router.db_for_read(get_user_model())


def table_in_use() -> bool:
    """Whether ``SESSION_ENGINE`` keeps its sessions in the Session table.

    True for the db and cached_db engines. With any other engine (the cache
    engine, or Django's own) the table holds at most rows left from before.
    """
    store = conf.session_engine()
    get_model_class = getattr(store, "get_model_class", None)
    return get_model_class is not None and issubclass(get_model_class(), Session)


class StateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return list(STATES.items())

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[Session]
    ) -> QuerySet[Session]:
        now = timezone.now()
        rows: QuerySet[Session] = queryset
        if self.value() == ACTIVE:
            rows = queryset.filter(expiry__gt=now)
        elif self.value() == IDLE_EXPIRED:
            rows = queryset.filter(expiry__lte=now, absolute_expiry__gt=now)
        elif self.value() == ABSOLUTE_EXPIRED:
            rows = queryset.filter(absolute_expiry__lte=now)
        return rows


if TYPE_CHECKING:
    # ModelAdmin is generic only in django-stubs, not at run time.
    _ModelAdmin = admin.ModelAdmin[Session]
else:
    _ModelAdmin = admin.ModelAdmin


@admin.register(Session)
class SessionAdmin(_ModelAdmin):
    list_display = (
        "hash_prefix",
        "user",
        "created_at",
        "last_seen",
        "expiry",
        "absolute_expiry",
        "state",
        "ip",
        "short_user_agent",
    )
    list_filter = (StateFilter, ("user", admin.EmptyFieldListFilter))
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    ordering = ("-id",)
    # A filtered page would otherwise count the whole table a second time.
    show_full_result_count = False
    fields = (
        "user",
        "hash_prefix",
        "created_at",
        "last_seen",
        "expiry",
        "absolute_expiry",
        "state",
        "ip",
        "user_agent",
        "stored_keys",
    )
    readonly_fields = fields
    actions = ("revoke_selected", "revoke_users")

    def get_urls(self) -> list[Any]:
        from django.urls import path

        opts = self.model._meta
        own = path(
            "user/<str:user_id>/",
            self.admin_site.admin_view(UserSessionsView(self)),
            name=f"{opts.app_label}_{opts.model_name}_user",
        )
        return [own, *super().get_urls()]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Session]:
        # The list never needs the (up to MAX_BYTES) data; the detail page
        # loads it for the keys.
        rows: QuerySet[Session] = super().get_queryset(request).defer("data")
        return rows if users_together() else rows.prefetch_related("user")

    def get_list_select_related(self, request: HttpRequest) -> Any:
        return self.list_select_related if users_together() else ()

    def lookup_allowed(
        self, lookup: str, value: str, request: HttpRequest | None = None
    ) -> bool:
        # Also refuses paths that come back to a session through the user
        # (user__scs_sessions__key_hash), whatever Django would allow there.
        if SECRET_FIELDS.intersection(lookup.split(LOOKUP_SEP)):
            return False
        # Django passes the request; the default None (for older callers) is
        # forwarded as is, which the stubs do not allow.
        return super().lookup_allowed(lookup, value, request)  # type: ignore[arg-type]

    def get_search_fields(self, request: HttpRequest) -> tuple[str, ...]:
        if not users_together():
            return ()  # no JOIN reaches the users in their own database
        user_model = get_user_model()
        names = {user_model.USERNAME_FIELD, user_model.get_email_field_name()}
        concrete = {f.name for f in user_model._meta.concrete_fields}
        return tuple(f"user__{name}" for name in sorted(names & concrete))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Sessions end through the revoke actions, which go through the engine.
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return may_revoke(request)

    # When the engine in use keeps no sessions in the table (the cache engine),
    # the rows there are leftovers: they get no state, as if they could be
    # live, and no revoke actions, which would end nothing. The note on top of
    # the list (change_list.html) says so and points to the per-user page.

    def get_list_display(self, request: HttpRequest) -> Any:
        shown = super().get_list_display(request)
        return shown if table_in_use() else tuple(n for n in shown if n != "state")

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = super().get_list_filter(request)
        if table_in_use():
            return filters
        return tuple(f for f in filters if f is not StateFilter)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = super().get_fields(request, obj)
        return fields if table_in_use() else tuple(n for n in fields if n != "state")

    # Django 6.1 passes action_location (the change list or the change form)
    # and deprecates overrides without it; Django 5.2 has no such argument.
    def get_actions(
        self, request: HttpRequest, action_location: Any = None
    ) -> dict[str, Any]:
        if not table_in_use():
            return {}
        if action_location is None:
            return super().get_actions(request)
        # The stubs give Django 5.2's signature for python_version 3.10.
        return super().get_actions(request, action_location=action_location)  # type: ignore[call-arg]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> Any:
        context = {
            "session_engine": settings.SESSION_ENGINE,
            "table_in_use": table_in_use(),
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    # Not sortable: the order of the full hashes says more than the prefix.
    @admin.display(description=_("token hash"))
    def hash_prefix(self, obj: Session) -> str:
        return tokens.hash_prefix(obj.key_hash)

    @admin.display(description=_("state"))
    def state(self, obj: Session) -> Any:
        return STATES[state_of(obj, timezone.now())]

    @admin.display(description=_("user agent"), ordering="user_agent")
    def short_user_agent(self, obj: Session) -> str:
        return Truncator(obj.user_agent).chars(60)

    @admin.display(description=_("stored keys"))
    def stored_keys(self, obj: Session) -> str:
        envelope = codec.decode(obj.data, obj.key_hash)
        if envelope is None:
            return "-"
        return ", ".join(sorted(map(str, envelope.data))) or "-"

    def _revoked(self, request: HttpRequest, count: int) -> None:
        message = ngettext(
            "%(count)d session revoked.", "%(count)d sessions revoked.", count
        )
        self.message_user(request, message % {"count": count}, messages.SUCCESS)

    @admin.action(description=_("Revoke selected sessions"), permissions=("revoke",))
    def revoke_selected(
        self, request: HttpRequest, queryset: QuerySet[Session]
    ) -> None:
        by_user: dict[Any, list[str]] = {}
        rows = queryset.select_related("user") if users_together() else queryset
        for row in rows:
            by_user.setdefault(row.user, []).append(row.key_hash)
        self._revoked(
            request,
            sum(
                sessions.revoke_hashes(user, hashes) for user, hashes in by_user.items()
            ),
        )

    @admin.action(
        description=_("Revoke all sessions of these users"), permissions=("revoke",)
    )
    def revoke_users(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        ids = set(queryset.exclude(user=None).values_list("user_id", flat=True))
        users = get_user_model()._default_manager.filter(pk__in=ids)
        # The admin's own session survives, even if it is among them.
        self._revoked(
            request, sum(sessions.revoke(user, keep=request.session) for user in users)
        )


class UserSessionsView:
    """A page listing one user's live sessions, with revoke buttons.

    It goes through :mod:`scs_django.sessions`, so it works on every engine,
    the cache engine on Redis included (through its per-user index), where the
    session changelist has no rows to show.
    """

    template_name = "admin/scs_django/user_sessions.html"

    def __init__(self, model_admin: SessionAdmin) -> None:
        self.model_admin = model_admin

    def __call__(self, request: HttpRequest, user_id: str) -> Any:
        from django.core.exceptions import PermissionDenied
        from django.http import Http404
        from django.shortcuts import redirect
        from django.template.response import TemplateResponse

        model_admin = self.model_admin
        if not model_admin.has_view_permission(request):
            raise PermissionDenied
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get(pk=user_id)
        except (user_model.DoesNotExist, ValueError, TypeError):
            raise Http404("No such user.") from None
        if request.method == "POST":
            if not model_admin.has_revoke_permission(request):
                raise PermissionDenied
            if request.POST.get("session") == "all-others":
                count = sessions.revoke(user, keep=request.session)
            else:
                try:
                    count = sessions.revoke_session(
                        request.POST.get("session", ""), user=user
                    )
                except ValueError as exc:
                    model_admin.message_user(request, str(exc), messages.ERROR)
                    return redirect(request.path)
            model_admin._revoked(request, count)
            return redirect(request.path)
        context = {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.model._meta,
            "title": _("Sessions of %(user)s") % {"user": user},
            "subject": user,
            "sessions": sessions.for_user(user, request),
            "can_revoke": model_admin.has_revoke_permission(request),
        }
        return TemplateResponse(request, self.template_name, context)


class UserSessionsAdminMixin:
    """Add to your user admin: a "Revoke all sessions" action on users.

    ``class UserAdmin(UserSessionsAdminMixin, django.contrib.auth.admin.UserAdmin)``.
    Works on every engine; each user's sessions are listed at
    ``admin:scs_django_session_user``.
    """

    actions = ("revoke_all_sessions",)

    def has_revoke_sessions_permission(self, request: HttpRequest) -> bool:
        # Seeing users is not enough: the action could log a superuser out.
        return may_revoke(request)

    @admin.action(
        description=_("Revoke all sessions of the selected users"),
        permissions=("revoke_sessions",),
    )
    def revoke_all_sessions(
        self, request: HttpRequest, queryset: QuerySet[Any]
    ) -> None:
        from django.core.exceptions import PermissionDenied

        # The admin offers the action only with the permission; a direct call
        # is checked too.
        if not may_revoke(request):
            raise PermissionDenied
        count = sum(sessions.revoke(user, keep=request.session) for user in queryset)
        message = ngettext(
            "%(count)d session revoked.", "%(count)d sessions revoked.", count
        )
        self.message_user(  # type: ignore[attr-defined]
            request, message % {"count": count}, messages.SUCCESS
        )
