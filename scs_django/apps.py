from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ScsDjangoConfig(AppConfig):
    name = "scs_django"
    verbose_name = _("Sessions")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, crypto_checks, receivers  # noqa: F401 - registers them
