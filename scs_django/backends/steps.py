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


class _Outcome:
    # What the last call gave (or raised), sent (or thrown) into the steps;
    # at the end, what the steps returned.
    __slots__ = ("failed", "value")

    def __init__(self) -> None:
        self.value: Any = None
        self.failed = False

    def resume(self, steps: Steps[Any]) -> Io | None:
        """The next call the steps ask for; None when they have returned."""
        try:
            if self.failed:
                return steps.throw(self.value)
            return steps.send(self.value)
        except StopIteration as stop:
            self.value, self.failed = stop.value, False
            return None


def run(steps: Steps[T]) -> T:
    """Drive ``steps`` with the sync calls; return what the generator returns."""
    outcome = _Outcome()
    while (io := outcome.resume(steps)) is not None:
        try:
            outcome.value, outcome.failed = io.sync_call(*io.args), False
        except BaseException as exc:  # noqa: BLE001 - thrown into the steps
            outcome.value, outcome.failed = exc, True
    return outcome.value  # type: ignore[no-any-return]


async def arun(steps: Steps[T]) -> T:
    """Drive ``steps`` with the async calls; return what the generator returns."""
    outcome = _Outcome()
    while (io := outcome.resume(steps)) is not None:
        try:
            outcome.value, outcome.failed = await io.async_call(*io.args), False
        except BaseException as exc:  # noqa: BLE001 - thrown into the steps
            outcome.value, outcome.failed = exc, True
    return outcome.value  # type: ignore[no-any-return]
