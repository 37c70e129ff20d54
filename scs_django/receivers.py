"""Signal receivers connected in ``AppConfig.ready()``."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from . import conf, context, sessions
from .backends.base import ScsSessionStore
from .backends.cookie import SessionStore as CookieStore
from .backends.db import SessionStore as DatabaseStore

logger = logging.getLogger("scs_django")

# The user fields whose change ends sessions, and where their stored values
# are kept on the instance between pre_save and post_save.
_WATCHED = ("password", "is_active")
_STORED = "_scs_django_stored"


@receiver(user_logged_in, dispatch_uid="scs_django.renew_on_login")
def renew_on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """Renew the token at every login and start a new absolute lifetime.

    ``login()`` already renews (``cycle_key()``) or flushes when the session held
    no user or another user; a same-user re-authentication gets its new token
    here. A session renewed or flushed earlier in the request is not renewed
    twice.
    """
    session = getattr(request, "session", None)
    # The cookie engine is no ScsSessionStore (it has no token and no store),
    # but renews the same way: a new sealed value and a new lifetime.
    if not isinstance(session, (ScsSessionStore, CookieStore)):
        return
    if (
        conf.get("RENEW_ON_LOGIN")
        and session.session_key is not None
        and not session.state.renewed
    ):
        session.renew_token()
    session.restart_lifetime()


def _end_sessions(user: Any, keep: Any = None) -> None:
    if not issubclass(conf.session_engine(), ScsSessionStore):
        return
    try:
        sessions.revoke(user, keep=keep)
    except NotImplementedError:
        # A cache engine without a per-user index: Django's session auth hash
        # still logs the other sessions out at their next request.
        logger.warning("The session engine cannot find a user's sessions to end them.")


@receiver(
    pre_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="scs_django.user_saving"
)
def read_stored_user_state(
    sender: Any,
    instance: Any,
    raw: bool = False,
    using: str | None = None,
    update_fields: Any = None,
    **kwargs: Any,
) -> None:
    """Before a stored user is saved: read the password hash and active flag
    it has in the database, to tell a change at ``post_save``.

    One query, and only for a save that writes one of them (not the
    ``last_login`` update of every login). Read here rather than kept from
    when the user was loaded: loading a user, which every signed-in request
    does, then costs nothing more than it costs without scs_django.
    """
    state = instance.__dict__
    state.pop(_STORED, None)
    if raw or instance._state.adding or instance.pk is None:
        return
    watched = [
        name
        for name in _WATCHED
        if name in state and (update_fields is None or name in update_fields)
    ]
    if watched:
        manager = sender._base_manager.db_manager(using)
        state[_STORED] = manager.filter(pk=instance.pk).values(*watched).first()


@receiver(
    post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="scs_django.user_saved"
)
def end_sessions_on_user_change(
    sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    """Deactivated: end all of the user's sessions. New password hash
    (``SCS["REVOKE_ON_PASSWORD_CHANGE"]``): end all but the current request's.

    Django has no password-changed signal, so the saved hash is compared with
    the one stored before the save. The session making the change is kept: it
    is the one ``update_session_auth_hash()`` renews right after, and a model
    signal has no request, so the middleware's record of it
    (``scs_django.context``) says which one it is.
    """
    stored = instance.__dict__.pop(_STORED, None)
    if created or raw or not stored:
        return
    changed = {
        name for name, value in stored.items() if getattr(instance, name) != value
    }
    if "is_active" in changed and not instance.is_active:
        _end_sessions(instance)
    elif "password" in changed and conf.get("REVOKE_ON_PASSWORD_CHANGE"):
        _end_sessions(instance, keep=context.current_session())


@receiver(
    post_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="scs_django.user_deleted"
)
def end_sessions_on_user_delete(sender: Any, instance: Any, **kwargs: Any) -> None:
    """End a deleted user's sessions, and remove their expired rows.

    The session table has no cascade (its link to the user has no database
    constraint, so a router may keep it apart from the users), so this is
    what removes them, on every engine, with ``session_revoked`` sent. It runs
    once per user, also for a queryset's ``delete()``, and after the user's
    row is deleted, which leaves a login racing with the deletion the
    smallest window to start a session that outlives it.
    """
    _end_sessions(instance)
    store = conf.session_engine()
    if issubclass(store, DatabaseStore):
        # Expired rows still hold the user's IP address and user agent.
        store.get_model_class()._default_manager.filter(user_id=instance.pk).delete()
