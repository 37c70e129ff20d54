from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = 'Create or reset the superuser "demo" with the password "demo".'

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(username="demo")
        user.is_staff = True
        user.is_superuser = True
        user.is_active = True
        user.set_password("demo")
        user.save()
        action = "Created" if created else "Reset"
        self.stdout.write(f'{action} superuser "demo" (password "demo").')
