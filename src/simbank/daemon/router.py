"""Request/response over MQTT: decode, validate, de-duplicate, dispatch, answer.

Every request gets exactly one response (also on ``<response topic>`` with its correlation data
when the request carried MQTT 5 properties). Nothing a client sends can stop the bridge: bad
payloads become error responses, a failing handler becomes an error response, and a full queue
answers ``busy`` at once instead of growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from pydantic import ValidationError

from simbank.at.codes import CMS_BARRED_CODES
from simbank.bank.usage import UsageRecord
from simbank.clock import Clock
from simbank.contract import (
    BOOKING_COMMANDS,
    COMMANDS,
    READ_ONLY_COMMANDS,
    STORAGE_COMMANDS,
    ErrorResponse,
    OkResponse,
    Request,
    Topics,
    oversize_refusal,
)
from simbank.errors import (
    AtTimeout,
    CommandError,
    PortLost,
    Refused,
    SimbankError,
    SimStateError,
    StorageUnavailable,
)
from simbank.mqtt import Inbound, LaneName, Publisher

log = structlog.get_logger(__name__)

Handler = Callable[[Request], Awaitable[dict[str, Any]]]

QUEUE_MAX = 256
#: Commands that change nothing: answered afresh every time, their answers not stored, and
#: their ``ok`` answers not kept ahead of other answers under a flood (:func:`answer_lane`).
READ_ONLY = READ_ONLY_COMMANDS
WORKERS = 16


class ResponseStore(Protocol):
    """Where first responses are kept so a repeated transaction is answered, not re-done, and
    where a request is marked started (durably) before it acts, so that a repeat after a
    crash is recognised too (the ledger implements it)."""

    def find_response(self, command: str, transaction: str) -> bytes | None: ...
    def remember_response(
        self, command: str, transaction: str, response: bytes, now: float
    ) -> None: ...
    def start_transaction(self, command: str, transaction: str, now: float) -> None: ...
    def transaction_started(self, command: str, transaction: str) -> float | None: ...
    def bookings_for_transaction(self, transaction: str) -> list[UsageRecord]: ...


def booking_key(transaction: Any) -> str | None:
    """How a request's transaction is written on its ledger bookings (``usage.txn``)."""
    if transaction is None:
        return None
    with contextlib.suppress(TypeError, ValueError):
        return json.dumps(transaction, sort_keys=True)[:200]
    return None


def answer_lane(command: str, status: str) -> LaneName:
    """The outgoing lane of an answer to ``command`` whose ``status`` (``ok`` or the error
    code) is known: ``busy`` refusals are the first dropped under a flood; the ``ok`` answer
    of a command that acted (not read-only) is kept longest, since something was done; every
    other answer waits in between."""
    if status == "busy":
        return "busy"
    if status == "ok" and command not in READ_ONLY:
        return "results"
    return "responses"


#: The kind of ledger booking each command makes (the others book nothing).
_BOOKING_KIND = {"call": "call", "sms/send": "sms", "ussd": "ussd"}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _status_of(response: bytes) -> str:
    data = json.loads(response)
    return str(data.get("code") or data.get("status"))


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "(payload)"
        message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


class RequestRouter:
    """Bounded queue + a fixed pool of workers; ``submit`` never blocks the MQTT reader."""

    def __init__(
        self,
        topics: Topics,
        publisher: Publisher,
        handlers: dict[str, Handler],
        store: ResponseStore | None,
        clock: Clock,
        *,
        workers: int = WORKERS,
        queue_max: int = QUEUE_MAX,
    ) -> None:
        self._topics = topics
        self._pub = publisher
        self._handlers = handlers
        self._store = store
        self._clock = clock
        self._workers = workers
        self._queue: asyncio.Queue[Inbound] = asyncio.Queue(queue_max)
        self._in_flight: dict[tuple[str, str], asyncio.Future[bytes]] = {}
        self.handled = 0
        self.rejected_busy = 0
        #: Called with (command, "ok" or the error code) for every answer: request metrics.
        self.on_response: Callable[[str, str], None] | None = None
        #: While the ledger cannot book (the gateway is ``degraded``): (cause, why, only those
        #: that book). Every request but the read-only and storage ones (or, with the last
        #: True, every request that books) is then answered at once, untried.
        self.refusing: Callable[[], tuple[str, str, bool] | None] = lambda: None

    async def submit(self, inbound: Inbound) -> None:
        """The bridge's inbound handler: queue it, or answer ``busy`` right away."""
        try:
            self._queue.put_nowait(inbound)
        except asyncio.QueueFull:
            self.rejected_busy += 1
            command = inbound.topic.removeprefix(self._topics.request_prefix)
            busy = ErrorResponse(
                code="busy", error="too many requests in progress; try again", transaction=None
            ).to_json()
            self._reply(inbound, command, busy, "busy")

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for n in range(self._workers):
                tg.create_task(self._work(), name=f"request-worker-{n}")

    async def _work(self) -> None:
        while True:
            inbound = await self._queue.get()
            command = inbound.topic.removeprefix(self._topics.request_prefix)
            try:
                response = await self.process(command, inbound.payload)
            except Exception:  # the last line of defence: a bug answers, it does not kill
                log.exception("request_crashed", command=command)
                response = ErrorResponse(code="modem_error", error="internal error").to_json()
            self.handled += 1
            status = _status_of(response)
            if self.on_response is not None:
                self.on_response(command, status)
            self._reply(inbound, command, response, answer_lane(command, status))

    def _reply(self, inbound: Inbound, command: str, response: bytes, lane: LaneName) -> None:
        """Publish ``response`` on the command's response topic and, when the request named
        one (MQTT 5), on its Response Topic with its correlation data: both in ``lane``. Only a
        client's reply topic (``Topics.is_reply``) is answered on; another is logged, unused."""
        self._pub.publish(self._topics.response(command), response, lane=lane)
        if not inbound.response_topic:
            return
        if self._topics.is_reply(inbound.response_topic):
            self._pub.publish(inbound.response_topic, response, inbound.correlation_data, lane=lane)
        else:
            log.warning("response_topic_refused", command=command)

    async def process(self, command: str, payload: bytes) -> bytes:
        """Turn one request payload into its response payload."""
        transaction: Any = None
        if (too_large := oversize_refusal(len(payload))) is not None:
            return too_large
        try:
            data = json.loads(payload)
        except (ValueError, UnicodeDecodeError, RecursionError):
            # RecursionError: ~1000 nested arrays fit in 2 KB (found by fuzz/fuzz_requests.py).
            return self._error("invalid_json", "payload is not valid JSON (or nested too deeply)")
        if not isinstance(data, dict):
            return self._error("validation_error", "payload must be a JSON object")
        transaction = data.get("transaction")
        model = COMMANDS.get(command)
        if model is None or command not in self._handlers:
            return self._error("unknown_command", f"unknown command {command!r}", transaction)
        try:
            request = model.model_validate(data)
        except ValidationError as exc:
            return self._error("validation_error", _validation_message(exc), transaction)
        if command not in READ_ONLY and command not in STORAGE_COMMANDS:
            refusing = self.refusing()
            if refusing is not None and (not refusing[2] or command in BOOKING_COMMANDS):
                cause, why, _ = refusing
                return self._storage_unavailable(
                    command, StorageUnavailable(why, cause=cause), transaction
                )
        if transaction is None or command in READ_ONLY or command in STORAGE_COMMANDS:
            # Nothing to do twice, and a status answer is large: not kept in the ledger.
            return await self._execute(command, request)
        key = (command, json.dumps(transaction, sort_keys=True, separators=(",", ":")))
        try:
            return await self._once(command, request, key, transaction)
        except StorageUnavailable as exc:
            # The first answer cannot be looked up or the start recorded: nothing is done (a
            # retry once the storage is back finds no trace of this one).
            return self._storage_unavailable(command, exc, transaction)

    async def _once(
        self, command: str, request: Request, key: tuple[str, str], transaction: Any
    ) -> bytes:
        """A request with a ``transaction``: answered once, however often it comes."""
        if self._store is not None and (first := self._store.find_response(*key)) is not None:
            log.debug("request_repeated", command=command)  # a client retrying is routine
            return first
        pending = self._in_flight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        if self._store is not None:
            started = self._store.transaction_started(*key)
            if started is not None:
                # Started in an earlier life of the daemon and never answered: the crash
                # interrupted it. Whatever it did stays done; it is not done again.
                response = self._interrupted(command, request, started)
                self._store.remember_response(*key, response, self._clock.now())
                log.warning("request_interrupted_not_repeated", command=command)
                return response
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            if self._store is not None:
                self._store.start_transaction(*key, self._clock.now())
            try:
                response = await self._execute(command, request)
            except Exception:  # a bug answers (once, stored), it does not kill the worker
                log.exception("request_crashed", command=command)
                response = self._error("modem_error", "internal error", transaction)
            if self._store is not None:
                try:
                    self._store.remember_response(*key, response, self._clock.now())
                except StorageUnavailable as exc:
                    # Answered all the same; a repeat finds the start only: "interrupted".
                    log.warning("response_not_kept", command=command, error=str(exc))
            future.set_result(response)
            return response
        finally:
            if not future.done():
                future.cancel()
            del self._in_flight[key]

    def _interrupted(self, command: str, request: Request, started: float) -> bytes:
        """The answer to a request a restart interrupted, with what the ledger knows of it."""
        assert self._store is not None
        key = booking_key(request.transaction)
        kind = _BOOKING_KIND.get(command)
        bookings = [
            {
                "id": r.id,
                "kind": str(r.kind),
                "iccid": r.iccid,
                "modem": r.modem,
                "booked_at": _iso(r.booked_at),
                "outcome": r.outcome,
                "duration_s": r.duration_s if r.completed else None,
                # No outcome: the action may have happened; it counts against the quota in
                # full (a call its whole reserved time).
                "charged": "as completed" if r.completed else "in full",
                "charged_s": r.charged_s if r.kind == "call" else None,
            }
            for r in (self._store.bookings_for_transaction(key) if key is not None else [])
            if kind is None or r.kind == kind
        ]
        return ErrorResponse.model_validate(
            {
                "code": "interrupted",
                "error": "the daemon restarted while this request ran; it was not repeated",
                "transaction": request.transaction,
                "detail": {"started_at": _iso(started), "bookings": bookings},
            }
        ).to_json()

    async def _execute(self, command: str, request: Request) -> bytes:
        transaction = request.transaction
        try:
            data = await self._handlers[command](request)
        except Refused as exc:
            detail = {k: v for k, v in exc.data.items() if v not in (None, [], {})}
            frees = detail.get("frees_at")
            if isinstance(frees, int | float):
                detail["frees_at"] = datetime.fromtimestamp(frees, UTC).isoformat()
            return ErrorResponse.model_validate(
                {
                    "code": exc.reason,
                    "error": str(exc),
                    "transaction": transaction,
                    "detail": detail or None,
                }
            ).to_json()
        except StorageUnavailable as exc:
            return self._storage_unavailable(command, exc, transaction)
        except AtTimeout as exc:
            return self._error("timeout", f"the modem did not answer: {exc}", transaction)
        except CommandError as exc:
            return self._error("modem_error", str(exc), transaction, command_detail(exc))
        except (PortLost, SimbankError) as exc:
            return self._error("modem_error", str(exc), transaction)
        return OkResponse(data=data, transaction=transaction).to_json()

    def _storage_unavailable(
        self, command: str, exc: StorageUnavailable, transaction: Any
    ) -> bytes:
        """Nothing can be booked (or read back) now: answered at once, nothing done."""
        log.warning("storage_unavailable", command=command, error=str(exc), cause=exc.cause)
        return self._error(
            "storage_unavailable",
            f"the gateway cannot record it now, so it does nothing: {exc}",
            transaction,
            {"cause": exc.cause},
        )

    @staticmethod
    def _error(
        code: str, message: str, transaction: Any = None, detail: dict[str, Any] | None = None
    ) -> bytes:
        return ErrorResponse.model_validate(
            {"code": code, "error": message, "transaction": transaction, "detail": detail}
        ).to_json()


def command_detail(exc: CommandError) -> dict[str, Any] | None:
    """What the modem's refusal means, from the named sets of ``simbank.at.codes``: the
    ``cme_error``/``cms_error`` code, ``retryable`` (the same request may succeed after a
    pause), ``sim_problem`` (the SIM refused: it is being read again) and ``barred`` (the
    network refused this SIM's SMS in a way that is block evidence: ``CMS_BARRED_CODES``)."""
    if exc.code is None:
        return None
    detail: dict[str, Any] = {
        "cms_error" if exc.sms else "cme_error": exc.code,
        "retryable": exc.retryable,
    }
    if isinstance(exc, SimStateError):
        detail["sim_problem"] = exc.problem
    if exc.sms and exc.code in CMS_BARRED_CODES:
        detail["barred"] = True
    return detail
