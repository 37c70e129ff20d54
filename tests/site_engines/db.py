"""A site's engine built on ``scs_django.backends.db``."""

from scs_django.backends.db import SessionStore as ScsStore


class SessionStore(ScsStore):
    """Adds nothing: scs_django must still know it for what it extends."""
