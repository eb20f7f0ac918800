"""The bank side of calls seen on a modem that simbank did not place
(:class:`simbank.daemon.outbound_calls.OutboundCalls`), against a real ledger, the real
``call/authorize`` and a real runtime; the modems are stand-ins holding what the bank side and
the planner read (the watch's poll count, the action lock, the active slot).

- a call matches an authorization only if it is that booking's first call and goes to the
  booked destination (or the modem lists no number); anything else there is unauthorized;
- after a restart, only a call listed in the modem's first answer may take over an open entry
  the earlier run left; one seen later is booked anew and the old row keeps counting in full;
- the booking and the open list are written in one commit: a daemon that dies right after the
  booking does not book the same call twice after its restart;
- a call that ended before its SIM was known is booked on the slot's last known SIM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from simbank.bank.usage import UsageKind, UsageRecord
from simbank.clock import ScriptedClock
from simbank.config.models import ComplianceConfig, Config, GatewayConfig, PolicyConfig
from simbank.contract import AuthorizeRequest, CompleteRequest, Topics
from simbank.daemon.board import StatusBoard
from simbank.daemon.commands import Handlers
from simbank.daemon.inventory import SimInfo
from simbank.daemon.modem.call_watch import Ended, WatchedCall
from simbank.daemon.outbound_calls import OPEN_KEY, OutboundCalls, unauthorized
from simbank.daemon.runtime import BankRuntime
from simbank.drivers.types import CallDirection
from simbank.store.ledger import Ledger

SIM = "89990100000000001601"
T0 = 1_780_000_000.0
BOOKED, OTHER = "+15550100144", "+15550100199"


class Sink:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def set_retained(self, topic: str, payload: bytes) -> None:
        pass

    def publish(self, topic: str, payload: bytes, *args: Any, **kw: Any) -> None:
        if topic.endswith("/event"):
            self.events.append(json.loads(payload))


@dataclass
class Cfg:
    id: str = "m1"
    device: str = "quectel0"


@dataclass
class Watch:
    polls: int = 3


@dataclass
class Sup:
    cfg: Cfg = field(default_factory=Cfg)
    iccid: str | None = SIM
    in_call: bool = False
    ready: bool = True
    usable_slots: int = 1
    active_slot: int | None = 1
    driver: None = None
    registration: None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    call_watch: Watch = field(default_factory=Watch)


@dataclass
class Gateway:
    rt: BankRuntime
    handlers: Handlers
    outbound: OutboundCalls
    sup: Sup
    sink: Sink

    def calls(self) -> list[UsageRecord]:
        return [r for r in self.rt.ledger.usage_records(SIM, 0) if r.kind is UsageKind.CALL]

    def unauthorized(self) -> list[UsageRecord]:
        return [r for r in self.calls() if unauthorized(r.transaction)]

    def restart(self) -> Gateway:
        """A new run over the same ledger (the watch starts counting its polls again)."""
        self.sup.call_watch = Watch(polls=0)
        return make_gateway(self.rt.ledger, self.sup, self.rt.clock)


def make_gateway(ledger: Ledger, sup: Sup, clock: Any) -> Gateway:
    policy = PolicyConfig(quiet_hours=[], calls_per_hour=10, min_call_gap_s=0)
    config = Config(
        gateway=GatewayConfig(id="gw1", state_dir=Path("/nonexistent")),
        policies={"default": policy},
        compliance=ComplianceConfig(max_call_duration_s=600),
    )
    sink = Sink()
    rt = BankRuntime(config, ledger, StatusBoard(sink, Topics("simbank", "gw1")), clock)
    rt.supervisors = cast(Any, {"m1": sup})
    rt.slots[("m1", 1)] = SIM
    rt.sims[SIM] = SimInfo(SIM, modem="m1", slot=1)
    handlers = Handlers(rt)
    return Gateway(rt, handlers, OutboundCalls(rt, handlers.pbx, handlers.traffic), sup, sink)


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Gateway]:
    ledger = Ledger.open(tmp_path / "state", durable=False)
    try:
        yield make_gateway(ledger, Sup(), ScriptedClock(T0))
    finally:
        ledger.close()


def seen(
    gw: Gateway, number: str | None, call_id: int = 1, *, iccid: str | None = SIM
) -> WatchedCall:
    now = gw.rt.clock.now()
    call = WatchedCall(call_id, CallDirection.MOBILE_ORIGINATED, number, now, iccid=iccid)
    call.active_since = now
    return call


async def authorize(gw: Gateway, number: str = BOOKED) -> str:
    answer = await gw.handlers.pbx.authorize(AuthorizeRequest(number=number))
    return str(answer["booking"])


# -- #7: one call per booking, to its destination ------------------------------------------------


async def test_the_booked_call_matches_once_and_only_to_its_destination(gw: Gateway) -> None:
    await authorize(gw)
    assert len(gw.calls()) == 1  # the authorization's row

    elsewhere = seen(gw, OTHER, 1)  # the PBX dials another number on the booked modem
    gw.outbound.started("m1", elsewhere)
    assert len(gw.unauthorized()) == 1

    booked = seen(gw, BOOKED, 2)
    gw.outbound.started("m1", booked)
    assert len(gw.unauthorized()) == 1  # the booking's own call: nothing more booked

    again = seen(gw, BOOKED, 3)  # a second call on the same authorization
    gw.outbound.started("m1", again)
    assert len(gw.unauthorized()) == 2
    assert len(gw.calls()) == 3


async def test_a_call_whose_number_the_modem_does_not_list_matches(gw: Gateway) -> None:
    await authorize(gw)
    gw.outbound.started("m1", seen(gw, None))
    assert gw.unauthorized() == []
    gw.outbound.started("m1", seen(gw, None, 2))  # one call per booking, number or not
    assert len(gw.unauthorized()) == 1


async def test_a_call_just_after_the_complete_matches_once(gw: Gateway) -> None:
    booking = await authorize(gw)
    await gw.handlers.pbx.complete(
        CompleteRequest(booking=booking, duration_s=5, outcome="completed")
    )
    gw.outbound.started("m1", seen(gw, BOOKED))  # seen a moment after its complete
    assert gw.unauthorized() == []
    gw.outbound.started("m1", seen(gw, BOOKED, 2))
    assert len(gw.unauthorized()) == 1
    clock = cast(ScriptedClock, gw.rt.clock)
    clock.t += 700  # that call's reservation is over: the SIM may call again
    late = await authorize(gw, OTHER)
    await gw.handlers.pbx.complete(CompleteRequest(booking=late, duration_s=0, outcome="failed"))
    clock.t += 100  # long after its complete: nobody's call
    gw.outbound.started("m1", seen(gw, OTHER, 3))
    assert len(gw.unauthorized()) == 2


# -- #8: adopted only from the first answer after a restart --------------------------------------


def booked_then_restarted(gw: Gateway) -> tuple[Gateway, UsageRecord]:
    """Call A to BOOKED is booked unauthorized, then the daemon stops during it."""
    gw.outbound.started("m1", seen(gw, BOOKED))
    [row] = gw.unauthorized()
    return gw.restart(), row


def test_a_call_listed_in_the_first_answer_is_adopted(gw: Gateway) -> None:
    again, row = booked_then_restarted(gw)
    again.sup.call_watch.polls = 1  # the first answer of the new run lists it
    call = seen(again, BOOKED)
    again.outbound.started("m1", call)
    assert [r.id for r in again.unauthorized()] == [row.id]  # not booked twice
    cast(ScriptedClock, again.rt.clock).t += 30
    again.outbound.ended("m1", Ended(call, "completed", 42))
    [done] = again.unauthorized()
    assert done.completed and done.duration_s == 42


def test_a_new_call_after_the_first_answer_does_not_take_over_an_old_entry(gw: Gateway) -> None:
    again, row = booked_then_restarted(gw)
    watch = again.sup.call_watch
    watch.polls = 1  # the first answer lists nothing on m1: call A ended while down
    again.outbound.started("m1", seen(again, OTHER))  # (any other call; a booking of its own)
    watch.polls = 4
    redial = seen(again, BOOKED, 2)  # the technician dials A's number again
    again.outbound.started("m1", redial)
    rows = again.unauthorized()
    assert len(rows) == 3 and rows[0].id == row.id
    again.outbound.ended("m1", Ended(redial, "completed", 60))
    old = next(r for r in again.unauthorized() if r.id == row.id)
    assert not old.completed  # A's row counts in full, never settled by B's 60 s
    stored = again.rt.ledger.get_setting(OPEN_KEY) or {}
    assert row.id not in [e["row"] for e in stored.get("open", [])]  # dropped from the list


def test_a_call_first_reported_by_a_urc_is_never_adopted(gw: Gateway) -> None:
    again, _ = booked_then_restarted(gw)
    again.sup.call_watch.polls = 1
    call = seen(again, BOOKED)
    call.reported_at = 1  # a +CLCC URC spoke of it: a change, not a call already there
    again.outbound.started("m1", call)
    assert len(again.unauthorized()) == 2


# -- #12a: the booking and the open list in one commit -------------------------------------------


class Died(BaseException):
    """The daemon stops here (nothing after it runs)."""


def test_a_daemon_dying_right_after_the_booking_does_not_book_the_call_twice(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    def die(*args: Any, **kw: Any) -> None:
        raise Died

    ledger = gw.rt.ledger
    with monkeypatch.context() as patch:  # its next separate write never happens
        patch.setattr(ledger, "put_setting", die)
        with contextlib.suppress(Died):
            gw.outbound.started("m1", seen(gw, BOOKED))
    [row] = gw.unauthorized()
    again = gw.restart()
    again.sup.call_watch.polls = 1
    again.outbound.started("m1", seen(again, BOOKED))
    assert [r.id for r in again.unauthorized()] == [row.id]


# -- #9: a call that ended before its SIM was known ----------------------------------------------


def test_a_call_never_attributed_is_booked_on_the_slots_last_known_sim(gw: Gateway) -> None:
    gw.sup.iccid = None  # the SIM in the slot is not read back (yet)
    call = seen(gw, OTHER, iccid=None)
    gw.outbound.unattributed("m1", Ended(call, "completed", 33))
    [row] = gw.unauthorized()
    assert row.iccid == SIM and row.completed and row.duration_s == 33
    [event] = [e for e in gw.sink.events if e.get("type") == "unauthorized_call"]
    assert event["iccid"] == SIM and OTHER not in str(event)


def test_a_call_never_attributed_on_an_unknown_slot_is_announced(gw: Gateway) -> None:
    gw.sup.active_slot = None
    gw.outbound.unattributed("m1", Ended(seen(gw, OTHER, iccid=None), "completed", 7))
    assert gw.unauthorized() == []
    [event] = [e for e in gw.sink.events if e.get("type") == "unauthorized_call"]
    assert event["iccid"] is None and event["booking"] is None
