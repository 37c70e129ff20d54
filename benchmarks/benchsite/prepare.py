"""Create the tables and the bench user (run once per database by server.py)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402

from benchsite.urls import PASSWORD, USERNAME  # noqa: E402

call_command("migrate", verbosity=0)
get_user_model().objects.create_user(USERNAME, password=PASSWORD)
