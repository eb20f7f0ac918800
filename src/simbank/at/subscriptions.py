"""URC subscriptions of one port: callbacks by URC name, callbacks for every URC, and the
one-shot wait for the next URC of a name (``UrcWaiter``).

A waiter listens from the moment it is made, so a caller that sends a command whose answer may
come as a URC (``AT+CUSD`` → ``+CUSD``) makes the waiter first and cannot miss an early one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType

import structlog

from simbank.at.results import Urc
from simbank.errors import AtTimeout, PortLost

UrcCallback = Callable[[Urc], None]


class UrcWaiter:
    """The next URC named ``prefix`` (and matching ``predicate``), listened for from creation
    until ``close()`` (or the end of its ``with`` block)."""

    def __init__(
        self,
        subscriptions: UrcSubscriptions,
        port: str,
        prefix: str,
        predicate: Callable[[Urc], bool] | None = None,
    ) -> None:
        self._subscriptions = subscriptions
        self._port = port
        self._prefix = prefix
        self._predicate = predicate
        self._future: asyncio.Future[Urc] = asyncio.get_running_loop().create_future()
        self._unsubscribe = subscriptions.subscribe(prefix, self._on_urc)
        subscriptions.waiters.add(self)

    def _on_urc(self, urc: Urc) -> None:
        if self._future.done():
            return
        try:
            wanted = self._predicate is None or self._predicate(urc)
        except Exception as exc:  # noqa: BLE001 - the predicate's error goes to the waiter
            self._future.set_exception(exc)
            return
        if wanted:
            self._future.set_result(urc)

    def fail(self, error: BaseException) -> None:
        """End the wait with ``error`` (the port is gone)."""
        if not self._future.done():
            self._future.set_exception(error)

    async def wait(self, timeout: float) -> Urc:  # noqa: ASYNC109 - the contract takes a timeout
        """The URC (at once if it came already); AtTimeout after ``timeout`` s, PortLost."""
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(self._future)
        except TimeoutError:
            raise AtTimeout(f"{self._port}: no {self._prefix} within {timeout:g}s") from None

    def close(self) -> None:
        """Stop listening."""
        self._unsubscribe()
        self._subscriptions.waiters.discard(self)
        if not self._future.done():
            self._future.cancel()
        elif not self._future.cancelled():
            self._future.exception()  # read: no "exception never retrieved" for an unused wait

    def __enter__(self) -> UrcWaiter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class UrcSubscriptions:
    """Who gets the URCs of one port."""

    def __init__(self, port: str) -> None:
        self._port = port
        self._by_name: dict[str, list[UrcCallback]] = {}
        self._all: list[UrcCallback] = []
        self.waiters: set[UrcWaiter] = set()
        self._log = structlog.get_logger("simbank.at.channel").bind(port=port)

    def subscribe(self, prefix: str, callback: UrcCallback) -> Callable[[], None]:
        """Call ``callback(urc)`` for every URC named ``prefix``; returns the unsubscribe."""
        self._by_name.setdefault(prefix, []).append(callback)

        def unsubscribe() -> None:
            callbacks = self._by_name.get(prefix, [])
            if callback in callbacks:
                callbacks.remove(callback)

        return unsubscribe

    def subscribe_all(self, callback: UrcCallback) -> Callable[[], None]:
        """Call ``callback(urc)`` for every URC; returns the unsubscribe."""
        self._all.append(callback)

        def unsubscribe() -> None:
            if callback in self._all:
                self._all.remove(callback)

        return unsubscribe

    def waiter(self, prefix: str, predicate: Callable[[Urc], bool] | None = None) -> UrcWaiter:
        """A ``UrcWaiter`` listening from now on."""
        return UrcWaiter(self, self._port, prefix, predicate)

    def deliver(self, urc: Urc) -> None:
        """Hand ``urc`` to its subscribers; a subscriber that raises is logged and skipped."""
        for callback in (*self._by_name.get(urc.name, ()), *self._all):
            try:
                callback(urc)
            except Exception:  # noqa: BLE001 - a broken subscriber must not break the port
                self._log.exception("urc_callback_failed", name=urc.name)

    def fail_waiters(self, reason: str) -> None:
        """The port is gone: every waiter fails with PortLost."""
        for waiter in list(self.waiters):
            waiter.fail(PortLost(f"{self._port}: port {reason}"))
