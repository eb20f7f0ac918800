"""The MQTT contract (DESIGN §5) in one module: topics and every payload as pydantic models.

docs/mqtt-api.md is checked against this module by a test; change both together and keep the
names stable: operators' scripts depend on them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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
    "circuit_opened",
    "circuit_closed",
    "sms_received",
)

ModemStateName = Literal["absent", "probing", "ready", "switching", "unresponsive", "offline"]
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

    def modem(self, modem_id: str) -> str:
        return f"{self.root}/modem/{modem_id}"

    def sim(self, iccid: str) -> str:
        return f"{self.root}/sim/{iccid}"

    def request(self, command: str) -> str:
        return f"{self.request_prefix}{command}"

    def response(self, command: str) -> str:
        return f"{self.response_prefix}{command}"


class BridgeState(_Payload):
    """``bridge/state`` — retained, QoS 1, also the last will."""

    state: Literal["online", "offline"]


class BridgeInfo(_Payload):
    """``bridge/info`` — retained."""

    version: str
    gateway: str
    started_at: datetime
    config: dict[str, Any] = Field(description="config summary without secrets")


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
    registration: RegistrationInfo = Field(default_factory=RegistrationInfo)
    signal: SignalInfo = Field(default_factory=SignalInfo)
    ts: datetime = Field(default_factory=utc_now)


class Usage(_Payload):
    calls_hour: int = 0
    calls_day: int = 0
    call_seconds_day: int = 0
    sms_day: int = 0


class BlockInfo(_Payload):
    reason: str
    since: datetime
    evidence: list[dict[str, Any]] = Field(default_factory=list)


class SimState(_Payload):
    """``sim/<iccid>`` — retained."""

    iccid: str
    modem: str | None = None
    slot: int | None = None
    state: SimStateName
    policy: str | None = None
    usage: Usage = Field(default_factory=Usage)
    limits: dict[str, Any] = Field(default_factory=dict)
    block: BlockInfo | None = None
    ts: datetime = Field(default_factory=utc_now)


class Event(BaseModel):
    """``bridge/event`` — not retained, QoS 1: ``{"type", "ts", ...}``."""

    model_config = ConfigDict(extra="allow")

    type: str
    ts: datetime = Field(default_factory=utc_now)

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()
