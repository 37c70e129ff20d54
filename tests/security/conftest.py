from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from scs_django import tokens
from tests.security.transport import TRANSPORTS, Transport


@pytest.fixture(params=TRANSPORTS)
def transport(request):
    """Run the test once over WSGI and once over ASGI, headers as raw bytes."""
    return Transport(request.param)


@pytest.fixture
def stored(engine: Any) -> Callable[[str], dict[str, Any] | None]:
    """What the engine holds for a token: ``stored(token)`` (None when it has none).

    Redis's remaining time to live, which changes by itself, is left out.
    """

    def get(token: str) -> dict[str, Any] | None:
        found = engine.stored.get(tokens.hash_token(token))
        if found is not None:
            found.pop("pttl", None)
        return found

    return get
