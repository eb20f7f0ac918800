"""The MQTT contract (DESIGN §5) in one module: topics and every payload as pydantic models.

docs/mqtt-api.md is checked against this module by a test; change both together and keep the
names stable: operators' scripts depend on them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

DEFAULT_BASE = "simbank"

EVENT_TYPES = (
    "sim_blocked",
    "sim_suspected",
    "sim_locked",
    "sim_released",
    "sim_rotated",
    "quota_exhausted",
    "modem_online",
    "modem_offline",
    "registration_changed",
    "modem_failed",
    "circuit_opened",
    "circuit_closed",
    "sms_received",
    "sms_delivered",
    "sms_failed",
    "balance_low",
    "balance_restored",
    "incoming_call",
    "unauthorized_call",
    "storage_degraded",
    "storage_recovered",
    "storage_low",
    "backup_failed",
)

ModemStateName = Literal[
    "absent", "probing", "ready", "switching", "unresponsive", "offline", "failed"
]
SimStateName = Literal[
    "available", "active", "resting", "suspected", "blocked", "locked", "absent", "disabled"
]


def utc_now() -> datetime:
    return datetime.now(UTC)


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


class Topics:
    """Topic names under ``<base>/<gw>``."""

    def __init__(self, base: str, gateway: str) -> None:
        self.root = f"{base}/{gateway}"
        self.bridge_state = f"{self.root}/bridge/state"
        self.bridge_info = f"{self.root}/bridge/info"
        self.bridge_event = f"{self.root}/bridge/event"
        self.request_prefix = f"{self.root}/bridge/request/"
        self.response_prefix = f"{self.root}/bridge/response/"
        #: Retained: what the gateway can do now (fleet clients pick a gateway by it).
        self.capacity = f"{self.root}/capacity"

    def modem(self, modem_id: str) -> str:
        return f"{self.root}/modem/{modem_id}"

    def sim(self, iccid: str) -> str:
        return f"{self.root}/sim/{iccid}"

    def request(self, command: str) -> str:
        return f"{self.request_prefix}{command}"

    def response(self, command: str) -> str:
        return f"{self.response_prefix}{command}"

    def reply(self, client_id: str) -> str:
        """Where a client asks (MQTT 5 Response Topic) for its own copy of each answer."""
        return f"{self.root}/clients/{client_id}/reply"

    def is_reply(self, topic: str) -> bool:
        """Whether ``topic`` is a client's reply topic, ``<base>/<gw>/clients/<id>/reply``: the
        only Response Topic the gateway answers on. Anything else — its own state, another
        gateway, a Home Assistant discovery topic — would let a client that may send requests
        make the gateway publish there."""
        head = f"{self.root}/clients/"
        if not topic.startswith(head) or not topic.endswith("/reply"):
            return False
        client_id = topic[len(head) : -len("/reply")]
        return bool(client_id) and not any(c in client_id for c in "/+#\0")


GatewayStateName = Literal["online", "degraded", "offline"]


class BridgeState(_Payload):
    """``bridge/state`` — retained, QoS 1, also the last will.

    ``degraded``: the daemon is up and hears requests, but its ledger cannot book (``reason``:
    ``disk_full``, ``read_only``, ``io_error``, ``locked``, ``corrupt``, ``unknown``, or
    ``ledger_restored`` while an operator has not confirmed a ledger restored after
    corruption); every request that books is answered ``storage_unavailable``."""

    state: GatewayStateName
    reason: str | None = None
    since: datetime | None = None

    def to_json(self) -> bytes:
        """``{"state": "online"}`` exactly while all is well (clients compare it whole)."""
        return self.model_dump_json(exclude_none=True).encode()


class StorageInfo(_Payload):
    """``bridge/info``'s ``storage``: the ledger's health, space and last backup."""

    state: Literal["ok", "degraded"] = "ok"
    reason: str | None = None
    detail: str | None = None
    since: datetime | None = None
    free_bytes: int | None = None
    low_space: bool = False
    last_backup: str | None = None
    last_backup_at: datetime | None = None
    #: A ledger restored after corruption that an operator has not confirmed yet (moved-aside
    #: file, backup used, rows salvaged); null when there is none.
    recovery: dict[str, Any] | None = None


class BridgeInfo(_Payload):
    """``bridge/info`` — retained."""

    version: str
    gateway: str
    started_at: datetime
    config: dict[str, Any] = Field(description="config summary without secrets")
    #: ``online`` or ``degraded`` (as ``bridge/state``), with the storage's health.
    state: GatewayStateName = "online"
    storage: StorageInfo = Field(default_factory=StorageInfo)


class ActionCapacity(_Payload):
    """One action's room in ``capacity``."""

    #: SIMs on ready modems that the policy lets do the action now.
    eligible: int = Field(ge=0)
    #: Ready modems, not busy, holding at least one such SIM.
    modems: int = Field(ge=0)
    #: When the next SIM refused now may act again; null: none refused, or none frees by itself.
    next_free_at: datetime | None = None


class Capacity(_Payload):
    """``capacity`` — retained: what the gateway can do now, by its own policy."""

    gateway: str
    modems_ready: int = Field(ge=0)
    #: Ready modems whose lock is taken (a call, an open PBX authorization, a switch).
    modems_busy: int = Field(ge=0)
    #: The circuit breaker is open, an operator paused traffic, or the ledger cannot book
    #: (the gateway is ``degraded``): nothing is eligible.
    traffic_stopped: bool = False
    call: ActionCapacity
    sms: ActionCapacity
    computed_at: datetime


class RegistrationInfo(_Payload):
    stat: int | None = None
    state: str | None = None
    act: int | None = None
    operator: str | None = None
    reject_cause: int | None = None


class SignalInfo(_Payload):
    rssi_dbm: int | None = None
    quality: int | None = None


class ModemState(_Payload):
    """``modem/<modem_id>`` — retained."""

    id: str
    port: str
    state: ModemStateName
    model: str | None = None
    manufacturer: str | None = None
    active_slot: int | None = None
    iccid: str | None = None
    #: Why the modem is ``failed`` (the same failure session after session); else null.
    reason: str | None = None
    #: Optional features probed on this modem (``slot_switch``, ``ceer``, ``cesq``, the
    #: registration commands, …): a dialect is a family, and its models differ.
    capabilities: dict[str, bool] = Field(default_factory=dict)
    registration: RegistrationInfo = Field(default_factory=RegistrationInfo)
    signal: SignalInfo = Field(default_factory=SignalInfo)
    ts: datetime = Field(default_factory=utc_now)


class Usage(_Payload):
    calls_hour: int = 0
    calls_day: int = 0
    call_seconds_day: int = 0
    sms_day: int = 0
    #: The billing cycle's counts and bounds, when the SIM's policy sets a monthly limit
    #: (else null: the month is not counted).
    calls_month: int | None = None
    call_seconds_month: int | None = None
    sms_month: int | None = None
    month_start: datetime | None = None
    month_end: datetime | None = None


class EvidenceEntry(_Payload):
    """One observation of block evidence, in the one shape every publication carries: the
    ``sim_blocked``/``sim_suspected``/``sim_locked`` events, the retained ``sim/<iccid>``
    ``block`` and the ``sim/report`` answer. ``{"at": ISO 8601 UTC, "kind", "detail": {...}}``.
    """

    #: When it was observed (UTC). The ledger keeps epoch seconds; see :meth:`observed`.
    at: datetime
    #: ``registration``, ``sim_status``, ``reject_cause``, ``call_failed``, ``sms_refused``,
    #: ``operator_text``, ``reattached``, ``peer_registered`` or ``timeout``.
    kind: str
    #: The raw values (stat, reject cause, cause code, the modem's line, ...).
    detail: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def observed(cls, at: float, kind: str, detail: object) -> EvidenceEntry:
        """The entry of an observation made at ``at`` (epoch seconds, as the detector and the
        ledger keep it). A ``detail`` that is not a mapping (a hand-edited or foreign ledger
        row) is kept under ``"value"`` rather than refused: evidence is shown, never lost."""
        shown = (
            {str(k): v for k, v in detail.items()}
            if isinstance(detail, Mapping)
            else {"value": detail}
        )
        return cls(at=datetime.fromtimestamp(at, UTC), kind=kind, detail=shown)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready (``at`` as its ISO 8601 string), for payloads that are plain mappings."""
        return self.model_dump(mode="json")


class BlockInfo(_Payload):
    reason: str
    since: datetime
    evidence: list[EvidenceEntry] = Field(default_factory=list)


class BalanceInfo(_Payload):
    """The SIM's last prepaid-balance check (``amount`` null: the answer held no amount)."""

    amount: str | None = None
    low: bool = False
    floor: str | None = None
    checked_at: datetime


class SimState(_Payload):
    """``sim/<iccid>`` — retained."""

    iccid: str
    modem: str | None = None
    slot: int | None = None
    state: SimStateName
    #: Why a ``resting`` SIM rests: the limit that stops it (``calls_per_day``,
    #: ``balance_low``, …); null in other states.
    reason: str | None = None
    policy: str | None = None
    usage: Usage = Field(default_factory=Usage)
    limits: dict[str, Any] = Field(default_factory=dict)
    block: BlockInfo | None = None
    #: Received messages not yet acknowledged with ``sms/ack``.
    sms_unread: int = 0
    balance: BalanceInfo | None = None
    #: Oddities of the card that do not stop it being used (``iccid_check_digit``: its ICCID
    #: fails the Luhn check, read identically twice — some issuers' cards do).
    warnings: list[str] = Field(default_factory=list)
    ts: datetime = Field(default_factory=utc_now)


class Event(BaseModel):
    """``bridge/event`` — not retained, QoS 1: ``{"type", "ts", ...}``."""

    model_config = ConfigDict(extra="allow")

    type: str
    ts: datetime = Field(default_factory=utc_now)

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


# -- requests and responses (bridge/request/<command> → bridge/response/<command>) -------------

MAX_REQUEST_BYTES = 16 * 1024
"""Larger request payloads are refused with ``validation_error`` before they are parsed."""

MAX_TRANSACTION_DEPTH = 16
"""Deepest nesting of arrays/objects a request's ``transaction`` may have (it is echoed back,
serialised and kept as a de-duplication key; pydantic cannot serialise past 255 levels)."""


def _transaction_problem(value: Any, depth: int = 0) -> str | None:
    """Why a client's JSON ``transaction`` cannot be echoed back as it is, or None.

    ``depth``: how many arrays/objects enclose ``value``.
    """
    if isinstance(value, str):
        return None if _is_unicode(value) else "holds a lone surrogate (\\ud800-\\udfff)"
    if isinstance(value, dict | list):
        if depth >= MAX_TRANSACTION_DEPTH:
            return f"nested deeper than {MAX_TRANSACTION_DEPTH} levels"
        items: list[Any] = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        return next((p for v in items if (p := _transaction_problem(v, depth + 1))), None)
    return None


def _is_unicode(text: str) -> bool:
    """False for a str holding lone surrogates (JSON ``"\\ud800"`` decodes to one)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def echoable(value: Any, depth: int = 0) -> Any:
    """A client's JSON value made safe to serialise in a response: lone surrogates become
    U+FFFD and an array/object nested deeper than ``MAX_TRANSACTION_DEPTH`` becomes ``null``."""
    if isinstance(value, dict | list) and depth >= MAX_TRANSACTION_DEPTH:
        return None
    if isinstance(value, str):
        return value if _is_unicode(value) else _replace_surrogates(value)
    if isinstance(value, dict):
        return {echoable(str(k), depth): echoable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [echoable(v, depth + 1) for v in value]
    return value


def _replace_surrogates(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text)


def _echoable_text(value: Any) -> Any:
    return _replace_surrogates(value) if isinstance(value, str) else value


_SURROGATE = re.compile("[\ud800-\udfff]")
Echoed = Annotated[Any, BeforeValidator(echoable)]
"""A value from the client, echoed back: never fails to serialise (see ``echoable``)."""

ErrorCode = Literal[
    "invalid_json",
    "validation_error",
    "unknown_command",
    "unknown_modem",
    "unknown_sim",
    "no_eligible_sim",
    "quota_exhausted",
    "quiet_hours",
    "do_not_call",
    "destination_cap",
    "circuit_open",
    "busy",
    "timeout",
    "modem_error",
    "not_permitted",
    "interrupted",
    "restricted_destination",
    "unknown_booking",
    "storage_unavailable",
]
ERROR_CODES: tuple[str, ...] = get_args(ErrorCode)

# A phone number as typed: E.164 ("+442079460123", "+44 20 7946 0123", "0044..."), or a
# national number for [compliance] default_region. Checked for real (libphonenumber) by the
# handler, which answers validation_error or restricted_destination.
_NUMBER = r"^\+?[0-9 ().\-/]{3,32}$"
_NUMBER_DOC = (
    "destination: E.164 with '+' ('+442079460123'; spaces, '()', '.', '-', '/' and a "
    "leading '00' are fine); a national number only with [compliance] default_region"
)
_ICCID = r"^89\d{16,20}[0-9Ff]?$"
_MODEM_ID = r"^[a-z0-9_-]{1,64}$"


class Request(BaseModel):
    """Every request: a JSON object; ``transaction`` (any JSON value) is echoed back and makes a
    repeated request (QoS 1 redelivery) return the first response without acting twice."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    transaction: Any = None

    @field_validator("transaction")
    @classmethod
    def _transaction_echoable(cls, value: Any) -> Any:
        problem = _transaction_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class StatusRequest(Request):
    """``status``: the whole gateway picture."""


class CallRequest(Request):
    """``call``: place a voice call and wait for its end."""

    number: str = Field(pattern=_NUMBER, description=_NUMBER_DOC)
    max_duration_s: int = Field(ge=1, le=86400, description="hang up after this long")
    modem: str | None = Field(default=None, pattern=_MODEM_ID, description="force this modem")


CallOutcome = Literal["completed", "busy", "no_answer", "failed", "unknown"]
CALL_OUTCOMES: tuple[str, ...] = get_args(CallOutcome)
"""How a call ended (``call``'s answer, ``call/complete``'s report)."""

_BOOKING = r"^[A-Za-z0-9_-]{8,64}$"


class AuthorizeRequest(Request):
    """``call/authorize``: check and book a call that a PBX then dials on its own port."""

    number: str = Field(pattern=_NUMBER, description=_NUMBER_DOC)
    max_duration_s: int | None = Field(
        default=None,
        ge=1,
        le=86400,
        description="the longest the PBX may talk: reserved against the quotas "
        "(default: [compliance] max_call_duration_s)",
    )
    modem: str | None = Field(default=None, pattern=_MODEM_ID, description="force this modem")


class CompleteRequest(Request):
    """``call/complete``: settle an authorized call with what really happened."""

    booking: str = Field(pattern=_BOOKING, description="the id ``call/authorize`` answered")
    duration_s: int = Field(ge=0, le=86400, description="seconds of talk, as the PBX billed it")
    outcome: CallOutcome
    cause: int | None = Field(
        default=None, ge=0, le=255, description="the 3GPP 24.008 release cause, if known"
    )


class SmsRequest(Request):
    """``sms/send``: send a text message."""

    number: str = Field(pattern=_NUMBER, description=_NUMBER_DOC)
    text: str = Field(
        min_length=1,
        max_length=1600,
        pattern=r"^[^\x1a\x1b]*$",
        description="the message; Ctrl-Z and ESC (U+001A, U+001B) are refused",
    )
    modem: str | None = Field(default=None, pattern=_MODEM_ID)
    status_report: bool | None = Field(
        default=None, description="ask for a delivery report (default: the policy's choice)"
    )


class SmsListRequest(Request):
    """``sms/list``: a page of the inbox, oldest first."""

    iccid: str | None = Field(default=None, pattern=_ICCID)
    modem: str | None = Field(default=None, pattern=_MODEM_ID)
    since: datetime | None = Field(default=None, description="received at or after (ISO 8601)")
    unread: bool = Field(default=False, description="only messages not acknowledged")
    after: int = Field(default=0, ge=0, description="the ``next`` of the previous page")
    limit: int = Field(default=50, ge=1, le=100)


class SmsAckRequest(Request):
    """``sms/ack``: mark messages read, by id and/or every one of a SIM up to an id."""

    ids: list[int] = Field(default_factory=list, max_length=500)
    iccid: str | None = Field(default=None, pattern=_ICCID)
    up_to: int | None = Field(default=None, ge=0, description="with iccid: every id up to this")

    @model_validator(mode="after")
    def _something(self) -> SmsAckRequest:
        if not self.ids and (self.iccid is None or self.up_to is None):
            raise ValueError("give ids, or iccid and up_to")
        return self


class UssdRequest(Request):
    """``ussd``: run a USSD code on a modem's active SIM."""

    modem: str = Field(pattern=_MODEM_ID)
    code: str = Field(pattern=r"^[*#][*#0-9]{1,30}#$")


class ModemRequest(Request):
    """``sim/rotate``, ``modem/reset``, ``balance/check``."""

    modem: str = Field(pattern=_MODEM_ID)


class SelectRequest(Request):
    """``sim/select``: switch a modem to a slot."""

    modem: str = Field(pattern=_MODEM_ID)
    slot: int = Field(ge=1, le=16)


class IccidRequest(Request):
    """``sim/disable``, ``sim/enable``, ``sim/report``."""

    iccid: str = Field(pattern=_ICCID)


class ReleaseRequest(Request):
    """``sim/release``: end a quarantine after the carrier confirmed the SIM is fine."""

    iccid: str = Field(pattern=_ICCID)
    note: str = Field(min_length=1, max_length=500)


class PauseRequest(Request):
    """``traffic/pause`` / ``traffic/resume``."""

    reason: str | None = Field(default=None, max_length=200)


class BackupRequest(Request):
    """``storage/backup``: a verified backup of the ledger now."""


class ConfirmRequest(Request):
    """``storage/confirm``: the operator accepts a ledger restored after corruption."""

    note: str | None = Field(default=None, max_length=200)


COMMANDS: dict[str, type[Request]] = {
    "status": StatusRequest,
    "call": CallRequest,
    "call/authorize": AuthorizeRequest,
    "call/complete": CompleteRequest,
    "sms/send": SmsRequest,
    "sms/list": SmsListRequest,
    "sms/ack": SmsAckRequest,
    "balance/check": ModemRequest,
    "ussd": UssdRequest,
    "sim/rotate": ModemRequest,
    "sim/select": SelectRequest,
    "sim/disable": IccidRequest,
    "sim/enable": IccidRequest,
    "sim/release": ReleaseRequest,
    "sim/report": IccidRequest,
    "modem/reset": ModemRequest,
    "traffic/pause": PauseRequest,
    "traffic/resume": PauseRequest,
    "storage/backup": BackupRequest,
    "storage/confirm": ConfirmRequest,
}


class OkResponse(_Payload):
    status: Literal["ok"] = "ok"
    data: dict[str, Any] = Field(default_factory=dict)
    transaction: Echoed = None


class ErrorResponse(_Payload):
    status: Literal["error"] = "error"
    code: ErrorCode
    error: Annotated[str, BeforeValidator(_echoable_text)]
    transaction: Echoed = None
    detail: dict[str, Any] | None = Field(
        default=None, description="e.g. which limits refused and when the first frees up"
    )


#: Commands whose answers are only information: never booked, never stored for a retry.
READ_ONLY_COMMANDS = frozenset({"status", "sim/report", "sms/list"})

#: Commands that book usage: the only ones refused while a ledger restored after corruption
#: waits for an operator (``ledger_restored``; every other write works then).
BOOKING_COMMANDS = frozenset({"call", "call/authorize", "sms/send", "ussd", "balance/check"})

#: Commands about the ledger's storage itself: served while the gateway is ``degraded``, and
#: never recorded as transactions in the ledger (doing one twice is harmless).
STORAGE_COMMANDS = frozenset({"storage/backup", "storage/confirm"})


def oversize_refusal(size: int) -> bytes | None:
    """The contract's answer to a request of ``size`` bytes when it is larger than
    ``MAX_REQUEST_BYTES`` (None when it is not): the one place the limit is enforced, by the
    MQTT inbox as a message arrives and by the router before it parses."""
    if size <= MAX_REQUEST_BYTES:
        return None
    return ErrorResponse(
        code="validation_error",
        error=f"payload too large ({size} > {MAX_REQUEST_BYTES} bytes)",
    ).to_json()
