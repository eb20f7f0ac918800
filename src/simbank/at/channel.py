"""AtChannel: one AT command in flight over an asyncio transport, URCs routed to subscribers.

The channel is the serial adapter's ``asyncio.Protocol``. Every request gets a future that is
registered before its bytes are written; the future completes with the response, an
``AtTimeout`` (the command's own timeout), or ``PortLost`` the moment the port goes away.

Re-sync (modem-realism.md B18, D8, B1): when the codec reports answers out of step with the
commands (``Desync``: a final result nobody asked for, a bare ``OK`` to ``AT+CSQ``, a late
``+CSQ:`` line), the channel re-syncs before its next command: it waits until the line is quiet
(whatever is in flight drains), sends a plain ``AT``, waits until quiet again (the late answers
are consumed), then carries on. A query whose answer was lost on the way is sent once more after
the re-sync; if it is lost again the caller gets ``ProtocolGarbage``. Each re-sync is counted
(``resyncs``, ``on_resync``) and logged once (``at_channel_resynced``).

URC routing (subscriptions, one-shot waits) is in :mod:`simbank.at.subscriptions`; the vendor
URC names come from the drivers (``urc_names``, given by ``drivers.port.open_port``). This file
is past 400 lines because what is left is one state machine: the queue, the timeouts, the
liveness probe and the re-sync all turn on the same in-flight request and quiet-line timer.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

import structlog

from simbank.at.codec import MAX_LINE, AtCodec
from simbank.at.results import (
    SHORT,
    Command,
    Desync,
    Event,
    Garbage,
    Prompt,
    Response,
    Stray,
    Urc,
)
from simbank.at.subscriptions import UrcCallback, UrcSubscriptions, UrcWaiter
from simbank.errors import AtTimeout, ModemUnresponsive, PortLost, ProtocolGarbage

__all__ = ["AtChannel", "UrcCallback", "UrcWaiter", "mask_command"]

HOLD_QUIET: Final = 0.05
"""Seconds of silence after which a held final result (a bare ``OK`` to ``AT+CSQ``: maybe a
stray, maybe the answer) is taken as it is. A stray comes just ahead of the real answer."""
RESYNC_QUIET: Final = 0.2
#: A wait for a quiet line ends after this long whatever the line does: a modem that never
#: stops talking (a URC storm, a boot loop) must not hold the queue for ever.
QUIET_MAX: Final = 1.0
#: After a timeout the next command waits for this much silence (capped by QUIET_MAX): a late
#: answer of the command given up arrives first and is put down as stray, not taken by the next.
TIMEOUT_DRAIN: Final = 0.5
"""Seconds of silence that end each wait of a re-sync (before and after its ``AT``)."""

_log = structlog.get_logger(__name__)
_COMMAND_HEAD = re.compile(r"AT[+^$#*%]?[A-Za-z0-9]*", re.IGNORECASE)


def mask_command(text: str) -> str:
    """``AT+CMGS="+15550100123"`` → ``AT+CMGS=***``; ``ATD+1555...;`` → ``ATD***``."""
    match = _COMMAND_HEAD.match(text)
    head = match.group(0) if match else ""
    if head.upper().startswith("ATD"):
        head = head[:3]
    rest = text[len(head) :]
    return head + ("=" if rest.startswith("=") else "") + ("***" if rest.strip("=") else "")


@dataclass(slots=True, eq=False)
class _Request:
    command: Command
    future: asyncio.Future[Response]
    timer: asyncio.TimerHandle | None = field(default=None)
    sent_at: float | None = None
    resent: bool = False  # sent again after a re-sync (its first answer was lost)


class AtChannel(asyncio.Protocol):
    """One modem port: FIFO of commands, one in flight, URC subscriptions."""

    def __init__(
        self,
        name: str,
        *,
        max_line: int = MAX_LINE,
        hold_quiet: float = HOLD_QUIET,
        resync_quiet: float = RESYNC_QUIET,
        urc_names: Iterable[str] = (),
    ) -> None:
        """``urc_names``: vendor URC names to take as URCs even in the middle of an answer,
        besides the 27.007/27.005 ones (``codec.URC_NAMES``); the drivers declare them."""
        self.name = name
        self.consecutive_timeouts = 0
        #: Lines the codec could not make sense of so far (a URC may have been among them).
        self.garbage_seen = 0
        #: Re-syncs so far: times answers were found out of step with the commands.
        self.resyncs = 0
        #: Called with (seconds, timed_out) when a command ends: for latency metrics.
        self.on_result: Callable[[float, bool], None] | None = None
        #: Called with the reason once per re-sync: for the re-sync counter.
        self.on_resync: Callable[[str], None] | None = None
        self._codec = AtCodec(max_line=max_line, hold_bare=True, urc_names=urc_names)
        self._hold_quiet = hold_quiet
        self._resync_quiet = resync_quiet
        self._quiet: asyncio.TimerHandle | None = None  # armed: wait for silence
        self._quiet_delay = 0.0
        self._quiet_deadline = 0.0
        self._draining = False
        self._quiet_then: Callable[[], None] | None = None
        self._resync_reason: str | None = None  # a re-sync is due (why)
        self._resync_stage: Literal["drain", "probe", "settle"] | None = None
        self._resync_probe: _Request | None = None
        self._resend: _Request | None = None  # its answer was lost: send again after re-sync
        self._transport: asyncio.Transport | None = None
        self._queue: deque[_Request] = deque()
        self._current: _Request | None = None
        self._urcs = UrcSubscriptions(name)
        self._connected = asyncio.Event()
        self._closed = asyncio.Event()
        self._closing = False
        self._lost: BaseException | None = None
        self._log = _log.bind(port=name)

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._connected.set()
        self._log.debug("port_opened")

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._lost = exc
        if not self._closing:
            self._log.warning("port_lost", error=repr(exc) if exc else None)
        self._fail_all(exc)
        self._closed.set()

    def data_received(self, data: bytes) -> None:
        if self._quiet is not None:  # not quiet yet: wait again from now (up to the cap)
            self._arm_quiet(self._quiet_delay, self._quiet_then, rearm=True)
        for event in self._codec.feed(data):
            self._dispatch(event)
        self._check_hold()

    # -- public API ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._transport is not None and not self._closing

    async def wait_connected(self, timeout: float) -> None:  # noqa: ASYNC109 - contract API
        """Wait for ``connection_made`` (the serial adapter calls it on the next loop turn)."""
        async with asyncio.timeout(timeout):
            await self._connected.wait()
        if not self.connected:
            raise PortLost(f"{self.name}: port closed while opening")

    async def request(self, command: Command | str, *, check: bool = True) -> Response:
        """Send one command and wait for its final result.

        Raises AtTimeout (no final result within ``command.timeout``), PortLost (port gone,
        also for requests still queued), CommandError (``check`` and not OK).
        """
        if isinstance(command, str):
            command = Command(command)
        if not self.connected:
            raise PortLost(f"{self.name}: port is not open", raw=self._describe(command))
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._queue.append(_Request(command, future))
        self._send_next()
        response = await future  # cancelling the caller cancels the future; _send_next skips it
        if check:
            response.raise_for_error()
        return response

    @property
    def idle(self) -> bool:
        """No command in flight and none queued: a background poll may go out without
        waiting behind (or delaying) anything — nor behind a command about to time out."""
        return self._current is None and not self._queue

    @property
    def urc_names(self) -> frozenset[str]:
        """The names taken as URCs in the middle of an answer (standard and added)."""
        return self._codec.urc_names

    def subscribe(self, prefix: str, callback: UrcCallback) -> Callable[[], None]:
        """Call ``callback(urc)`` for every URC named ``prefix`` (``"+CREG"``, ``"RING"``)."""
        return self._urcs.subscribe(prefix, callback)

    def subscribe_all(self, callback: UrcCallback) -> Callable[[], None]:
        """Call ``callback(urc)`` for every URC."""
        return self._urcs.subscribe_all(callback)

    def expect_urc(self, prefix: str, predicate: Callable[[Urc], bool] | None = None) -> UrcWaiter:
        """Listen from now on for the next URC named ``prefix`` (and matching ``predicate``);
        ``await waiter.wait(timeout)`` for it, ``close()`` it (or use ``with``). Make it before
        sending a command whose answer may come as that URC: an early one is not missed."""
        if not self.connected:
            raise PortLost(f"{self.name}: port is not open")
        return self._urcs.waiter(prefix, predicate)

    async def wait_for_urc(
        self,
        prefix: str,
        timeout: float,  # noqa: ASYNC109 - the documented contract takes a timeout
        predicate: Callable[[Urc], bool] | None = None,
    ) -> Urc:
        """The next URC named ``prefix`` (and matching ``predicate``); AtTimeout, PortLost."""
        with self.expect_urc(prefix, predicate) as waiter:
            return await waiter.wait(timeout)

    async def wait_closed(self) -> BaseException | None:
        """Wait until the port is closed; the transport's error, if any (None = clean)."""
        await self._closed.wait()
        return self._lost

    def close(self) -> None:
        """Close the port. Pending and queued requests fail with PortLost at once."""
        if self._closing:
            return
        self._closing = True
        self._fail_all(None)
        if self._transport is None:
            self._closed.set()
        else:
            self._log.debug("port_closing")
            self._transport.close()

    # -- internals -------------------------------------------------------------------------

    def _report(self, request: _Request, *, timed_out: bool) -> None:
        if self.on_result is None or request.sent_at is None:
            return
        try:
            self.on_result(asyncio.get_running_loop().time() - request.sent_at, timed_out)
        except Exception:  # noqa: BLE001 - a metrics hook must never break the channel
            self._log.exception("at_result_hook_failed")

    def _describe(self, command: Command) -> str:
        return mask_command(command.text) if command.sensitive else command.text

    def _send_next(self) -> None:
        if self._current is not None or self._transport is None or self._closing:
            return
        if self._resync_stage in ("drain", "settle") or self._draining:
            return  # a re-sync, or the drain after a timeout, waits for the line to go quiet
        if self._resync_reason is not None and self._resync_stage is None:
            self._start_resync()
            return
        while self._queue:
            request = self._queue.popleft()
            if request.future.done():
                continue  # the caller gave up while queued
            if self.consecutive_timeouts and request.command.timeout > SHORT:
                # The modem just let a command time out: before it gets one that may take 40 s
                # (a dial, CFUN), a plain AT shows whether it still answers at all.
                self._queue.appendleft(request)
                request = self._liveness_probe()
            try:
                data = self._codec.send(request.command)
            except (ValueError, RuntimeError) as exc:
                request.future.set_exception(exc)
                continue
            self._current = request
            loop = asyncio.get_running_loop()
            request.sent_at = loop.time()
            request.timer = loop.call_later(request.command.timeout, self._on_timeout, request)
            self._log.debug("at_tx", command=self._describe(request.command))
            self._transport.write(data)
            return

    def _liveness_probe(self) -> _Request:
        """An ``AT`` sent ahead of the queue; if it times out too, the modem has stopped
        answering and everything queued is given up at once (the supervisor escalates)."""
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()

        def answered(done: asyncio.Future[Response]) -> None:
            if not done.cancelled() and isinstance(done.exception(), AtTimeout):
                self.abort("given up: the modem does not answer AT")

        future.add_done_callback(answered)
        return _Request(Command("AT", timeout=SHORT), future)

    def _on_timeout(self, request: _Request) -> None:
        if self._current is not request:
            return
        if self._codec.holding:  # a chatty line kept the held answer from settling: take it
            self._settle_hold()
            if self._current is not request:
                return
        self._current = None
        self._codec.abandon()
        self.consecutive_timeouts += 1
        self._report(request, timed_out=True)
        text = self._describe(request.command)
        # A bare AT is a liveness or probe check: whoever sent it reports the outcome (a modem
        # failing for good would otherwise write three warnings per retry, for ever).
        report = self._log.debug if request.command.text == "AT" else self._log.warning
        report(
            "at_timeout",
            command=text,
            timeout=request.command.timeout,
            consecutive=self.consecutive_timeouts,
        )
        if not request.future.done():
            request.future.set_exception(
                AtTimeout(
                    f"{self.name}: {text} got no answer in {request.command.timeout:g}s",
                    raw=text,
                )
            )
        if request is self._resync_probe:
            self._probe_answered()
        elif self._quiet is None and self._resync_stage is None:
            self._draining = True
            self._arm_quiet(TIMEOUT_DRAIN, self._drained)
        self._send_next()

    def _drained(self) -> None:
        self._draining = False
        self._send_next()

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, Response):
            self._complete(event)
        elif isinstance(event, Urc):
            # A two-line URC's body is a message or a status report (a PDU holds phone
            # numbers as swapped digits the log masking cannot see): never logged.
            body = None if event.body is None else f"<{len(event.body)} chars>"
            self._log.debug("at_urc", name=event.name, text=event.text, body=body)
            self._urcs.deliver(event)
        elif isinstance(event, Prompt):
            current = self._current
            if current is not None and self._transport is not None:
                payload = self._codec.payload()
                shown = "***" if current.command.sensitive else payload.decode("ascii")
                self._log.debug("at_tx_payload", payload=shown)
                self._transport.write(payload)
        elif isinstance(event, Stray):
            self._log.debug("at_stray", line=event.line)
        elif isinstance(event, Desync):
            self._on_desync(event)
        elif isinstance(event, Garbage):
            self.garbage_seen += 1
            self._log.warning("at_garbage", reason=event.reason, raw=event.raw[:80])

    def _complete(self, response: Response) -> None:
        request = self._current
        self._current = None
        self.consecutive_timeouts = 0
        command = response.command
        if command.sensitive:
            self._log.debug("at_rx", command=mask_command(command.text), final=response.final.raw)
        else:
            self._log.debug(
                "at_rx", command=command.text, lines=list(response.lines), final=response.final.raw
            )
        if request is not None:
            self._report(request, timed_out=False)
            if request.timer is not None:
                request.timer.cancel()
            if not request.future.done():
                request.future.set_result(response)
            if request is self._resync_probe:
                self._probe_answered()
        self._send_next()

    # -- re-sync ---------------------------------------------------------------------------

    def _arm_quiet(
        self, delay: float, then: Callable[[], None] | None, *, rearm: bool = False
    ) -> None:
        """Call ``then`` once no byte has arrived for ``delay`` seconds, or at the latest
        ``QUIET_MAX`` after the wait began (``rearm``: bytes came, the same wait goes on)."""
        if self._quiet is not None:
            self._quiet.cancel()
        loop = asyncio.get_running_loop()
        if not rearm:
            self._quiet_deadline = loop.time() + max(delay, QUIET_MAX)
        wait = max(0.0, min(delay, self._quiet_deadline - loop.time()))
        self._quiet_delay, self._quiet_then = delay, then
        self._quiet = loop.call_later(wait, self._on_quiet)

    def _cancel_quiet(self) -> None:
        if self._quiet is not None:
            self._quiet.cancel()
        self._quiet = self._quiet_then = None

    def _on_quiet(self) -> None:
        then = self._quiet_then
        self._quiet = self._quiet_then = None
        if then is not None:
            then()

    def _check_hold(self) -> None:
        if self._codec.holding and self._quiet is None:
            self._arm_quiet(self._hold_quiet, self._settle_hold)

    def _settle_hold(self) -> None:
        if self._quiet_then == self._settle_hold:
            self._cancel_quiet()
        for event in self._codec.settle():
            self._dispatch(event)
        self._check_hold()

    def _on_desync(self, event: Desync) -> None:
        self._log.debug("at_desync", reason=event.reason, line=event.line[:80])
        request = self._current
        if event.command is not None and request is not None and request.command is event.command:
            # the codec gave up this command: its answer is lost; ask again after the re-sync
            self._current = None
            if request.timer is not None:
                request.timer.cancel()
            if request is self._resync_probe:
                self._probe_answered()
            elif request.resent:
                text = self._describe(request.command)
                if not request.future.done():
                    request.future.set_exception(
                        ProtocolGarbage(
                            f"{self.name}: {text}: answer lost twice ({event.reason})",
                            raw=event.line,
                        )
                    )
            else:
                request.resent = True
                self._resend = request
        if self._resync_stage is None and self._resync_reason is None:
            self._resync_reason = event.reason
        self._send_next()

    def _start_resync(self) -> None:
        """Drain: wait for silence, so whatever the modem is still sending arrives first."""
        self._resync_stage = "drain"
        self._arm_quiet(self._resync_quiet, self._send_resync_probe)

    def _send_resync_probe(self) -> None:
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        self._resync_probe = _Request(Command("AT", timeout=SHORT), future)
        self._resync_stage = "probe"
        self._queue.appendleft(self._resync_probe)
        self._send_next()

    def _probe_answered(self) -> None:
        """The re-sync's AT has its answer (or none): wait for silence once more."""
        self._resync_probe = None
        self._resync_stage = "settle"
        self._arm_quiet(self._resync_quiet, self._resync_done)

    def _resync_done(self) -> None:
        reason = self._resync_reason or "unknown"
        self._resync_reason = self._resync_stage = None
        self._codec.resynced()
        self.resyncs += 1
        resend, self._resend = self._resend, None
        self._log.warning(
            "at_channel_resynced",
            reason=reason,
            resyncs=self.resyncs,
            resending=self._describe(resend.command) if resend else None,
        )
        if self.on_resync is not None:
            try:
                self.on_resync(reason)
            except Exception:  # noqa: BLE001 - a metrics hook must never break the channel
                self._log.exception("at_resync_hook_failed")
        if resend is not None and not resend.future.done():
            self._queue.appendleft(resend)
        self._send_next()

    def cancel_text_entry(self) -> None:
        """Write ESC, outside any command: a client that died at the SMS prompt (``> `` after
        ``AT+CMGS``) left the modem reading message text, where every ``AT`` we send is more
        text; ESC cancels that message (27.005 3.5.1) and the modem answers commands again."""
        if self._transport is not None and self._current is None:
            self._log.info("at_text_entry_cancelled")
            self._transport.write(b"\x1b")

    def _take_all(self) -> list[_Request]:
        """The request in flight (abandoned) and every queued one, their timers stopped."""
        self._cancel_quiet()
        self._draining = False
        if self._resync_stage is not None:
            self._resync_stage = None  # the reason stays: re-sync before the next command
            self._resync_probe = None
        requests = list(self._queue)
        self._queue.clear()
        if self._resend is not None:
            requests.insert(0, self._resend)
            self._resend = None
        if self._current is not None:
            requests.insert(0, self._current)
            self._current = None
            self._codec.abandon()
        for request in requests:
            if request.timer is not None:
                request.timer.cancel()
        return requests

    def abort(self, reason: str) -> int:
        """Give up the command in flight and every queued one with ``ModemUnresponsive`` (the modem
        stopped answering: nothing queued behind a hang may delay the re-sync); the port
        stays open. Returns how many were given up."""
        given_up = 0
        for request in self._take_all():
            if not request.future.done():
                text = self._describe(request.command)
                error = ModemUnresponsive(f"{self.name}: {text}: {reason}", raw=text)
                request.future.set_exception(error)
                given_up += 1
        return given_up

    def _fail_all(self, exc: BaseException | None) -> None:
        reason = "closed" if self._closing else f"lost ({exc!r})" if exc else "lost"
        for request in self._take_all():
            if not request.future.done():
                error = PortLost(f"{self.name}: port {reason}", raw=self._describe(request.command))
                error.__cause__ = exc
                request.future.set_exception(error)
        self._urcs.fail_waiters(reason)


def _retrieve(future: asyncio.Future[Response]) -> None:
    """The re-sync's own AT: its outcome is read by nobody (no 'never retrieved' warning)."""
    if not future.cancelled():
        future.exception()
