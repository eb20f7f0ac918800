"""Received SMS handed to an operator's command, one at a time (Gammu's ``RunOnReceive`` habit).

The inbox calls :meth:`SmsForwarder.submit` with a message as ``sms/list`` shows it; the
daemon runs :meth:`SmsForwarder.run` as a task of its TaskGroup. For each message the
configured argv is started without a shell, in its own process group, with the message as
one line of JSON (UTF-8, newline-terminated) on stdin, and the daemon's environment plus
``SIMBANK_SMS_ID`` and ``SIMBANK_ICCID`` (when the message has them). stdout is discarded.

What can go wrong is logged and never raised out of :meth:`run`; the message itself is
already in the ledger, so nothing is lost, only its forward:

- the queue is full (``max_pending``): :meth:`submit` answers False, ``sms_forward_skipped``;
- the program cannot be started (missing, not executable): ``sms_forward_unavailable``,
  logged once until a forward starts again (then again on the next such failure), the
  failures in between at debug;
- the command outlives ``timeout_s`` (a forward lasts until the command has exited and every
  holder of its stderr, its background children too, has closed it): its process group is
  sent SIGTERM, SIGKILL after :data:`KILL_GRACE_S`, ``sms_forward_timeout``;
- a non-zero exit (or death by a signal, a negative code): ``sms_forward_failed`` with the
  code and the first :data:`STDERR_KEPT` bytes of stderr.

Logs name the message by its id only, never its text or sender. Cancelling :meth:`run`
(daemon shutdown) kills a running command's process group rather than orphaning it; the
guards here are wall-clock seconds, not the injected Clock's (see :mod:`simbank.clock`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)

#: Seconds between SIGTERM and SIGKILL when a forward is stopped.
KILL_GRACE_S = 2.0
#: Bytes of a failed command's stderr kept for the log.
STDERR_KEPT = 200


@dataclass(frozen=True, slots=True)
class _Forward:
    """One queued message: its JSON line, and what the command's environment learns of it."""

    sms_id: str | None
    iccid: str | None
    document: bytes


def encode_message(message: Mapping[str, object]) -> bytes:
    """The message as one line of JSON, UTF-8 with a newline at the end (values JSON cannot
    hold, e.g. datetimes, as their ``str()``; text with lone surrogates falls back to ASCII
    escapes so the document stays valid UTF-8)."""
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"), default=str)
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(message, ensure_ascii=True, separators=(",", ":"), default=str)
        return (text + "\n").encode("ascii")


def _env_value(message: Mapping[str, object], key: str) -> str | None:
    value = message.get(key)
    return None if value is None else str(value)


class SmsForwarder:
    """A bounded queue of received messages and the task that forwards them in order."""

    def __init__(
        self,
        command: Sequence[str],
        timeout_s: float,
        max_pending: int = 100,
        *,
        kill_grace_s: float = KILL_GRACE_S,
    ) -> None:
        if not command:
            raise ValueError("the forward command is empty")
        if timeout_s <= 0 or max_pending < 1:
            raise ValueError("timeout_s must be positive and max_pending at least 1")
        self.command: tuple[str, ...] = tuple(command)
        self.timeout_s = timeout_s
        self.kill_grace_s = kill_grace_s
        self._queue: asyncio.Queue[_Forward] = asyncio.Queue(maxsize=max_pending)
        self._unavailable = False
        #: Messages :meth:`submit` turned away (queue full or not encodable).
        self.skipped = 0

    @property
    def pending(self) -> int:
        """Messages waiting for their forward (not counting one running)."""
        return self._queue.qsize()

    def submit(self, message: Mapping[str, object]) -> bool:
        """Queue one received message for forwarding; False (and a warning) when the queue is
        full or the message cannot be written as JSON."""
        sms_id = _env_value(message, "id")
        try:
            document = encode_message(message)
        except (TypeError, ValueError) as exc:
            self.skipped += 1
            log.warning("sms_forward_skipped", sms_id=sms_id, reason="unencodable", error=str(exc))
            return False
        item = _Forward(sms_id=sms_id, iccid=_env_value(message, "iccid"), document=document)
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.skipped += 1
            log.warning(
                "sms_forward_skipped", sms_id=sms_id, reason="queue_full", pending=self.pending
            )
            return False
        return True

    async def drain(self) -> None:
        """Return once every message submitted so far has been forwarded (or given up on).
        Only :meth:`run` empties the queue: without it running this waits for it."""
        await self._queue.join()

    async def run(self) -> None:
        """Forward queued messages one at a time, forever (until cancelled)."""
        while True:
            item = await self._queue.get()
            try:
                await self._forward(item)
            finally:
                self._queue.task_done()

    async def _forward(self, item: _Forward) -> None:
        env = dict(os.environ)
        if item.sms_id is not None:
            env["SIMBANK_SMS_ID"] = item.sms_id
        if item.iccid is not None:
            env["SIMBANK_ICCID"] = item.iccid
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            self._unavailable_once(item, exc)
            return
        self._unavailable = False
        try:
            async with asyncio.timeout(self.timeout_s):
                stderr = await _exchange(proc, item.document)
        except TimeoutError:
            await self._stop(proc)
            log.warning(
                "sms_forward_timeout",
                sms_id=item.sms_id,
                pid=proc.pid,
                timeout_s=self.timeout_s,
            )
            return
        except asyncio.CancelledError:
            # Daemon shutdown: the child goes with us, never orphaned.
            await self._stop(proc)
            raise
        except Exception as exc:  # noqa: BLE001 - run() must never raise; the next one runs
            await self._stop(proc)
            log.warning("sms_forward_error", sms_id=item.sms_id, error=repr(exc))
            return
        if proc.returncode:
            log.warning(
                "sms_forward_failed",
                sms_id=item.sms_id,
                returncode=proc.returncode,
                stderr=stderr.decode("utf-8", errors="replace"),
            )
        else:
            log.debug("sms_forwarded", sms_id=item.sms_id)

    def _unavailable_once(self, item: _Forward, exc: OSError) -> None:
        level = log.debug if self._unavailable else log.warning
        self._unavailable = True
        level(
            "sms_forward_unavailable",
            sms_id=item.sms_id,
            program=self.command[0],
            error=exc.strerror or type(exc).__name__,
        )

    async def _stop(self, proc: asyncio.subprocess.Process) -> None:
        """SIGTERM to the command's process group, SIGKILL after the grace; reaped either way.
        A second cancellation while waiting goes straight to SIGKILL."""
        _signal_group(proc, signal.SIGTERM)
        try:
            try:
                await asyncio.wait_for(proc.wait(), self.kill_grace_s)
            except TimeoutError:
                _signal_group(proc, signal.SIGKILL)
                await proc.wait()
        except asyncio.CancelledError:
            _signal_group(proc, signal.SIGKILL)
            raise
        # Anything left of the group (children the command started) goes too.
        _signal_group(proc, signal.SIGKILL)


def _signal_group(proc: asyncio.subprocess.Process, signum: signal.Signals) -> None:
    # The group's id is the command's pid (start_new_session); a pid is not reused while a
    # process group of that id still exists, so this reaches only what the command started.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


async def _exchange(proc: asyncio.subprocess.Process, document: bytes) -> bytes:
    """Write ``document`` to the command's stdin and close it, read its stderr to the end
    (keeping the first :data:`STDERR_KEPT` bytes), wait for its exit."""
    assert proc.stdin is not None
    assert proc.stderr is not None
    stdin, stderr = proc.stdin, proc.stderr

    async def feed() -> None:
        try:
            stdin.write(document)
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # it exited (or closed stdin) without reading: its exit status says the rest
        finally:
            stdin.close()

    async def collect() -> bytes:
        kept = bytearray()
        while chunk := await stderr.read(4096):
            if len(kept) < STDERR_KEPT:
                kept += chunk[: STDERR_KEPT - len(kept)]
        return bytes(kept)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(feed(), name="sms-forward-stdin")
        kept = tg.create_task(collect(), name="sms-forward-stderr")
        tg.create_task(proc.wait(), name="sms-forward-wait")
    return kept.result()
