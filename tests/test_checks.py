"""System checks: exact messages for each misconfiguration."""

import base64

import pytest
from django.core import checks

from scs_django.checks import check_engine, check_settings
from scs_django.crypto_checks import (
    check_cookie_engine,
    check_cookie_engine_deploy,
    check_encryption,
    check_encryption_deploy,
)
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


# -- sealing -----------------------------------------------------------------------

KEY = bytes(range(32))
KEY_HINT = (
    "A key is 32 random bytes, or their base64 text, such as "
    'base64.b64encode(os.urandom(32)).decode("ascii").'
)


def test_encryption_is_on_and_clean_by_default(settings):
    settings.SCS = {}
    assert check_encryption() == []
    assert check_encryption_deploy() == []


@pytest.mark.parametrize("algorithm", ["aes-gcm", "chacha20-poly1305", None])
def test_every_known_algorithm_is_accepted(settings, algorithm):
    settings.SCS = {"ENCRYPTION": algorithm}
    assert check_encryption() == []


def test_an_unknown_algorithm_names_the_closest_one(settings):
    settings.SCS = {"ENCRYPTION": "AES_GCM"}
    assert check_encryption() == [
        checks.Error(
            "SCS[\"ENCRYPTION\"] is 'AES_GCM', which is not an algorithm scs_django "
            "knows.",
            hint='Did you mean SCS["ENCRYPTION"] = "aes-gcm"?',
            id="scs_django.E040",
        )
    ]


@pytest.mark.parametrize("algorithm", ["rot13", True, ["aes-gcm"]])
def test_an_unknown_algorithm_without_a_close_match(settings, algorithm):
    settings.SCS = {"ENCRYPTION": algorithm}
    assert check_encryption() == [
        checks.Error(
            f'SCS["ENCRYPTION"] is {algorithm!r}, which is not an algorithm scs_django '
            "knows.",
            hint='Use "aes-gcm" (the default), "chacha20-poly1305", or None to store '
            "sessions unencrypted.",
            id="scs_django.E040",
        )
    ]


@pytest.mark.parametrize(
    "keys, problem",
    [([], "empty"), ((), "empty"), (KEY, "not a list"), ("a-single-key", "not a list")],
)
def test_keys_must_be_a_non_empty_list(settings, keys, problem):
    settings.SCS = {"ENCRYPTION_KEYS": keys}
    assert check_encryption() == [
        checks.Error(
            f'SCS["ENCRYPTION_KEYS"] is {problem}; it must be a list of keys, or None '
            "to derive them from SECRET_KEY.",
            hint='Write SCS["ENCRYPTION_KEYS"] = [new_key, old_key, ...]: the first '
            "encrypts, all decrypt.",
            id="scs_django.E041",
        )
    ]


def test_malformed_keys_are_named_by_place_never_shown(settings):
    secret_text = base64.b64encode(KEY[:24]).decode()
    settings.SCS = {
        "ENCRYPTION_KEYS": [KEY, KEY[:16], secret_text, "not base64!", 12345]
    }
    messages = check_encryption()
    assert ids_and_messages(messages) == [
        (
            "scs_django.E042",
            'SCS["ENCRYPTION_KEYS"][1] is not a key: it is 16 bytes, not 32.',
        ),
        (
            "scs_django.E042",
            'SCS["ENCRYPTION_KEYS"][2] is not a key: it decodes to 24 bytes, not 32.',
        ),
        (
            "scs_django.E042",
            'SCS["ENCRYPTION_KEYS"][3] is not a key: it is not base64.',
        ),
        (
            "scs_django.E042",
            'SCS["ENCRYPTION_KEYS"][4] is not a key: it is of type int, not bytes or '
            "base64 text.",
        ),
    ]
    assert {m.hint for m in messages} == {KEY_HINT}
    assert not any(secret_text in m.msg for m in messages)


def test_malformed_keys_are_reported_even_with_encryption_off(settings):
    settings.SCS = {"ENCRYPTION": None, "ENCRYPTION_KEYS": ["short"]}
    assert [m.id for m in check_encryption()] == ["scs_django.E042"]


def test_a_key_given_twice_is_reported(settings):
    other = bytes(range(1, 33))
    settings.SCS = {
        "ENCRYPTION_KEYS": [KEY, other, base64.urlsafe_b64encode(KEY).decode()]
    }
    assert check_encryption() == [
        checks.Error(
            'SCS["ENCRYPTION_KEYS"][2] is the same key as SCS["ENCRYPTION_KEYS"][0].',
            hint="Keep each key once, in the place that says when it was made: the "
            "first encrypts.",
            id="scs_django.E043",
        )
    ]


def test_encryption_without_any_key_is_reported(settings):
    settings.SECRET_KEY = ""
    settings.SCS = {}
    assert check_encryption() == [
        checks.Error(
            "Sessions are encrypted, but SECRET_KEY is empty and "
            'SCS["ENCRYPTION_KEYS"] is not set, so there is no key.',
            hint='Set SECRET_KEY, or give SCS["ENCRYPTION_KEYS"] a list of keys.',
            id="scs_django.E044",
        )
    ]
    settings.SCS = {"ENCRYPTION_KEYS": [KEY]}
    assert check_encryption() == []
    settings.SCS = {"ENCRYPTION": None}
    assert check_encryption() == []


def test_encryption_turned_off_is_a_deploy_warning(settings):
    settings.SCS = {"ENCRYPTION": None}
    assert check_encryption_deploy() == [
        checks.Warning(
            'SCS["ENCRYPTION"] is None, so session data is stored unencrypted: whoever '
            "reads the database, the cache or a backup reads every session, and "
            "whoever can write there can change one.",
            hint='Remove SCS["ENCRYPTION"] to use "aes-gcm", the default.',
            id="scs_django.W040",
        )
    ]


def test_encryption_checks_leave_a_malformed_scs_to_e002(settings):
    settings.SCS = ["ENCRYPTION"]
    assert check_encryption() == []
    assert check_encryption_deploy() == []


def test_encryption_checks_are_registered():
    assert check_encryption in checks.registry.registry.get_checks()
    assert check_encryption_deploy in checks.registry.registry.get_checks(
        include_deployment_checks=True
    )
    assert check_encryption_deploy not in checks.registry.registry.get_checks()


# -- the cookie engine -----------------------------------------------------------

COOKIE_ENGINE = "scs_django.backends.cookie"


def test_the_cookie_engine_is_an_scs_django_engine(settings):
    settings.SESSION_ENGINE = COOKIE_ENGINE
    assert check_engine() == []
    assert check_cookie_engine() == []


def test_the_cookie_engine_without_sealing_is_an_error(settings):
    settings.SESSION_ENGINE = COOKIE_ENGINE
    settings.SCS = {"ENCRYPTION": None}
    assert check_cookie_engine() == [
        checks.Error(
            'The cookie session engine needs sealing, but SCS["ENCRYPTION"] is None: '
            "anyone could write an unsealed cookie, so the engine refuses to work.",
            hint='Remove SCS["ENCRYPTION"] to seal with "aes-gcm", the default.',
            id="scs_django.E050",
        )
    ]
    settings.SESSION_ENGINE = "scs_django.backends.db"
    assert check_cookie_engine() == []  # W040 says what that costs there
    settings.SESSION_ENGINE = COOKIE_ENGINE
    settings.SCS = ["ENCRYPTION"]
    assert check_cookie_engine() == []  # E002's


def test_the_cookie_engine_states_its_limits_on_deploy(settings):
    assert check_cookie_engine_deploy() == []
    settings.SESSION_ENGINE = COOKIE_ENGINE
    assert check_cookie_engine_deploy() == [
        checks.Warning(
            "Sessions are sealed into their cookies (scs_django.backends.cookie), so "
            "the server cannot end one: logout clears the browser's cookie, but a "
            "copy of it keeps working until its idle or absolute deadline, and a "
            "user's sessions cannot be listed or revoked.",
            hint="Use the db or cache engine where a logout must end the session "
            "everywhere; otherwise keep the timeouts short and silence this check.",
            id="scs_django.W050",
        )
    ]
    settings.SESSION_ENGINE = "no.such.engine"
    assert check_cookie_engine_deploy() == []  # E004's


def test_cookie_engine_checks_are_registered():
    assert check_cookie_engine in checks.registry.registry.get_checks()
    assert check_cookie_engine_deploy in checks.registry.registry.get_checks(
        include_deployment_checks=True
    )
    assert check_cookie_engine_deploy not in checks.registry.registry.get_checks()


def test_a_warning_too_early_for_stay_signed_in_to_count_is_reported(settings):
    settings.SCS = {"IDLE_TIMEOUT": 600, "TOUCH_INTERVAL": 60, "IDLE_WARNING": 541}
    assert ids_and_messages(check_settings()) == [
        (
            "scs_django.W031",
            'SCS["IDLE_WARNING"] (541) is larger than IDLE_TIMEOUT - TOUCH_INTERVAL '
            '(540): the expiry warning can show before "Stay signed in" is able to '
            "move the idle deadline.",
        )
    ]
    settings.SCS = {"IDLE_TIMEOUT": 600, "TOUCH_INTERVAL": 60, "IDLE_WARNING": 540}
    assert check_settings() == []
    settings.SCS = {"IDLE_WARNING": 10_000}  # no idle timeout: nothing to warn of
    assert check_settings() == []


@pytest.mark.parametrize("value", [0, -1, "60", 1.5, True, None])
def test_the_idle_warning_must_be_a_positive_number_of_seconds(settings, value):
    settings.SCS = {"IDLE_WARNING": value}
    assert ids_and_messages(check_settings()) == [
        (
            "scs_django.E002",
            f'SCS["IDLE_WARNING"] is {value!r}; it must be a positive number of seconds.',
        )
    ]


@pytest.mark.parametrize("value", ["", None, 3, ["base.html"]])
def test_the_devices_base_template_must_be_a_template_name(settings, value):
    settings.SCS = {"DEVICES_BASE_TEMPLATE": value}
    assert ids_and_messages(check_settings()) == [
        (
            "scs_django.E002",
            f'SCS["DEVICES_BASE_TEMPLATE"] is {value!r}; it must be a template name.',
        )
    ]
