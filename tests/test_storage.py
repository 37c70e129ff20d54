"""What lands in the database: the token hash, never the token."""

import pytest
from django.conf import settings as django_settings

from scs_django import tokens
from tests.factories import PASSWORD
from tests.utils import every_cell

pytestmark = pytest.mark.django_db(databases="__all__")

COOKIE = django_settings.SESSION_COOKIE_NAME


def test_no_column_holds_a_cookie_value(client, db_alias, user_factory):
    user = user_factory()
    issued = []
    client.get("/write/", {"value": "cart"})
    issued.append(client.cookies[COOKIE].value)
    client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    issued.append(client.cookies[COOKIE].value)
    client.get("/renew/")
    issued.append(client.cookies[COOKIE].value)
    assert len(set(issued)) == 3
    cells = list(every_cell(db_alias))
    for token in issued:
        for cell in cells:
            if isinstance(cell, bytes):
                assert token.encode() not in cell
                assert token[:16].encode() not in cell
            else:
                assert token not in str(cell)
                assert token[:16] not in str(cell)
    assert tokens.hash_token(issued[-1]) in [str(cell) for cell in cells]
