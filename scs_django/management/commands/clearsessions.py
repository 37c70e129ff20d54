"""``manage.py clearsessions``: Django's name for :mod:`.scs_cleanup`.

Django's own command goes away with ``django.contrib.sessions``; crontabs
that still call it keep working, with batched deletes.
"""

from __future__ import annotations

from .scs_cleanup import Command as CleanupCommand


class Command(CleanupCommand):
    help = "Same as scs_cleanup: delete expired sessions in small batches."
