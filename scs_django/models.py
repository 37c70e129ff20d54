"""The stored session: a token hash, an envelope and the deadlines."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .metadata import USER_AGENT_LENGTH


class Session(models.Model):
    """A session, found by the SHA-256 of its token; the token itself is never stored."""

    id = models.BigAutoField(primary_key=True)
    key_hash = models.CharField(_("token hash"), max_length=64, editable=False)
    data = models.BinaryField(_("data"), editable=False)
    created_at = models.DateTimeField(_("created"))
    absolute_expiry = models.DateTimeField(_("absolute expiry"))
    # min(idle deadline, fixed deadline, absolute expiry): when the session ends.
    expiry = models.DateTimeField(_("expiry"), db_index=True)
    last_seen = models.DateTimeField(_("last seen"))
    # Bumped by every write of data, so two requests that both change the
    # session can tell and merge instead of one overwriting the other.
    version = models.PositiveBigIntegerField(_("version"), default=1, editable=False)
    # No constraint and no cascade, as Django's own session table has no link
    # at all: a router may keep the sessions in another database than the
    # users. Deleting a user ends their sessions through a receiver
    # (receivers.end_sessions_on_user_delete), on every engine.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="scs_sessions",
    )
    # Recorded only with SCS["RECORD_IP"] / ["RECORD_USER_AGENT"] (off by
    # default), at creation and at each renewal.
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(
        _("user agent"), max_length=USER_AGENT_LENGTH, blank=True, default=""
    )

    class Meta:
        db_table = "scs_django_session"
        verbose_name = _("session")
        verbose_name_plural = _("sessions")
        # A constraint rather than unique=True: on PostgreSQL the latter adds a
        # second (LIKE) index that every insert would pay for.
        constraints = [
            models.UniqueConstraint(
                fields=["key_hash"], name="scs_django_session_key_hash"
            )
        ]

    def __str__(self) -> str:
        return f"session {self.key_hash[:8]}"
