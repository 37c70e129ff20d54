import os
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.utils import autoreload


class Command(BaseCommand):
    help = (
        "Prepare the demo (migrate, seed its users) and run the development "
        "server, in one process: what scripts/demo runs."
    )
    # runserver checks before it serves (call_command skips them otherwise).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "addrport", nargs="?", default="127.0.0.1:8000", help="ADDRESS:PORT"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # The autoreloader runs this command again in a child process, which
        # serves: the parent has prepared everything already. One Django
        # start fewer than separate commands, a good part of a second.
        if os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) != "true":
            call_command("seed_demo", verbosity=options["verbosity"])
        call_command("runserver", options["addrport"], skip_checks=False)
