"""The live-session admin: read-only, with revoke actions.

It never shows a token (none is stored), shows only an 8-character prefix of
a token hash, and shows which keys a session holds, never their values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.db.models import Count, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from . import codec, sessions, tokens
from .admin_base import (
    ABSOLUTE_EXPIRED,
    ACTIVE,
    IDLE_EXPIRED,
    STATES,
    USER_SESSIONS_URL,
    client_cell,
    confirmation,
    confirmed,
    full_time,
    may_revoke,
    may_view,
    relative_time,
    report_revoked,
    session_line,
    state_of,
    table_in_use,
    user_sessions_url,
    users_together,
)
from .admin_users import UserSessionsAdminMixin, UserSessionsView, user_line
from .models import Session

__all__ = [
    "ABSOLUTE_EXPIRED",
    "ACTIVE",
    "IDLE_EXPIRED",
    "STATES",
    "SECRET_FIELDS",
    "SessionAdmin",
    "StateFilter",
    "UserSessionsAdminMixin",
    "UserSessionsView",
    "may_revoke",
    "may_view",
    "state_of",
    "table_in_use",
    "user_sessions_url",
    "users_together",
]

# Never filtered, searched or ordered on: with the rows or their count as the
# answer, any such query is a yes/no question about what the list hides (a
# viewer read a whole hash, 8 shown characters and then one at a time, with
# ?key_hash__startswith= in about 450 requests).
SECRET_FIELDS = frozenset({"key_hash", "data"})

# The most characters of a user's name the list shows; the rest is in a tooltip.
USER_LENGTH = 16


class StateFilter(admin.SimpleListFilter):
    title = gettext_lazy("state")
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
    # Six narrow columns, so that the list fits a 1280-pixel window beside
    # both of the admin's sidebars: times relative, the state beside an ended
    # session's expiry, the client as a browser name over its IP address, and
    # the full values in tooltips and on the session's page.
    list_display = ("hash_prefix", "user_link", "created", "seen", "expires", "client")
    list_filter = (StateFilter, ("user", admin.EmptyFieldListFilter))
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    ordering = ("-id",)
    # A filtered page would otherwise count the whole table a second time.
    show_full_result_count = False
    fields = (
        "user",
        "user_sessions",
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

    # -- cells: short, the full value in a tooltip -----------------------------------

    # Not sortable: the order of the full hashes says more than the prefix.
    @admin.display(description=gettext_lazy("token hash"))
    def hash_prefix(self, obj: Session) -> str:
        return tokens.hash_prefix(obj.key_hash)

    def sessions_url(self, user_pk: Any) -> str:
        """The page of the sessions of the user ``user_pk``, on this admin site."""
        site_name = self.admin_site.name
        return reverse(USER_SESSIONS_URL, args=[quote(user_pk)], current_app=site_name)

    @admin.display(description=gettext_lazy("user"), ordering="user")
    def user_link(self, obj: Session) -> str:
        if obj.user_id is None:
            return "-"
        name = str(obj.user) if obj.user is not None else str(obj.user_id)
        return format_html(
            '<a href="{}" title="{}">{}</a>',
            self.sessions_url(obj.user_id),
            _("All sessions of %(user)s") % {"user": name},
            Truncator(name).chars(USER_LENGTH),
        )

    @admin.display(description=gettext_lazy("sessions of this user"))
    def user_sessions(self, obj: Session) -> str:
        if obj.user_id is None:
            return "-"
        return format_html(
            '<a href="{}">{}</a>', self.sessions_url(obj.user_id), _("All sessions")
        )

    @admin.display(description=gettext_lazy("created"), ordering="created_at")
    def created(self, obj: Session) -> str:
        return relative_time(obj.created_at, timezone.now())

    @admin.display(description=gettext_lazy("last seen"), ordering="last_seen")
    def seen(self, obj: Session) -> str:
        return relative_time(obj.last_seen, timezone.now())

    @admin.display(description=gettext_lazy("expiry"), ordering="expiry")
    def expires(self, obj: Session) -> str:
        now = timezone.now()
        absolute = _("absolute expiry: %(when)s") % {
            "when": full_time(obj.absolute_expiry)
        }
        when = relative_time(obj.expiry, now, absolute)
        # Rows of an engine not in use get no state: they are not its sessions.
        if obj.expiry > now or not table_in_use():
            return when
        return format_html("{}, {}", STATES[state_of(obj, now)], when)

    @admin.display(description=gettext_lazy("state"))
    def state(self, obj: Session) -> Any:
        return STATES[state_of(obj, timezone.now())]

    @admin.display(description=gettext_lazy("client"), ordering="ip")
    def client(self, obj: Session) -> str:
        return client_cell(obj.user_agent, obj.ip)

    @admin.display(description=gettext_lazy("stored keys"))
    def stored_keys(self, obj: Session) -> str:
        envelope = codec.decode(obj.data, obj.key_hash)
        if envelope is None:
            return "-"
        return ", ".join(sorted(map(str, envelope.data))) or "-"

    # -- revoking: a confirmation page first, as delete_selected has ----------------

    def confirm(
        self,
        request: HttpRequest,
        action: str,
        question: str,
        items: list[str],
        rows: Any,
    ) -> HttpResponse:
        return confirmation(
            request,
            self.admin_site,
            opts=self.model._meta,
            question=question,
            items=items,
            fields=[("action", action), *((ACTION_CHECKBOX_NAME, r.pk) for r in rows)],
            cancel_url=request.get_full_path(),
        )

    @admin.action(
        description=gettext_lazy("Revoke selected sessions"), permissions=("revoke",)
    )
    def revoke_selected(
        self, request: HttpRequest, queryset: QuerySet[Session]
    ) -> HttpResponse | None:
        rows = list(queryset.select_related("user") if users_together() else queryset)
        if not confirmed(request):
            now = timezone.now()
            question = ngettext(
                "Revoke this session?", "Revoke these %(count)d sessions?", len(rows)
            )
            items = [session_line(row, now, row.user or "-") for row in rows]
            return self.confirm(
                request,
                "revoke_selected",
                question % {"count": len(rows)},
                items,
                rows,
            )
        by_user: dict[Any, list[str]] = {}
        for row in rows:
            by_user.setdefault(row.user, []).append(row.key_hash)
        ended = (
            sessions.revoke_hashes(user, hashes) for user, hashes in by_user.items()
        )
        report_revoked(self, request, sum(ended))
        return None

    @admin.action(
        description=gettext_lazy("Revoke all sessions of these users"),
        permissions=("revoke",),
    )
    def revoke_users(
        self, request: HttpRequest, queryset: QuerySet[Session]
    ) -> HttpResponse | None:
        ids = set(queryset.exclude(user=None).values_list("user_id", flat=True))
        users = get_user_model()._default_manager.filter(pk__in=ids)
        if not confirmed(request):
            live = dict(
                Session.objects.filter(user_id__in=ids, expiry__gt=timezone.now())
                .values_list("user_id")
                .annotate(count=Count("id"))
                .values_list("user_id", "count")
            )
            question = _(
                "Revoke every session of these users? Your own session is kept."
            )
            items = [user_line(user, live.get(user.pk, 0)) for user in users]
            return self.confirm(request, "revoke_users", question, items, queryset)
        # The admin's own session survives, even if it is among them.
        ended = (sessions.revoke(user, keep=request.session) for user in users)
        report_revoked(self, request, sum(ended))
        return None
