from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from demo.views import DEMO_USERS


class Command(BaseCommand):
    help = (
        "Migrate the demo's database and create its users (demo/demo, a "
        "superuser, and alice/alice). Quick when there is nothing to do."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Set the demo users' passwords and rights back even if they exist.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # One process for both: each manage.py start costs about a second.
        call_command("migrate", interactive=False, verbosity=0)
        user_model = get_user_model()
        existing = set(
            user_model.objects.filter(
                username__in=[username for username, _, _ in DEMO_USERS]
            ).values_list("username", flat=True)
        )
        for username, password, _ in DEMO_USERS:
            # Hashing a password takes a good part of a second: only when needed.
            if username in existing and not options["reset"]:
                continue
            user, _ = user_model.objects.get_or_create(username=username)
            user.is_staff = user.is_superuser = username == "demo"
            user.is_active = True
            user.set_password(password)
            user.save()
            self.stdout.write(
                f'Demo user "{username}" (password "{password}") is ready.'
            )
