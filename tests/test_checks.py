"""System checks: exact messages for each misconfiguration."""

import pytest
from django.core import checks

from scs_django.checks import check_engine, check_settings
from tests.utils import ids_and_messages


def test_default_configuration_is_clean(settings):
    settings.SCS = {}
    assert check_settings() == []
    assert check_engine() == []


def test_unknown_key_names_the_closest_setting(settings):
    settings.SCS = {"IDLE_TIMOUT": 600}
    assert check_settings() == [
        checks.Error(
            'SCS["IDLE_TIMOUT"] is not a scs_django setting.',
            hint='Did you mean SCS["IDLE_TIMEOUT"]?',
            id="scs_django.E001",
        )
    ]


def test_unknown_key_without_a_close_match(settings):
    settings.SCS = {"COLOUR": "blue"}
    [message] = check_settings()
    assert message.id == "scs_django.E001"
    assert message.hint == "See the configuration page of the scs_django docs."


def test_values_of_the_wrong_type(settings):
    settings.SCS = {
        "ABSOLUTE_TIMEOUT": "3600",
        "IDLE_TIMEOUT": -5,
        "TOUCH_INTERVAL": 0,
        "MAX_BYTES": 1.5,
        "RENEW_ON_LOGIN": "yes",
        "FAIL_OPEN": None,
    }
    assert ids_and_messages(check_settings()) == [
        (
            "scs_django.E002",
            "SCS[\"ABSOLUTE_TIMEOUT\"] is '3600'; it must be a positive number of seconds.",
        ),
        (
            "scs_django.E002",
            'SCS["TOUCH_INTERVAL"] is 0; it must be a positive number of seconds.',
        ),
        (
            "scs_django.E002",
            'SCS["MAX_BYTES"] is 1.5; it must be a positive number of bytes.',
        ),
        (
            "scs_django.E002",
            'SCS["IDLE_TIMEOUT"] is -5; it must be None or a positive number of seconds.',
        ),
        (
            "scs_django.E002",
            "SCS[\"RENEW_ON_LOGIN\"] is 'yes'; it must be True or False.",
        ),
        ("scs_django.E002", 'SCS["FAIL_OPEN"] is None; it must be True or False.'),
    ]


def test_scs_must_be_a_dict(settings):
    settings.SCS = [("IDLE_TIMEOUT", 60)]
    assert ids_and_messages(check_settings()) == [
        ("scs_django.E002", "The SCS setting must be a dict.")
    ]


def test_timeouts_that_make_no_sense(settings):
    settings.SCS = {
        "IDLE_TIMEOUT": 7200,
        "ABSOLUTE_TIMEOUT": 3600,
        "TOUCH_INTERVAL": 7200,
    }
    assert ids_and_messages(check_settings()) == [
        (
            "scs_django.E003",
            'SCS["IDLE_TIMEOUT"] (7200) is not smaller than SCS["ABSOLUTE_TIMEOUT"] (3600), '
            "so it never takes effect.",
        ),
        (
            "scs_django.E003",
            'SCS["TOUCH_INTERVAL"] (7200) is not smaller than SCS["IDLE_TIMEOUT"] (7200): '
            "active sessions would expire.",
        ),
    ]


def test_absolute_timeout_defaults_to_the_cookie_age(settings):
    settings.SESSION_COOKIE_AGE = 600
    settings.SCS = {"IDLE_TIMEOUT": 900}
    [message] = check_settings()
    assert message.id == "scs_django.E003"
    assert "(600)" in message.msg


def test_foreign_engine_and_django_middleware_are_reported(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    settings.MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware"]
    assert check_engine() == [
        checks.Warning(
            "SESSION_ENGINE is 'django.contrib.sessions.backends.db', not an scs_django "
            "engine, so scs_django's protections are not in use.",
            hint='Set SESSION_ENGINE = "scs_django.backends.db".',
            id="scs_django.W001",
        ),
        checks.Warning(
            "Django's SessionMiddleware is in MIDDLEWARE; scs_django's cookie and write "
            "rules need its own.",
            hint='Replace "django.contrib.sessions.middleware.SessionMiddleware" with '
            '"scs_django.middleware.SessionMiddleware".',
            id="scs_django.W002",
        ),
    ]


def test_a_proxy_count_without_a_proxy_header_is_reported(settings):
    settings.SCS = {"RECORD_IP": True, "TRUSTED_PROXY_COUNT": 2}
    assert check_settings() == [
        checks.Warning(
            'SCS["TRUSTED_PROXY_COUNT"] is set but SCS["TRUSTED_PROXY_HEADER"] is None, '
            "so it has no effect: RECORD_IP records REMOTE_ADDR, which behind a proxy "
            "is the proxy's address.",
            hint='Name the header your proxies set, such as SCS["TRUSTED_PROXY_HEADER"] '
            '= "HTTP_X_FORWARDED_FOR", or remove TRUSTED_PROXY_COUNT.',
            id="scs_django.W030",
        )
    ]
    settings.SCS = {
        "RECORD_IP": True,
        "TRUSTED_PROXY_HEADER": "HTTP_X_FORWARDED_FOR",
        "TRUSTED_PROXY_COUNT": 2,
    }
    assert check_settings() == []


@pytest.mark.parametrize("count", [0, -1, "2", 1.0, True, None])
def test_a_proxy_count_must_be_a_positive_integer(settings, count):
    settings.SCS = {
        "TRUSTED_PROXY_HEADER": "HTTP_X_FORWARDED_FOR",
        "TRUSTED_PROXY_COUNT": count,
    }
    assert check_settings() == [
        checks.Error(
            f'SCS["TRUSTED_PROXY_COUNT"] is {count!r}; it must be a positive number '
            "of proxies.",
            hint='Fix SCS["TRUSTED_PROXY_COUNT"] or remove it to use the default.',
            id="scs_django.E002",
        )
    ]


def test_checks_are_registered():
    registered = checks.registry.registry.get_checks()
    assert check_settings in registered
    assert check_engine in registered
