"""Choosing a gateway of the fleet: who is skipped and why, the order, fair ties, which
refusals send a request on, and the fleet's own refusal; simbankctl's arguments and table."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from simbank.contract import ERROR_CODES
from simbank.ctl.commands import _FIELD, ACTIONS
from simbank.ctl.fleet import render_capacity
from simbank.ctl.main import _parser
from simbank.fleet.choice import (
    NO_ROOM_CODES,
    STALE_AFTER_S,
    GatewaySeen,
    attempt,
    moves_on,
    ranked,
    refusal,
    skip_reason,
)

NOW = 1_780_000_000.0


def seen(
    name: str,
    call: int = 1,
    modems: int = 1,
    *,
    online: bool | None = True,
    age_s: float = 5.0,
    next_free: float | None = None,
    stopped: bool = False,
) -> GatewaySeen:
    g = GatewaySeen(name)
    g.take_state(None if online is None else {"state": "online" if online else "offline"})
    free = None if next_free is None else datetime.fromtimestamp(next_free, UTC).isoformat()
    g.take_capacity(
        {
            "gateway": name,
            "modems_ready": modems,
            "modems_busy": 0,
            "traffic_stopped": stopped,
            "call": {"eligible": call, "modems": modems if call else 0, "next_free_at": free},
            "sms": {"eligible": 0, "modems": 0, "next_free_at": None},
            "computed_at": datetime.fromtimestamp(NOW - age_s, UTC).isoformat(),
        }
    )
    return g


def fixed(*values: float) -> Any:
    it = itertools.cycle(values)
    return lambda: next(it)


def test_skips_what_cannot_be_asked_and_says_why() -> None:
    assert skip_reason(seen("a"), "call", NOW) is None
    assert skip_reason(seen("a", online=False), "call", NOW) == "offline"
    assert skip_reason(seen("a", online=None), "call", NOW) == "no bridge/state"
    stale = skip_reason(seen("a", age_s=STALE_AFTER_S + 1), "call", NOW)
    assert stale is not None and stale.startswith("capacity stale")
    empty = skip_reason(seen("a", call=0, next_free=NOW + 60), "call", NOW)
    assert empty == "no eligible SIM, next free at 2026-05-28T20:27:40+00:00"
    assert skip_reason(seen("a"), "sms", NOW) == "no eligible SIM"
    stopped = skip_reason(seen("a", call=0, stopped=True), "call", NOW)
    assert stopped is not None and stopped.startswith("traffic stopped")
    garbage = GatewaySeen("g")
    garbage.take_state({"state": "online"})
    garbage.take_capacity({"gateway": "g", "call": "lots"})  # does not parse: none
    assert skip_reason(garbage, "call", NOW) == "no capacity published"


def test_most_free_modems_then_most_eligible_sims_first() -> None:
    fleet = [
        seen("a", call=5, modems=1),
        seen("b", call=2, modems=2),
        seen("c", call=3, modems=2),
        seen("d", call=0),
        seen("e", call=9, online=False),
    ]
    assert ranked(fleet, "call", NOW, tiebreak=fixed(0.5)) == ["c", "b", "a"]


def test_ties_take_turns() -> None:
    fleet = [seen("a"), seen("b")]
    assert ranked(fleet, "call", NOW, tiebreak=fixed(0.1, 0.9)) == ["a", "b"]
    assert ranked(fleet, "call", NOW, tiebreak=fixed(0.9, 0.1)) == ["b", "a"]


def test_only_no_room_refusals_move_on() -> None:
    for code in ("no_eligible_sim", "quota_exhausted", "busy", "circuit_open", "quiet_hours"):
        assert code in NO_ROOM_CODES
        assert moves_on({"status": "error", "code": code})
    for code in ("do_not_call", "destination_cap", "validation_error", "restricted_destination"):
        assert not moves_on({"status": "error", "code": code})
    assert not moves_on({"status": "ok", "data": {}})
    assert set(NO_ROOM_CODES) <= set(ERROR_CODES)  # every one a code a gateway answers
    # No answer is not "no room": the gateway may still book (or send) it.
    assert not moves_on({"status": "error", "code": "timeout"})
    # A failed SIM switch refuses an authorize before its booking: the next gateway may try;
    # a call or a text may have reached the modem before it failed: final.
    assert moves_on({"status": "error", "code": "modem_error"}, "call/authorize")
    assert not moves_on({"status": "error", "code": "modem_error"}, "call")
    assert not moves_on({"status": "error", "code": "modem_error"}, "sms/send")


def test_the_fleet_refusal_names_each_gateway_and_the_first_to_free() -> None:
    fleet = [
        seen("a", call=0, next_free=NOW + 600),
        seen("b"),
        seen("c", online=False, call=0, next_free=NOW + 5),  # offline: its time does not count
    ]
    tried = [
        attempt(
            "b",
            {
                "status": "error",
                "code": "quota_exhausted",
                "error": "calls_per_hour",
                "detail": {"frees_at": datetime.fromtimestamp(NOW + 300, UTC).isoformat()},
            },
        )
    ]
    answer = refusal(fleet, tried, "call", NOW)
    assert answer["status"] == "error" and answer["code"] == "quota_exhausted"
    assert answer["detail"]["gateways"] == {
        "a": "no eligible SIM, next free at 2026-05-28T20:36:40+00:00",
        "b": "quota_exhausted: calls_per_hour",
        "c": "offline",
    }
    assert answer["detail"]["frees_at"] == datetime.fromtimestamp(NOW + 300, UTC).isoformat()
    nobody = refusal([seen("a", call=0)], [], "call", NOW)
    assert nobody["code"] == "no_eligible_sim" and nobody["detail"]["frees_at"] is None
    assert refusal([], [], "call", NOW)["error"] == "no simbank gateway seen on the broker"


def test_simbankctl_authorize_sends_max_duration_only_when_given() -> None:
    args = _parser().parse_args(["authorize", "+15550100123"])
    command, attrs = ACTIONS[args.command]
    assert command == "call/authorize"
    made = {_FIELD.get(a, a): getattr(args, a) for a in attrs if getattr(args, a) is not None}
    assert made == {"number": "+15550100123"} and not args.fleet
    args = _parser().parse_args(["authorize", "--fleet", "+15550100123", "--max-duration", "30"])
    assert args.fleet and args.max_duration == 30
    assert _parser().parse_args(["capacity"]).command == "capacity"


def test_the_capacity_table() -> None:
    text = render_capacity([seen("gw2", call=3, modems=2), seen("gw1", call=0)], NOW)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["GATEWAY", "STATE", "CALL"]
    assert lines[1].startswith("gw1") and "no eligible SIM" in lines[1]
    assert lines[2].split()[:3] == ["gw2", "online", "3/2"]
