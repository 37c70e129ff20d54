"""System checks for the session cookie and serializer: the exact messages.

Django's own security.W010-W015 only look for django.contrib.sessions, so
with scs_django in its place these take over (W020, W021 under
``check --deploy``), and go further on cookie prefixes, SameSite and pickle.
W023, also under ``check --deploy``, asks for an idle timeout.
"""

import io
import pickle

import pytest
from django.core import checks
from django.core.management import call_command

from scs_django.checks import (
    check_cookie,
    check_cookie_deploy,
    check_idle_timeout_deploy,
    check_serializer,
)
from tests.utils import ids_and_messages


class PickleSerializer:
    """A serializer some sites copied from Django < 5.0."""

    def dumps(self, obj):
        return pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)

    def loads(self, data):
        return pickle.loads(data)  # noqa: S301 - what W022 warns about


class SneakySerializer(PickleSerializer):
    """Pickle under a name that does not say so."""


@pytest.fixture(autouse=True)
def secure_defaults(settings):
    settings.SESSION_COOKIE_NAME = "sessionid"
    settings.SESSION_COOKIE_SECURE = True
    settings.SESSION_COOKIE_HTTPONLY = True
    settings.SESSION_COOKIE_SAMESITE = "Lax"
    settings.SESSION_COOKIE_DOMAIN = None
    settings.SESSION_COOKIE_PATH = "/"
    settings.SESSION_SERIALIZER = "django.contrib.sessions.serializers.JSONSerializer"
    settings.SCS = {"IDLE_TIMEOUT": 1800}


def scs_security_ids(include_deployment_checks):
    """The ids of scs_django's messages among the security checks."""
    found = checks.run_checks(
        tags=[checks.Tags.security],
        include_deployment_checks=include_deployment_checks,
    )
    return sorted(m.id for m in found if m.id.startswith("scs_django."))


def test_secure_configuration_is_clean():
    assert check_cookie_deploy() == []
    assert check_idle_timeout_deploy() == []
    assert check_cookie() == []
    assert check_serializer() == []


def test_cookie_without_secure_or_httponly_under_check_deploy(settings):
    settings.SESSION_COOKIE_SECURE = False
    settings.SESSION_COOKIE_HTTPONLY = False
    assert check_cookie_deploy() == [
        checks.Warning(
            "SESSION_COOKIE_SECURE is not True, so browsers also send the session "
            "cookie over plain HTTP, where anyone on the network can read it.",
            hint="Set SESSION_COOKIE_SECURE = True once the site is served over HTTPS.",
            id="scs_django.W020",
        ),
        checks.Warning(
            "SESSION_COOKIE_HTTPONLY is not True, so scripts on your pages can read "
            "the session cookie: a single XSS flaw then gives sessions away.",
            hint="Set SESSION_COOKIE_HTTPONLY = True (Django's default).",
            id="scs_django.W021",
        ),
    ]


def test_cookie_warnings_run_only_with_deploy(settings):
    settings.SESSION_COOKIE_SECURE = False
    settings.SESSION_COOKIE_HTTPONLY = False
    assert scs_security_ids(False) == []
    assert scs_security_ids(True) == ["scs_django.W020", "scs_django.W021"]


def test_check_deploy_command_reports_them(settings):
    settings.SESSION_COOKIE_SECURE = False
    err = io.StringIO()
    call_command(
        "check", "--deploy", "--tag", "security", stdout=io.StringIO(), stderr=err
    )
    assert "(scs_django.W020) SESSION_COOKIE_SECURE is not True" in err.getvalue()
    assert "scs_django.W021" not in err.getvalue()


@pytest.mark.parametrize(
    "scs, absolute",
    [({}, 1209600), ({"ABSOLUTE_TIMEOUT": 8 * 3600}, 28800)],
    ids=["cookie-age", "absolute-timeout"],
)
def test_no_idle_timeout_under_check_deploy(settings, scs, absolute):
    settings.SCS = scs
    assert check_idle_timeout_deploy() == [
        checks.Warning(
            'SCS["IDLE_TIMEOUT"] is not set, so a session left unused does not end: '
            f"it lives until its absolute deadline, {absolute} seconds after it "
            "began, even on a computer its user walked away from.",
            hint='Set SCS["IDLE_TIMEOUT"] to the seconds of inactivity after which a '
            "session ends, such as 1800 (30 minutes).",
            id="scs_django.W023",
        )
    ]


def test_no_idle_timeout_is_reported_only_with_deploy(settings):
    settings.SCS = {}
    assert scs_security_ids(False) == []
    assert scs_security_ids(True) == ["scs_django.W023"]
    err = io.StringIO()
    call_command(
        "check", "--deploy", "--tag", "security", stdout=io.StringIO(), stderr=err
    )
    assert '(scs_django.W023) SCS["IDLE_TIMEOUT"] is not set' in err.getvalue()


def test_no_idle_timeout_warning_for_an_scs_that_is_not_a_dict(settings):
    settings.SCS = "IDLE_TIMEOUT=1800"  # scs_django.E002 reports it
    assert check_idle_timeout_deploy() == []


@pytest.mark.parametrize(
    "domain, path, wrong",
    [
        ("example.com", "/", "SESSION_COOKIE_DOMAIN is 'example.com'"),
        (None, "/app/", "SESSION_COOKIE_PATH is '/app/'"),
        (
            ".example.com",
            "/app/",
            "SESSION_COOKIE_DOMAIN is '.example.com' and SESSION_COOKIE_PATH is '/app/'",
        ),
    ],
)
def test_host_prefix_with_a_domain_or_a_path(settings, domain, path, wrong):
    settings.SESSION_COOKIE_NAME = "__Host-session"
    settings.SESSION_COOKIE_DOMAIN = domain
    settings.SESSION_COOKIE_PATH = path
    assert check_cookie() == [
        checks.Error(
            f"SESSION_COOKIE_NAME '__Host-session' has the __Host- prefix, but {wrong}: "
            "browsers refuse such a cookie, so no session would ever be kept.",
            hint='Set SESSION_COOKIE_DOMAIN = None and SESSION_COOKIE_PATH = "/", '
            "or drop the prefix.",
            id="scs_django.E020",
        )
    ]


@pytest.mark.parametrize("name", ["__Host-session", "__Secure-session", "__host-id"])
def test_cookie_prefix_without_secure(settings, name):
    settings.SESSION_COOKIE_NAME = name
    settings.SESSION_COOKIE_SECURE = False
    prefix = name[: name.index("-") + 1]
    assert ids_and_messages(check_cookie()) == [
        (
            "scs_django.E021",
            f"SESSION_COOKIE_NAME {name!r} has the {prefix} prefix, but "
            "SESSION_COOKIE_SECURE is not True: browsers refuse such a cookie "
            "without Secure, so no session would be kept over plain HTTP.",
        )
    ]


def test_host_prefix_with_everything_wrong_reports_both_errors(settings):
    settings.SESSION_COOKIE_NAME = "__Host-s"
    settings.SESSION_COOKIE_SECURE = False
    settings.SESSION_COOKIE_PATH = "/app/"
    assert [m.id for m in check_cookie()] == ["scs_django.E020", "scs_django.E021"]


def test_secure_prefix_allows_a_domain_and_a_path(settings):
    settings.SESSION_COOKIE_NAME = "__Secure-session"
    settings.SESSION_COOKIE_DOMAIN = "example.com"
    settings.SESSION_COOKIE_PATH = "/app/"
    assert check_cookie() == []


@pytest.mark.parametrize("samesite", ["None", "none"])
def test_samesite_none_without_secure(settings, samesite):
    settings.SESSION_COOKIE_SAMESITE = samesite
    settings.SESSION_COOKIE_SECURE = False
    assert check_cookie() == [
        checks.Error(
            'SESSION_COOKIE_SAMESITE is "None" but SESSION_COOKIE_SECURE is not True: '
            "browsers refuse a SameSite=None cookie without Secure.",
            hint='Set SESSION_COOKIE_SECURE = True, or use SameSite "Lax" (the default).',
            id="scs_django.E022",
        )
    ]


def test_samesite_none_with_secure_and_no_samesite_at_all_are_fine(settings):
    settings.SESSION_COOKIE_SAMESITE = "None"
    assert check_cookie() == []
    settings.SESSION_COOKIE_SAMESITE = None  # no attribute: not SameSite=None
    settings.SESSION_COOKIE_SECURE = False
    assert check_cookie() == []


@pytest.mark.parametrize(
    "path",
    [
        "tests.security.test_security_checks.PickleSerializer",
        "tests.security.test_security_checks.SneakySerializer",
        "django.contrib.sessions.serializers.PickleSerializer",  # gone in Django 5.0
    ],
)
def test_pickle_serializer(settings, path):
    settings.SESSION_SERIALIZER = path
    assert check_serializer() == [
        checks.Warning(
            f"SESSION_SERIALIZER {path!r} uses pickle: whoever can write to the session "
            "store (a leaked database or Redis password is enough) can run code in "
            "your application when the session is loaded.",
            hint='Use "django.contrib.sessions.serializers.JSONSerializer" (the default).',
            id="scs_django.W022",
        )
    ]


def test_checks_are_registered():
    registered = checks.registry.registry.get_checks(include_deployment_checks=True)
    for check in (
        check_cookie_deploy,
        check_idle_timeout_deploy,
        check_cookie,
        check_serializer,
    ):
        assert check in registered
    assert check_cookie_deploy not in checks.registry.registry.get_checks()
    assert check_idle_timeout_deploy not in checks.registry.registry.get_checks()
