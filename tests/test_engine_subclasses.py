"""A site's subclass of an scs_django engine is that engine to the checks and
the cleanup command, which ask the engine class what it is rather than
compare ``SESSION_ENGINE`` with the names of scs_django's modules."""

import io
import re
from datetime import timedelta
from importlib import import_module

import pytest
from django.core import checks
from django.core.management import CommandError, call_command
from django.db import connections
from django.test.utils import CaptureQueriesContext

from scs_django.checks import check_cache, check_engine
from tests.engines import ENGINES

SUBCLASS = {
    "scs_django.backends.db": "tests.site_engines.db",
    "scs_django.backends.cache": "tests.site_engines.cache",
    "scs_django.backends.cached_db": "tests.site_engines.cached_db",
}
LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
SUMMARY = re.compile(r"deleted (\d+) expired sessions in \d+\.\d\ds; (\d+) left")


TABLE_ENGINES = [
    name for name, spec in ENGINES.items() if not spec.module.endswith(".cache")
]


@pytest.mark.parametrize("module", SUBCLASS.values())
def test_a_subclass_is_an_scs_django_engine(settings, module):
    settings.SESSION_ENGINE = module
    assert check_engine() == []


@pytest.mark.parametrize(
    "module, expected",
    [
        ("tests.site_engines.db", []),
        ("tests.site_engines.cache", ["scs_django.W010", "scs_django.W011"]),
        ("tests.site_engines.cached_db", ["scs_django.W011"]),
    ],
)
def test_a_subclass_gets_the_cache_checks_of_its_engine(settings, module, expected):
    settings.SESSION_ENGINE = module
    settings.DEBUG = False
    settings.CACHES = {"default": LOCMEM}
    settings.SCS = {"CACHE_ALIAS": "default"}
    assert [m.id for m in check_cache()] == expected

    settings.SCS = {"CACHE_ALIAS": "nowhere"}
    unknown = [] if module.endswith(".db") else ["scs_django.E010"]
    assert [m.id for m in check_cache()] == unknown


def test_an_engine_that_cannot_be_imported_is_an_error(settings):
    settings.SESSION_ENGINE = "tests.site_engines.nothing"
    assert check_engine() == [
        checks.Error(
            "SESSION_ENGINE 'tests.site_engines.nothing' cannot be imported: "
            "No module named 'tests.site_engines.nothing'",
            hint='Name a module with a SessionStore class, such as "scs_django.backends.db".',
            id="scs_django.E004",
        )
    ]
    assert check_cache() == []
    with pytest.raises(CommandError, match="cannot be imported"):
        call_command("scs_cleanup", stdout=io.StringIO())


@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize("engine", TABLE_ENGINES, indirect=True)
def test_a_subclass_of_a_table_engine_gets_batched_cleanup(engine, settings, clock):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 3600}
    settings.SESSION_ENGINE = SUBCLASS[engine.spec.module]
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    for _ in range(5):
        expired = store_class()
        expired["value"] = "old"
        expired.save()
    clock.shift(timedelta(hours=2))
    live = store_class()
    live["value"] = "new"
    live.save()

    out = io.StringIO()
    with CaptureQueriesContext(connections[engine.alias]) as queries:
        call_command("scs_cleanup", "--batch-size", "2", verbosity=2, stdout=out)

    summary, detail = out.getvalue().splitlines()
    assert SUMMARY.fullmatch(summary).groups() == ("5", "0")
    assert detail.startswith("3 batches of at most 2 rows; ")
    deletes = [q for q in queries if q["sql"].lstrip().upper().startswith("DELETE")]
    assert len(deletes) == 3
    assert engine.stored.hashes() == {live.key_hash}


@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize("engine", ["cache-redis"], indirect=True)
def test_a_subclass_of_the_cache_engine_leaves_expiry_to_the_cache(engine, settings):
    settings.SESSION_ENGINE = SUBCLASS[engine.spec.module]
    out = io.StringIO()
    call_command("scs_cleanup", stdout=out)
    assert re.fullmatch(
        r"the cache expires sessions itself; clear_expired\(\) prunes the per-user "
        r"indexes; SessionStore\.clear_expired\(\) done in \d+\.\d\ds\n",
        out.getvalue(),
    )
