"""The demo's shop: a few products and a cart kept in the session.

The cart is plain session data, so it shows what a login does to the data a
visitor had before: the token is renewed, the data stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CART_KEY = "cart"


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


@dataclass(frozen=True)
class Product:
    slug: str
    name: str
    price_cents: int

    @property
    def price(self) -> str:
        return money(self.price_cents)


PRODUCTS = {
    product.slug: product
    for product in (
        Product("green-tea", "Green tea, 100 g", 650),
        Product("espresso", "Espresso beans, 250 g", 890),
        Product("shortbread", "Shortbread biscuits", 420),
        Product("mug", "Stoneware mug", 1250),
    )
}


@dataclass(frozen=True)
class Line:
    product: Product
    quantity: int

    @property
    def total(self) -> str:
        return money(self.product.price_cents * self.quantity)


def quantities(session: Any) -> dict[str, int]:
    """The cart as stored: product slug -> quantity, unknown slugs left out."""
    stored = session.get(CART_KEY) or {}
    return {slug: int(n) for slug, n in stored.items() if slug in PRODUCTS and n > 0}


def lines(session: Any) -> list[Line]:
    return [Line(PRODUCTS[slug], n) for slug, n in quantities(session).items()]


def item_count(session: Any) -> int:
    return sum(quantities(session).values())


def total(session: Any) -> str:
    cart = quantities(session)
    return money(sum(PRODUCTS[slug].price_cents * n for slug, n in cart.items()))


def add(session: Any, slug: str) -> None:
    cart = quantities(session)
    cart[slug] = cart.get(slug, 0) + 1
    session[CART_KEY] = cart


def remove(session: Any, slug: str) -> None:
    cart = quantities(session)
    if cart.get(slug, 0) > 1:
        cart[slug] -= 1
    else:
        cart.pop(slug, None)
    session[CART_KEY] = cart


def empty(session: Any) -> None:
    session.pop(CART_KEY, None)
