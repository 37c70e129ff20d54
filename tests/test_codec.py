"""The envelope codec writes and reads exactly what Django's JSON serializer
would, through its shortcuts to json's C encoder and scanner."""

from __future__ import annotations

import json
import math

import pytest
from django.core.signing import JSONSerializer

from scs_django import codec
from scs_django.exceptions import SessionNotSerializable

VALUES = [
    {},
    {"colour": "blue", "n": 3, "f": 1.5, "none": None, "yes": True, "no": False},
    {"unicode": "é ü 漢字 \U0001f600 \u2028", "quote": 'a"b\\c\n\t'},
    {"nested": {"list": [1, [2, [3, {"x": []}]]], "empty": {}}},
    {7: "int key", 2.5: "float key", True: "bool key", None: "null key"},
    {"big": 10**30, "neg": -(2**63), "tiny": 5e-324, "nan": math.nan},
    {"inf": math.inf, "minus_inf": -math.inf, "tuple": (1, 2)},
]


@pytest.mark.parametrize("value", VALUES)
def test_the_envelope_is_djangos_json_serializer_output(settings, value):
    settings.SCS = {"ENCRYPTION": None}
    envelope = {"c": 1, "a": 2, "d": value}
    blob = codec.encode(value, created=1, absolute=2, key_hash="0" * 64)
    assert blob == codec.PLAIN + JSONSerializer().dumps(envelope)
    assert codec._json_dumps is not None  # the shortcut was the one used


def test_the_shortcut_is_used_only_for_djangos_json_serializer(settings):
    settings.SCS = {"ENCRYPTION": None}
    settings.SESSION_SERIALIZER = "tests.test_codec.SortedSerializer"
    blob = codec.encode({"b": 1, "a": 2}, created=1, absolute=2, key_hash="0" * 64)
    assert blob == codec.PLAIN + b'{"a":2,"c":1,"d":{"a":2,"b":1}}'
    assert codec.decode(blob, "0" * 64).data == {"a": 2, "b": 1}


class SortedSerializer(JSONSerializer):
    def dumps(self, obj):
        return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def test_a_session_that_contains_itself_is_refused(settings):
    data: dict = {}
    data["self"] = data
    with pytest.raises(SessionNotSerializable):
        codec.encode(data, created=1, absolute=2, key_hash="0" * 64)


@pytest.mark.parametrize("value", [object(), {"set": {1, 2}}, {("a",): 1}])
def test_what_json_cannot_hold_is_refused(settings, value):
    with pytest.raises(SessionNotSerializable):
        codec.encode({"v": value}, created=1, absolute=2, key_hash="0" * 64)
