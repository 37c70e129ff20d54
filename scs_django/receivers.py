"""Signal receivers connected in ``AppConfig.ready()``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from . import conf
from .backends.base import ScsSessionStore


@receiver(user_logged_in, dispatch_uid="scs_django.renew_on_login")
def renew_on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """Renew the token at every login and start a new absolute lifetime.

    ``login()`` already renews (``cycle_key()``) or flushes when the session held
    no user or another user; a same-user re-authentication gets its new token
    here. A session renewed or flushed earlier in the request is not renewed
    twice.
    """
    session = getattr(request, "session", None)
    if not isinstance(session, ScsSessionStore):
        return
    if (
        conf.get("RENEW_ON_LOGIN")
        and session.session_key is not None
        and not session.renewed
    ):
        session.renew_token()
    session.restart_lifetime()
