"""Call watch review fixes (issue 15), pure or on a scripted channel, no PTY:

- a switch asks ``AT+CLCC`` first and is refused ``busy`` only when a call is listed (a
  refusal, a timeout or garbage lets it go on);
- a call that outlived its port is charged up to its last sighting plus one poll, not the
  outage;
- one ``ERROR`` after answers is one failed poll (the calls stay); only a modem that never
  answered, refusing three times running, is left alone;
- the daemon's own call is the one with the number it dialled, not any outgoing call;
- data and fax entries are not calls; a line of ``AT+CLCC`` that cannot be read (or a call
  listed as just ended) is skipped, not the whole answer;
- a call whose handler failed is told again at the next sighting (and at its end).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from scripted import ERROR, OK, ScriptedChannel

from simbank.at.results import Command
from simbank.bank.sim_identity import SimIdentity
from simbank.clock import ScriptedClock
from simbank.config.models import ModemConfig
from simbank.contract import Topics
from simbank.daemon.board import StatusBoard
from simbank.daemon.modem.call_watch import CallTracker, CallWatch, Ended, WatchedCall
from simbank.daemon.modem.supervisor import ModemSupervisor
from simbank.drivers.generic import GenericDriver
from simbank.drivers.parse.calls import CallReport
from simbank.drivers.registry import driver_by_name
from simbank.drivers.types import CallDirection, CallInfo, CallState
from simbank.errors import AtTimeout, CommandError, Refused

ICCID = "89990100000000000031"
T0 = 1_780_000_000.0
NUMBER = "+15550100142"
PBX_NUMBER = "+15550100143"
MO = CallDirection.MOBILE_ORIGINATED
HANG_GUARD_S = 20.0


def info(
    state: CallState,
    number: str | None = NUMBER,
    cid: int = 1,
    mode: int = 0,
    direction: CallDirection = MO,
) -> CallInfo:
    return CallInfo(cid, direction, state, mode, False, number, 145)


# -- #3: a call that outlived its port --------------------------------------------------------


def test_a_call_gone_during_an_outage_is_charged_to_its_last_sighting() -> None:
    tracker = CallTracker(grace_s=3.0)
    tracker.listed([info(CallState.ACTIVE)], 100.0, ICCID)
    tracker.listed([info(CallState.ACTIVE)], 110.0, ICCID)  # last seen
    # The port is lost; the modem comes back an hour later and lists nothing.
    [ended] = tracker.listed([], 3700.0, ICCID).ended
    assert (ended.outcome, ended.talk_s) == ("completed", 13)  # 10 s seen + one poll, not 3600


def test_a_forgotten_call_is_charged_to_its_last_sighting_too() -> None:
    tracker = CallTracker(grace_s=2.0)
    tracker.reported(CallReport(1, info(CallState.ACTIVE)), 0.0, ICCID)
    [ended] = tracker.forget(3600.0).ended
    assert (ended.outcome, ended.talk_s) == ("unknown", 2)


def test_an_end_heard_as_it_happens_is_charged_in_full() -> None:
    tracker = CallTracker(grace_s=2.0)
    tracker.reported(CallReport(1, info(CallState.ACTIVE)), 0.0, ICCID)
    [ended] = tracker.reported(CallReport(1, None), 30.0, ICCID).ended  # the URC: ended now
    assert ended.talk_s == 30


# -- #6: the daemon's own call -----------------------------------------------------------------


def test_another_outgoing_call_during_the_daemons_own_is_told() -> None:
    """The PBX dialled (unseen: its URCs go to its port); the daemon's call lands meanwhile:
    the PBX's call, listed with another number, is not the daemon's."""
    tracker = CallTracker()
    with tracker.own_call("5550100142"):  # the dial string: national form, no '+'
        first = tracker.listed([info(CallState.ACTIVE, PBX_NUMBER, cid=1)], 1.0, ICCID)
        assert [c.number for c in first.started] == [PBX_NUMBER]
        second = tracker.listed(
            [info(CallState.ACTIVE, PBX_NUMBER, cid=1), info(CallState.DIALING, NUMBER, cid=2)],
            2.0,
            ICCID,
        )
        assert not second.started and tracker.calls[2].own
    ended = tracker.listed([], 9.0, ICCID).ended
    assert sorted((e.call.id, e.call.own) for e in ended) == [(1, False), (2, True)]


def test_an_own_call_listed_without_a_number_is_the_only_new_outgoing_one() -> None:
    tracker = CallTracker()
    with tracker.own_call(NUMBER):
        assert not tracker.listed([info(CallState.DIALING, None)], 1.0, ICCID).started
    assert tracker.calls[1].own
    # Two new outgoing calls without numbers: neither is known to be the daemon's.
    other = CallTracker()
    with other.own_call(NUMBER):
        both = other.listed(
            [info(CallState.DIALING, None, cid=1), info(CallState.DIALING, None, cid=2)],
            1.0,
            ICCID,
        )
    assert len(both.started) == 2


def test_one_dial_owns_one_call() -> None:
    tracker = CallTracker()
    with tracker.own_call(NUMBER):
        tracker.listed([info(CallState.ACTIVE, NUMBER, cid=1)], 1.0, ICCID)
        again = tracker.listed(
            [info(CallState.ACTIVE, NUMBER, cid=1), info(CallState.DIALING, NUMBER, cid=2)],
            2.0,
            ICCID,
        )
    assert [c.id for c in again.started] == [2]


# -- #10: data and fax entries ----------------------------------------------------------------


def test_data_and_fax_entries_are_not_calls() -> None:
    tracker = CallTracker()
    listed = tracker.listed(
        [info(CallState.ACTIVE, None, cid=1, mode=1), info(CallState.ACTIVE, cid=2, mode=2)],
        1.0,
        ICCID,
    )
    assert not listed.started and not tracker.live
    tracker.reported(CallReport(3, info(CallState.ACTIVE, cid=3, mode=1)), 2.0, ICCID)
    assert not tracker.live
    unknown = tracker.listed([info(CallState.ACTIVE, cid=4, mode=9)], 3.0, ICCID)
    assert len(unknown.started) == 1 and tracker.live


# -- #11: odd lines in the answer ---------------------------------------------------------------


async def test_an_unreadable_or_ended_line_is_skipped_not_the_whole_answer() -> None:
    answer = (
        b'\r\n+CLCC: 1,0,6,0,0,"+15550100141",145\r\n'  # SIMCom: just ended
        b'+CLCC: 2,0,7,0,0,"+15550100142",145\r\n'  # a <stat> nobody knows
        b"+CLCC: x\r\n"
        b'+CLCC: 3,0,0,0,0,"+15550100143",145\r\n' + OK
    )
    driver = GenericDriver(ScriptedChannel(lambda _c: answer))  # type: ignore[arg-type]
    calls = await driver.list_calls()
    assert [(c.id, c.number) for c in calls] == [(3, "+15550100143")]


# -- #4 and #12b: the watch's task ---------------------------------------------------------------


class ScriptedDriver:
    """Answers ``AT+CLCC`` from a script: a list of calls, or an error to raise."""

    def __init__(self, script: list[list[CallInfo] | Exception]) -> None:
        self.script = script
        self.asked = 0
        self.channel = SimpleNamespace(consecutive_timeouts=0, idle=True)

    async def list_calls(self) -> list[CallInfo]:
        self.asked += 1
        step = self.script.pop(0) if self.script else []
        if isinstance(step, Exception):
            raise step
        return step


class Handler:
    def __init__(self, fail_starts: int = 0) -> None:
        self.fail_starts = fail_starts
        self.started: list[WatchedCall] = []
        self.ended: list[Ended] = []

    def started_(self, call: WatchedCall) -> None:
        if self.fail_starts:
            self.fail_starts -= 1
            raise RuntimeError("ledger busy")
        self.started.append(call)

    def as_handler(self) -> Any:
        outer = self

        class _H:
            def started(self, modem_id: str, call: WatchedCall) -> None:
                outer.started_(call)

            def ended(self, modem_id: str, ended: Ended) -> None:
                outer.ended.append(ended)

        return _H()


async def play(driver: ScriptedDriver, handler: Handler, extra_polls: int = 3) -> CallWatch:
    sim = SimIdentity()
    sim.read_back(sim.begin_read(), 1, ICCID)
    watch = CallWatch("m1", sim, ScriptedClock(T0, tick=1.0), steady=lambda: True)
    watch.poll_s = watch.live_poll_s = 0.001
    watch.handler = handler.as_handler()
    task = asyncio.create_task(watch.run(driver))  # type: ignore[arg-type]
    try:
        async with asyncio.timeout(HANG_GUARD_S):
            total = len(driver.script) + extra_polls
            while driver.asked < total and not task.done() and not watch.backed_off:
                await asyncio.sleep(0.002)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return watch


async def test_one_error_after_answers_is_one_failed_poll() -> None:
    script: list[list[CallInfo] | Exception] = [
        [info(CallState.ACTIVE)],
        CommandError("ERROR", raw="ERROR"),
        CommandError("operation not supported", code=4),
        [info(CallState.ACTIVE)],
        [],
    ]
    handler = Handler()
    watch = await play(ScriptedDriver(script), handler)
    assert len(handler.started) == 1
    assert [e.outcome for e in handler.ended] == ["completed"]  # once, not "unknown" then again
    assert not watch.live


async def test_a_modem_that_never_answered_is_left_alone_after_three_refusals() -> None:
    refusal = CommandError("ERROR", raw="ERROR")
    driver = ScriptedDriver([refusal, refusal, refusal, [info(CallState.ACTIVE)]])
    handler = Handler()
    watch = await play(driver, handler, extra_polls=0)
    assert watch.backed_off and driver.asked == 3 and not handler.started


async def test_a_call_whose_handler_failed_is_told_again() -> None:
    handler = Handler(fail_starts=1)
    script: list[list[CallInfo] | Exception] = [
        [info(CallState.ACTIVE)],
        [info(CallState.ACTIVE)],
        [],
    ]
    await play(ScriptedDriver(script), handler)
    assert len(handler.started) == 1 and [e.outcome for e in handler.ended] == ["completed"]
    # Failed at every sighting: told at its end, then ended (booked, not lost).
    late = Handler(fail_starts=1)
    await play(ScriptedDriver([[info(CallState.ACTIVE)], []]), late)
    assert len(late.started) == 1 and len(late.ended) == 1


# -- #2: a switch asks first -------------------------------------------------------------------


class _Published:
    def set_retained(self, topic: str, payload: bytes) -> None:
        pass

    def publish(self, topic: str, payload: bytes) -> None:
        pass


def supervisor(tmp_path: Path, clcc: bytes | None) -> tuple[ModemSupervisor, ScriptedChannel]:
    """A supervisor online on a scripted channel: ``AT+CLCC`` answers ``clcc`` (None:
    silence), every other command ``ERROR`` (the switch fails at once past the check)."""

    def answer(command: Command) -> bytes | None:
        return clcc if command.text == "AT+CLCC" else ERROR

    channel = ScriptedChannel(answer)
    cfg = ModemConfig(id="m1", port=str(tmp_path / "tty"), slots=2)
    board = StatusBoard(_Published(), Topics("simbank", "gw"))
    board.add_modem("m1", cfg.port)
    sup = ModemSupervisor(cfg, board, 3600.0)
    sup.driver = driver_by_name("simcom")(channel, slots=2)  # type: ignore[arg-type]
    sup._online = True
    return sup, channel


async def test_a_switch_asks_the_modem_and_a_listed_call_refuses_it(tmp_path: Path) -> None:
    line = b'\r\n+CLCC: 1,0,0,0,0,"+15550100143",145\r\n' + OK
    sup, channel = supervisor(tmp_path, line)
    with pytest.raises(Refused) as refused:
        await sup.switch_to(2, sim_ready_timeout_s=1.0, registration_timeout_s=0.0)
    assert refused.value.reason == "busy" and sup.in_call
    assert channel.texts == ["AT+CLCC"]  # nothing else was sent


@pytest.mark.parametrize("clcc", [OK, ERROR, None], ids=["no_call", "refused", "silent"])
async def test_a_switch_goes_on_unless_a_call_is_listed(tmp_path: Path, clcc: bytes | None) -> None:
    sup, channel = supervisor(tmp_path, clcc)
    with contextlib.suppress(CommandError, AtTimeout):
        await sup.switch_to(2, sim_ready_timeout_s=1.0, registration_timeout_s=0.0)
    assert channel.texts[0] == "AT+CLCC" and len(channel.texts) > 1  # it went on to select
