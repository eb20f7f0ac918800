"""An inbound call the policy rejects while another call is up on the same radio (a PBX's call
the modem is carrying, call waiting): ``AT+CHUP``/``ATH`` would end that call too, so the new
one is left to ring and followed as any other. The driver is scripted (the logic under test is
the decision, not the wire); the wire path is covered by test_inbound_calls."""

from __future__ import annotations

from simbank.bank.inbound import Decision, Verdict
from simbank.bank.sim_identity import SimIdentity
from simbank.clock import SystemClock
from simbank.daemon.modem.ringing import IncomingCall, IncomingCalls, Outcome
from simbank.drivers.parse.incoming import Ring
from simbank.drivers.types import CallDirection, CallInfo, CallState
from simbank.errors import CommandError

ICCID = "89990100000000019015"


class Driver:
    """``AT+CLCC`` answers ``calls`` (or raises ``error``); hang-ups are recorded."""

    def __init__(self, calls: list[CallInfo], error: Exception | None = None) -> None:
        self.calls = calls
        self.error = error
        self.rejected = 0

    async def list_calls(self) -> list[CallInfo]:
        if self.error is not None:
            raise self.error
        return self.calls

    async def reject_call(self) -> str:
        self.rejected += 1
        return "AT+CHUP"


class RejectAll:
    def __init__(self) -> None:
        self.told: list[Outcome] = []

    def decide(self, modem_id: str, call: IncomingCall, *, caller_id: bool) -> Decision:
        return Decision(Verdict.REJECT, "reject_all")

    def finished(
        self, modem_id: str, call: IncomingCall, outcome: Outcome, *, hangup: str | None
    ) -> None:
        self.told.append(outcome)


def call(direction: CallDirection, state: CallState, call_id: int) -> CallInfo:
    return CallInfo(call_id, direction, state, 0, False, "+15550100191")


async def ring_once(driver: Driver) -> tuple[IncomingCalls, RejectAll]:
    sim = SimIdentity()
    sim.read_back(sim.begin_read(), 1, ICCID)
    calls = IncomingCalls("m1", sim, SystemClock())
    handler = RejectAll()
    calls.handler = handler
    calls.on_ring(Ring())
    await calls.tend(driver)  # type: ignore[arg-type]
    return calls, handler


async def test_a_rejected_caller_is_hung_up_when_no_other_call_is_up() -> None:
    alone = Driver([call(CallDirection.MOBILE_TERMINATED, CallState.INCOMING, 1)])
    calls, handler = await ring_once(alone)
    assert alone.rejected == 1 and handler.told == ["rejected"] and calls.call is None


async def test_a_waiting_call_is_not_rejected_over_the_pbxs_live_call() -> None:
    pbx_talking = Driver(
        [
            call(CallDirection.MOBILE_ORIGINATED, CallState.ACTIVE, 1),
            call(CallDirection.MOBILE_TERMINATED, CallState.WAITING, 2),
        ]
    )
    calls, handler = await ring_once(pbx_talking)
    assert pbx_talking.rejected == 0 and handler.told == []
    assert calls.call is not None and calls.call.decision is not None
    assert calls.call.decision.reason == "another_call_up"
    # An answered inbound call up already counts the same.
    answered = Driver(
        [
            call(CallDirection.MOBILE_TERMINATED, CallState.ACTIVE, 1),
            call(CallDirection.MOBILE_TERMINATED, CallState.WAITING, 2),
        ]
    )
    await ring_once(answered)
    assert answered.rejected == 0


async def test_when_clcc_cannot_tell_the_policy_applies() -> None:
    blind = Driver([], error=CommandError("ERROR", raw="ERROR"))
    _, handler = await ring_once(blind)
    assert blind.rejected == 1 and handler.told == ["rejected"]
