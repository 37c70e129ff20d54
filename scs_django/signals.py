"""Signals sent about sessions; their arguments are documented in docs/signals.rst.

``sender`` is always the engine's ``SessionStore`` class. Receivers get token
hashes, never tokens: log at most the first eight characters of one.
"""

from __future__ import annotations

from django.dispatch import Signal

# A new session was stored. Arguments: session, request.
session_created = Signal()

# A session got a new token (at login, or renew_token()/cycle_key()).
# Arguments: session, request, previous_key_hash.
session_renewed = Signal()

# A stored session was presented but its deadlines had passed.
# Arguments: key_hash, request.
session_expired = Signal()

# Sessions of one user were ended through scs_django.sessions, its receivers
# or the admin. Arguments: user, count, key_hashes.
session_revoked = Signal()
