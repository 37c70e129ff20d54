"""One body of logic for the sync and the async API.

A method that does I/O is written once, as a generator that yields an
:class:`Io` for each call to the store (or to anything else that has an async
twin) and receives its result. :func:`run` drives it with the sync calls,
:func:`arun` awaits the async ones; an exception a call raises is thrown back
into the generator at the ``yield``, so ``try``/``with`` blocks around it work
as in straight code::

    def _loading(self) -> Steps[dict]:
        loaded = yield Io(self._fetch, self._afetch, key_hash, now)
        ...

    def load(self):
        return run(self._loading())

    async def aload(self):
        return await arun(self._loading())
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

T = TypeVar("T")


class Io:
    """One call with a sync and an async way of making it."""

    __slots__ = ("args", "async_call", "sync_call")

    def __init__(
        self,
        sync_call: Callable[..., Any],
        async_call: Callable[..., Awaitable[Any]],
        *args: Any,
    ) -> None:
        self.sync_call = sync_call
        self.async_call = async_call
        self.args = args


Steps = Generator[Io, Any, T]


def run(steps: Steps[T]) -> T:
    """Drive ``steps`` with the sync calls; return what the generator returns."""
    # Written out rather than shared with arun(): this drives every load, and
    # a helper call per step would cost more than the step's own bookkeeping.
    value: Any = None
    failed = False
    while True:
        try:
            io = steps.throw(value) if failed else steps.send(value)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        try:
            value, failed = io.sync_call(*io.args), False
        except BaseException as exc:  # noqa: BLE001 - thrown into the steps
            value, failed = exc, True


async def arun(steps: Steps[T]) -> T:
    """Drive ``steps`` with the async calls; return what the generator returns."""
    value: Any = None
    failed = False
    while True:
        try:
            io = steps.throw(value) if failed else steps.send(value)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        try:
            value, failed = await io.async_call(*io.args), False
        except BaseException as exc:  # noqa: BLE001 - thrown into the steps
            value, failed = exc, True
