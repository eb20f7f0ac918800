"""Calls seen whoever dials them: the ``+CLCC`` URC parser, the watch's pure state machine
(:class:`CallTracker`), and the bank side's matching and booking against a real ledger
(:class:`OutboundCalls`), plus a PBX booking that really completed with outcome ``unknown``
and its whole duration (not an expiry)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from simbank.bank.sim_identity import SimIdentity
from simbank.bank.usage import UsageKind
from simbank.clock import ScriptedClock
from simbank.config.models import ComplianceConfig, Config, GatewayConfig
from simbank.contract import COMMANDS, Topics
from simbank.daemon.board import StatusBoard
from simbank.daemon.commands import Handlers
from simbank.daemon.commands.pbx import OPEN_KEY as PBX_OPEN_KEY
from simbank.daemon.commands.pbx import TXN_PREFIX as PBX_PREFIX
from simbank.daemon.modem import call_watch
from simbank.daemon.modem.call_watch import CallTracker, CallWatch, Ended, WatchedCall
from simbank.daemon.outbound_calls import OPEN_KEY, TXN_PREFIX, OutboundCalls, unauthorized
from simbank.daemon.runtime import BankRuntime
from simbank.drivers.parse.calls import CallReport, parse_clcc_report
from simbank.drivers.types import CallDirection, CallInfo, CallState
from simbank.errors import AtTimeout, CommandError, PortLost, ProtocolGarbage
from simbank.store.ledger import Ledger

ICCID = "89990100000000000031"
OTHER = "89990100000000000049"
T0 = 1_780_000_000.0
NUMBER = "+15550100142"
MO, MT = CallDirection.MOBILE_ORIGINATED, CallDirection.MOBILE_TERMINATED


def info(
    state: CallState, direction: CallDirection = MO, number: str = NUMBER, cid: int = 1
) -> CallInfo:
    return CallInfo(cid, direction, state, 0, False, number, 145)


# -- the URC parser -----------------------------------------------------------------------------


def test_clcc_reports_parse_states_and_the_end() -> None:
    report = parse_clcc_report('+CLCC: 1,0,2,0,0,"+15550100142",145,""')
    assert report.call_id == 1 and report.info is not None
    assert (report.info.direction, report.info.state) == (MO, CallState.DIALING)
    assert parse_clcc_report('+CLCC: 2,0,6,0,0,"+15550100142",145,""') == CallReport(2, None)
    with pytest.raises(ProtocolGarbage):
        parse_clcc_report("+CLCC: 1,0")
    with pytest.raises(ProtocolGarbage):
        parse_clcc_report('+CLCC: 1,0,9,0,0,"1",129')


# -- the state machine --------------------------------------------------------------------------


def test_an_answered_call_is_told_once_and_ends_with_its_talk_time() -> None:
    tracker = CallTracker()
    first = tracker.listed([info(CallState.ALERTING)], 100.0, ICCID)
    assert [c.iccid for c in first.started] == [ICCID] and not first.ended
    assert tracker.live
    assert not tracker.listed([info(CallState.ACTIVE)], 105.0, ICCID).started  # told once
    assert not tracker.listed([info(CallState.ACTIVE)], 110.0, ICCID).ended
    assert not tracker.listed([info(CallState.ACTIVE)], 146.0, ICCID).ended  # polled on
    gone = tracker.listed([], 147.2, ICCID)
    assert [(e.outcome, e.talk_s) for e in gone.ended] == [("completed", 43)]  # 42.2 → 43
    assert not tracker.live


def test_a_call_never_answered_ends_no_answer() -> None:
    tracker = CallTracker()
    tracker.listed([info(CallState.DIALING)], 0.0, ICCID)
    tracker.listed([info(CallState.ALERTING)], 5.0, ICCID)
    ended = tracker.listed([], 10.0, ICCID).ended
    assert [(e.outcome, e.talk_s) for e in ended] == [("no_answer", 0)]


def test_the_sim_unknown_defers_the_call_until_it_is_read_back() -> None:
    tracker = CallTracker()
    assert not tracker.listed([info(CallState.ACTIVE)], 0.0, None).started
    assert tracker.live  # busy all the same
    later = tracker.listed([info(CallState.ACTIVE)], 5.0, ICCID)
    assert [c.iccid for c in later.started] == [ICCID]


def test_the_daemons_own_call_and_incoming_calls_are_never_told() -> None:
    tracker = CallTracker()
    with tracker.own_call(NUMBER):
        own = tracker.listed([info(CallState.DIALING)], 0.0, ICCID)
    assert not own.started and tracker.live
    still = tracker.listed([info(CallState.ACTIVE)], 5.0, ICCID)  # stays its own afterwards
    assert not still.started
    ended = tracker.listed([info(CallState.ACTIVE, MT, cid=2)], 9.0, ICCID)
    assert not ended.started and [e.call.own for e in ended.ended] == [True]
    assert tracker.live  # the incoming call makes the modem busy too


def test_a_poll_answer_older_than_a_urc_never_overrules_it() -> None:
    """A modem may write a URC before the final result of an ``AT+CLCC`` answer it made
    earlier (seen on a SIMCom that chunks its output): that answer must neither end a call the
    URC announced, nor bring back one the URC ended — either would book one call twice."""
    tracker = CallTracker()
    asked = tracker.reports  # AT+CLCC sent: no call yet
    started = tracker.reported(CallReport(1, info(CallState.DIALING)), 0.0, ICCID).started
    assert len(started) == 1
    stale = tracker.listed([], 0.1, ICCID, asked)  # ... its answer comes after the URC
    assert not stale.ended and tracker.live
    fresh = tracker.listed([info(CallState.ACTIVE)], 0.5, ICCID)  # asked after the URC
    assert not fresh.started and not fresh.ended
    asked = tracker.reports
    [ended] = tracker.reported(CallReport(1, None), 5.0, ICCID).ended
    assert ended.outcome == "completed"
    # An answer asked before that end still lists the call: it does not come back.
    again = tracker.listed([info(CallState.ACTIVE)], 5.1, ICCID, asked)
    assert not again.started and not tracker.live
    # A new call with the same id, listed by a later answer, is a new call.
    later = tracker.listed([info(CallState.DIALING)], 9.0, ICCID)
    assert len(later.started) == 1


def test_urcs_update_and_end_a_call_and_a_reused_id_is_a_new_call() -> None:
    tracker = CallTracker()
    started = tracker.reported(CallReport(1, info(CallState.DIALING)), 0.0, ICCID).started
    tracker.reported(CallReport(1, info(CallState.ACTIVE)), 2.0, ICCID)
    ended = tracker.reported(CallReport(1, None), 12.0, ICCID).ended
    assert [(e.call, e.outcome, e.talk_s) for e in ended] == [(started[0], "completed", 10)]
    assert not tracker.reported(CallReport(7, None), 13.0, ICCID).ended  # unknown id: nothing
    tracker.listed([info(CallState.ACTIVE)], 20.0, ICCID)
    swap = tracker.listed([info(CallState.DIALING, number="+15550100143")], 25.0, ICCID)
    assert len(swap.ended) == 1 and len(swap.started) == 1
    assert swap.started[0].number == "+15550100143"


# -- the bank side ------------------------------------------------------------------------------


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def observe_modem(self, state: object) -> None:
        pass

    def observe_sim(self, state: object) -> None:
        pass

    def observe_event(self, event_type: str, fields: dict[str, Any]) -> None:
        self.seen.append((event_type, fields))


class Recorder:
    def set_retained(self, topic: str, payload: bytes) -> None:
        pass

    def publish(self, topic: str, payload: bytes) -> None:
        pass


Rig = tuple[BankRuntime, Handlers, ScriptedClock, Events]


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Rig]:
    config = Config(
        gateway=GatewayConfig(id="gw1", state_dir=tmp_path / "state"),
        compliance=ComplianceConfig(max_call_duration_s=600),
    )
    ledger = Ledger.open(config.gateway.state_dir, durable=False)
    for iccid in (ICCID, OTHER):
        ledger.set_sim_state(iccid, "available", T0)
    board = StatusBoard(Recorder(), Topics("simbank", "gw1"))
    events = Events()
    board.watchers.append(events)  # type: ignore[arg-type]
    clock = ScriptedClock(T0)
    rt = BankRuntime(config, ledger, board, clock)
    try:
        yield rt, Handlers(rt), clock, events
    finally:
        ledger.close()


def seen(number: str | None = NUMBER, iccid: str = ICCID) -> WatchedCall:
    return WatchedCall(1, MO, number, T0, iccid=iccid, told=True)


def calls(rt: BankRuntime, iccid: str = ICCID) -> list[Any]:
    return [r for r in rt.ledger.usage_records(iccid, 0) if r.kind is UsageKind.CALL]


async def test_an_unauthorized_call_is_booked_announced_and_settled(gateway: Rig) -> None:
    rt, h, clock, events = gateway
    outbound = OutboundCalls(rt, h.pbx, h.traffic)
    call = seen()
    outbound.started("m1", call)
    [row] = calls(rt)
    assert unauthorized(row.transaction) and row.transaction.startswith(TXN_PREFIX)
    assert (row.reserved_s, row.completed, row.modem) == (600, False, "m1")
    assert row.destination == rt.ledger.hasher.hash(NUMBER)  # only its keyed hash
    assert rt.usage_of(ICCID)[0].call_seconds_day == 600  # counted in full while open
    [(_, fields)] = [e for e in events.seen if e[0] == "unauthorized_call"]
    assert (fields["modem"], fields["iccid"], fields["reserved_s"]) == ("m1", ICCID, 600)
    assert fields["number"] != NUMBER and fields["number"].endswith("42")  # masked
    assert fields["destination"] == row.destination[:12]
    assert rt.ledger.get_setting(OPEN_KEY)["open"][0]["row"] == row.id  # type: ignore[index]

    clock.t = T0 + 60
    outbound.ended("m1", Ended(call, "completed", 37))
    [row] = calls(rt)
    assert (row.outcome, row.duration_s, row.completed) == ("completed", 37, True)
    assert rt.usage_of(ICCID)[0].call_seconds_day == 37
    assert rt.ledger.get_setting(OPEN_KEY) == {"open": []}
    report = await h.sims.sim_report(COMMANDS["sim/report"].model_validate({"iccid": ICCID}))
    assert report["calls_unauthorized"] == 1
    assert report["usage"][0]["unauthorized"] is True


async def test_a_call_on_an_authorized_modem_is_matched_not_booked(gateway: Rig) -> None:
    rt, h, clock, events = gateway
    row = rt.ledger.book(
        ICCID,
        UsageKind.CALL,
        T0,
        reserved_s=300,
        modem="m1",
        transaction=PBX_PREFIX + "pbxbooking0001",
    )
    entry = {
        "booking": "pbxbooking0001",
        "row": row,
        "modem": "m1",
        "iccid": ICCID,
        "reserved_s": 300,
        "booked_at": T0,
        "expires_at": T0 + 420,
        "destination": None,
    }
    rt.ledger.put_setting(PBX_OPEN_KEY, {"open": [entry]}, T0)
    await h.pbx.restore()
    outbound = OutboundCalls(rt, h.pbx, h.traffic)
    first = seen()
    outbound.started("m1", first)
    other_modem = seen(iccid=OTHER)
    outbound.started("m2", other_modem)  # no authorization there: unauthorized
    assert len(calls(rt)) == 1 and len(calls(rt, OTHER)) == 1
    outbound.ended("m1", Ended(first, "completed", 20))
    assert not calls(rt)[0].completed  # the PBX settles its own booking
    payload = {"booking": "pbxbooking0001", "duration_s": 20, "outcome": "completed"}
    await h.pbx.complete(COMMANDS["call/complete"].model_validate(payload))
    assert len(calls(rt)) == 1
    clock.t = T0 + 100  # long after: a new call there is nobody's
    outbound.started("m1", seen())
    assert len(calls(rt)) == 2
    assert [f["modem"] for t, f in events.seen if t == "unauthorized_call"] == ["m2", "m1"]


async def test_a_call_without_a_number_that_parses_has_no_destination(gateway: Rig) -> None:
    """(A call left open by a restart: tests/unit/test_outbound_calls.py.)"""
    rt, h, _, _ = gateway
    outbound = OutboundCalls(rt, h.pbx, h.traffic)
    outbound.started("m1", seen(number=None))
    outbound.started("m1", seen(number="12"))
    assert [r.destination for r in calls(rt)] == [None, None]


async def test_a_real_complete_with_unknown_and_full_duration_is_not_an_expiry(
    gateway: Rig,
) -> None:
    rt, h, _, _ = gateway
    row = rt.ledger.book(
        ICCID,
        UsageKind.CALL,
        T0,
        reserved_s=300,
        modem="m1",
        transaction=PBX_PREFIX + "realcomplete01",
    )
    rt.ledger.complete(row, T0 + 301, "unknown", 300)  # before booked + 300 + grace
    payload = {"booking": "realcomplete01", "duration_s": 1, "outcome": "completed"}
    answer = await h.pbx.complete(COMMANDS["call/complete"].model_validate(payload))
    assert (answer["outcome"], answer["duration_s"]) == ("unknown", 300)


def test_authorize_may_leave_the_longest_call_to_the_gateway() -> None:
    request = COMMANDS["call/authorize"].model_validate({"number": NUMBER})
    assert request.max_duration_s is None  # type: ignore[attr-defined]


# -- the watch's task ---------------------------------------------------------------------------


class ScriptedDriver:
    """Answers ``AT+CLCC`` from a script: a list of calls, or an error to raise."""

    def __init__(self, script: list[list[CallInfo] | Exception], timeouts: int = 0) -> None:
        self.script = script
        self.asked = 0
        self.channel = SimpleNamespace(consecutive_timeouts=timeouts, idle=True)

    async def list_calls(self) -> list[CallInfo]:
        self.asked += 1
        step = self.script.pop(0) if self.script else []
        if isinstance(step, Exception):
            raise step
        return step


class Told:
    def __init__(self) -> None:
        self.started: list[WatchedCall] = []
        self.ended: list[Ended] = []


async def watch_until(driver: ScriptedDriver, steady: bool = True) -> tuple[Any, Told]:
    sim = SimIdentity()
    sim.read_back(sim.begin_read(), 1, ICCID)
    watch = CallWatch("m1", sim, ScriptedClock(T0, tick=1.0), steady=lambda: steady)
    watch.poll_s = watch.live_poll_s = 0.001
    told = Told()

    class Handler:
        def started(self, modem_id: str, call: WatchedCall) -> None:
            told.started.append(call)

        def ended(self, modem_id: str, ended: Ended) -> None:
            told.ended.append(ended)

    watch.handler = Handler()
    task = asyncio.create_task(watch.run(driver))  # type: ignore[arg-type]
    try:
        for _ in range(40):  # until the script is played (at most ~0.2 s: some never are)
            if not driver.script or task.done():
                break
            await asyncio.sleep(0.005)
        for _ in range(5):
            await asyncio.sleep(0.005)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return watch, told


async def test_garbage_and_timeouts_are_one_failed_poll_each() -> None:
    script: list[list[CallInfo] | Exception] = [
        ProtocolGarbage("+CLCC: ?", raw="+CLCC: ?"),
        [info(CallState.ACTIVE)],
        AtTimeout("no answer"),
        CommandError("SIM busy", code=14),
        [info(CallState.ACTIVE)],
        [],
    ]
    watch, told = await watch_until(ScriptedDriver(script))
    assert [c.iccid for c in told.started] == [ICCID]
    assert [e.outcome for e in told.ended] == ["completed"] and not watch.live


async def test_a_modem_that_refuses_clcc_is_left_alone() -> None:
    refusal = CommandError("ERROR", raw="ERROR")
    driver = ScriptedDriver([refusal, refusal, refusal, [info(CallState.ACTIVE)]])
    watch, told = await watch_until(driver)
    assert driver.asked == 3 and not told.started and watch.polls == 0
    # One learnt from a URC is no longer followed: it ends (charged to its last sighting and
    # one poll), it does not keep the modem busy.
    tracker = CallTracker(grace_s=2.0)
    tracker.reported(CallReport(1, info(CallState.ACTIVE)), 0.0, ICCID)
    assert [(e.outcome, e.talk_s) for e in tracker.forget(30.0).ended] == [("unknown", 2)]
    assert not tracker.live


async def test_nothing_is_asked_during_a_switch_and_a_lost_port_ends_the_watch() -> None:
    driver = ScriptedDriver([[info(CallState.ACTIVE)]])
    _, told = await watch_until(driver, steady=False)
    assert driver.asked == 0 and not told.started
    # A modem that just let a command time out is the liveness checks' until it answers.
    hung = ScriptedDriver([[info(CallState.ACTIVE)]], timeouts=1)
    _, told = await watch_until(hung)
    assert hung.asked == 0 and not told.started
    lost = ScriptedDriver([PortLost("gone"), [info(CallState.ACTIVE)]])
    _, told = await watch_until(lost)
    assert lost.asked == 1 and not told.started


async def test_a_poll_never_queues_behind_a_busy_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command in flight may be about to time out (a list of stored SMS waits 40 s): the
    poll waits a moment for the port, then leaves it to the next round, never queued behind
    it; once the port is idle it asks."""
    monkeypatch.setattr(call_watch, "IDLE_WAIT_S", 0.02)
    busy = ScriptedDriver([[info(CallState.ACTIVE)]])
    busy.channel.idle = False
    _, told = await watch_until(busy)
    assert busy.asked == 0 and not told.started
    idle = ScriptedDriver([[info(CallState.ACTIVE)]])
    _, told = await watch_until(idle)
    assert idle.asked >= 1 and [c.iccid for c in told.started] == [ICCID]
