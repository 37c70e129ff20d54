"""factory-boy factories whose rows go to the database the tests pinned."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from factory.django import DjangoModelFactory

from tests.routers import current_database

PASSWORD = "correct horse battery staple"


class PinnedModelFactory(DjangoModelFactory):
    """A DjangoModelFactory that writes to ``tests.routers.current_database()``.

    factory-boy picks its manager's database from ``Meta.database`` once; this
    asks the router's pinned alias on every build instead.
    """

    class Meta:
        abstract = True

    @classmethod
    def _get_manager(cls, model_class):
        return super()._get_manager(model_class).db_manager(current_database())


class UserFactory(PinnedModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password(PASSWORD)
