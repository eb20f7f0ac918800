"""Status tables, quota bars, the watch frame and the simbankctl answer texts (pure)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from simbank.contract import ModemState, RegistrationInfo, SignalInfo, SimState, Topics
from simbank.contract import Usage as UsagePayload
from simbank.ctl import output
from simbank.ctl.table import (
    bar,
    event_line,
    modem_rows,
    render_status,
    render_table,
    sim_rows,
    traffic_text,
    usage_text,
)
from simbank.ctl.watch import render_frame

TOPICS = Topics("simbank", "gw1")
ICCID_A, ICCID_B, ICCID_C = "89990100000000002019", "89990100000000002027", "89990100000000002035"
LIMITS = {
    "calls_per_hour": 20,
    "calls_per_day": 100,
    "call_seconds_per_day": 3600,
    "sms_per_day": 50,
}
NOW = datetime(2026, 11, 28, 20, 14, 3, tzinfo=UTC)


def _state() -> dict[str, dict[str, Any]]:
    modem = ModemState(
        id="m1",
        port="/dev/ttyUSB2",
        state="ready",
        model="EC25",
        active_slot=1,
        iccid=ICCID_A,
        registration=RegistrationInfo(stat=1, state="registered_home", operator="TEST"),
        signal=SignalInfo(rssi_dbm=-73, quality=60),
    )
    sims = [
        SimState(
            iccid=ICCID_A,
            modem="m1",
            slot=1,
            state="active",
            policy="default",
            usage=UsagePayload(calls_hour=3, calls_day=10, call_seconds_day=75),
            limits=LIMITS,
        ),
        SimState(iccid=ICCID_B, modem="m1", slot=2, state="resting", limits=LIMITS),
        SimState.model_validate(
            {
                "iccid": ICCID_C,
                "state": "blocked",
                "limits": LIMITS,
                "block": {"reason": "reject_cause", "since": NOW, "evidence": []},
            }
        ),
    ]
    state = {
        TOPICS.bridge_state: {"state": "online"},
        TOPICS.modem("m1"): modem.model_dump(mode="json"),
    }
    state.update({TOPICS.sim(s.iccid): s.model_dump(mode="json") for s in sims})
    state["simbank/gw2/modem/x"] = {"id": "x", "state": "ready"}  # another gateway: not shown
    return state


@pytest.mark.parametrize(
    ("used", "limit", "expected"),
    [
        (0, 20, "[----------]"),
        (3, 20, "[##--------]"),
        (1, 100, "[#---------]"),  # any use shows
        (19, 20, "[#########-]"),  # full only when there is no headroom
        (20, 20, "[##########]"),
        (25, 20, "[##########]"),
        (0, 0, "[##########]"),  # a zero limit allows nothing
        (4, None, "[??????????]"),
    ],
)
def test_bar(used: int, limit: int | None, expected: str) -> None:
    assert bar(used, limit) == expected


def test_bar_width() -> None:
    assert bar(1, 2, 4) == "[##--]"
    assert bar(1, 2, 0) == ""


def test_render_table_pads_columns() -> None:
    text = render_table([("a", "long value"), ("bbbb", "x")], ("K", "V"))
    assert text.splitlines() == ["K     V", "a     long value", "bbbb  x"]
    assert render_table([], ("K", "V")) == "K  V"


def test_modem_rows_keep_their_shape() -> None:
    """``simbankd demo`` reads these positions: state [1], ICCID [4], SIM state [5]."""
    rows = modem_rows(_state(), TOPICS)
    assert rows == [
        ("m1", "ready", "EC25", "1", ICCID_A, "active", "registered_home", "TEST", "-73")
    ]


def test_sim_rows_and_usage_text() -> None:
    rows = sim_rows(_state(), TOPICS)
    assert [r[0] for r in rows] == [ICCID_A, ICCID_B, ICCID_C]  # by modem and slot, unseen last
    assert rows[0][1:5] == ("m1", "1", "active", "default")
    assert rows[0][5] == "calls/h 3/20  calls/d 10/100  s/d 75/3600  sms/d 0/50"
    assert rows[2][1] == "-" and rows[2][6] == "reject_cause"
    assert usage_text({"usage": {"calls_hour": 2}, "limits": {}}).startswith("calls/h 2/-")


def test_render_status_with_sims_and_events() -> None:
    events = [{"type": "sim_rotated", "ts": "2026-11-28T20:14:03+00:00", "modem": "m1"}]
    text = render_status(_state(), TOPICS, events, sims=True)
    assert text.startswith("gateway simbank/gw1  bridge: online  modems ready: 1/1  ")
    assert "SIMs: 1 active, 1 blocked, 1 resting" in text
    assert "\nm1     ready" in text
    assert "ICCID                 MODEM  SLOT  STATE" in text
    assert "  20:14:03  sim_rotated  modem=m1" in text
    assert "POLICY" not in render_status(_state(), TOPICS)


def test_a_degraded_gateway_says_why_nothing_can_be_booked() -> None:
    state = _state()
    state[TOPICS.bridge_state] = {"state": "degraded", "reason": "disk_full"}
    text = render_status(state, TOPICS)
    assert text.startswith(
        "gateway simbank/gw1  bridge: DEGRADED (disk_full: nothing can be booked)  modems"
    )


def test_traffic_text() -> None:
    assert traffic_text({"paused": False, "circuit_open": False}) == "traffic: running"
    paused = {"paused": True, "pause_reason": "maintenance", "circuit_open": True}
    assert traffic_text(paused) == "traffic: PAUSED (maintenance)"
    opened = {"paused": False, "circuit_open": True, "blocks_in_window": 2}
    assert traffic_text(opened) == "traffic: CIRCUIT OPEN (2 blocks in window)"
    text = render_status(_state(), TOPICS, traffic={"paused": False})
    assert text.splitlines()[0].endswith("SIMs: 1 active, 1 blocked, 1 resting  traffic: running")


def test_event_line_counts_evidence_instead_of_dumping_it() -> None:
    event = {"type": "sim_blocked", "ts": "2026-11-28T20:14:03Z", "iccid": ICCID_C,
             "evidence": [{"at": 1}, {"at": 2}]}  # fmt: skip
    assert event_line(event) == f"20:14:03  sim_blocked  iccid={ICCID_C}, evidence=2 item(s)"


def test_watch_frame_plain() -> None:
    events = [{"type": "quota_exhausted", "ts": f"2026-11-28T20:00:{n:02d}Z"} for n in range(12)]
    frame = render_frame(_state(), TOPICS, events, now=NOW)
    lines = frame.splitlines()
    assert lines[0].endswith("20:14:03 UTC")
    assert "\x1b[" not in frame
    assert "[######----] -73 dBm" in frame  # signal quality 60 %
    sim_lines = {line[3:23]: line for line in lines if line[3:7] == "8999"}
    assert sim_lines[ICCID_A].startswith(f"   {ICCID_A}  m1/1  active")
    assert "[#-------] 3/20" in sim_lines[ICCID_A]
    assert sim_lines[ICCID_B].startswith(f"~  {ICCID_B}")  # resting
    assert sim_lines[ICCID_C].startswith(f"!  {ICCID_C}")  # blocked
    assert "reject_cause" in sim_lines[ICCID_C]
    assert "last 10 event(s):" in frame
    assert "20:00:01" not in frame and "20:00:02" in frame and "20:00:11" in frame


def test_watch_frame_colours_only_when_asked() -> None:
    frame = render_frame(
        _state(), TOPICS, [{"type": "sim_blocked", "ts": ""}], now=NOW, colour=True
    )
    blocked = next(line for line in frame.splitlines() if ICCID_C in line and "reject" in line)
    assert blocked.startswith("\x1b[1m\x1b[31m!") and blocked.endswith("\x1b[0m")
    resting = next(line for line in frame.splitlines() if ICCID_B in line and "~" in line)
    assert resting.startswith("\x1b[2m")
    assert frame.endswith("sim_blocked\x1b[0m") and "  \x1b[31m" in frame


@pytest.mark.parametrize(
    ("modem", "table_row", "watch_row"),
    [
        (  # a refused registration, no SIM read, no signal yet
            {"id": "m2", "state": "offline", "registration": {"state": "denied",
             "reject_cause": 15}},
            ("m2", "offline", "-", "-", "-", "-", "denied (#15)", "-", "-"),
            ["m2", "offline", "-", "-", "-", "denied (#15)", "-", "-"],
        ),
        (  # a SIM the bank knows, an empty model name
            {"id": "m3", "state": "ready", "model": "", "active_slot": 2, "iccid": ICCID_B,
             "signal": {"rssi_dbm": -95, "quality": 20}},
            ("m3", "ready", "-", "2", ICCID_B, "resting", "-", "-", "-95"),
            ["m3", "ready", "2", ICCID_B, "resting", "-", "-", "[##--------] -95 dBm"],
        ),
    ],
)  # fmt: skip
def test_status_and_watch_show_a_modem_alike(
    modem: dict[str, Any], table_row: tuple[str, ...], watch_row: list[str]
) -> None:
    """One modem row feeds both views: the status table and the watch frame agree."""
    state = _state()
    state[TOPICS.modem(modem["id"])] = modem
    assert modem_rows(state, TOPICS)[-1] == table_row
    frame = render_frame(state, TOPICS, [], now=NOW)
    line = next(line for line in frame.splitlines() if line.startswith(modem["id"] + " "))
    assert re.split(r"\s{2,}", line) == watch_row


def test_watch_frame_without_anything() -> None:
    frame = render_frame({}, TOPICS, [], now=NOW)
    assert "bridge: unknown  modems ready: 0/0" in frame
    assert "no events yet" in frame


@pytest.mark.parametrize(
    ("command", "data", "expected"),
    [
        (
            "call",
            {"modem": "m1", "iccid": ICCID_A, "outcome": "completed", "duration_s": 4,
             "cause": 16, "cause_text": "Normal call clearing"},
            f"call via m1 (SIM {ICCID_A}): completed, 4 s, cause 16 (Normal call clearing)",
        ),
        ("sms/send", {"modem": "m1", "iccid": None, "reference": 7}, "SMS sent via m1 (no SIM), reference 7"),
        ("sim/rotate", {"modem": "m1", "rotated": True, "slot": 2, "iccid": ICCID_B},
         f"m1 rotated to slot 2 (SIM {ICCID_B})"),
        ("sim/rotate", {"modem": "m1", "rotated": False, "slot": 1, "iccid": ICCID_A, "why": "no other SIM"},
         f"m1 stayed on slot 1 (SIM {ICCID_A}): no other SIM"),
        ("sim/release", {"iccid": ICCID_C, "was": "blocked", "state": "available"},
         f"SIM {ICCID_C} released (was blocked), now available"),
        ("traffic/pause", {"paused": True, "reason": "maintenance"}, "traffic paused: maintenance"),
        ("traffic/resume", {"paused": False, "circuit_open": False}, "traffic resumed (circuit closed)"),
        ("future/thing", {"b": 2, "a": 1}, "a=1, b=2"),
    ],
)  # fmt: skip
def test_answers(command: str, data: dict[str, Any], expected: str) -> None:
    assert output.answer(command, data) == expected


def test_error_line_names_limits_and_when_they_free() -> None:
    line = output.error_line(
        {
            "status": "error",
            "code": "quota_exhausted",
            "error": "calls_per_hour: 20 calls per rolling hour",
            "detail": {"limits": ["calls_per_hour"], "frees_at": "2026-11-28T21:14:03+01:00"},
        }
    )
    assert line == (
        "simbankctl: quota_exhausted: calls_per_hour: 20 calls per rolling hour "
        "(limits: calls_per_hour; frees at 2026-11-28 20:14:03 UTC)"
    )


def test_report_sections() -> None:
    at = NOW.timestamp()
    text = output.report(
        {
            "iccid": ICCID_C,
            "state": "blocked",
            "reason": "reject_cause",
            "since": at,
            "policy": "default",
            "modem": "m2",
            "slot": 1,
            "usage": [
                {"kind": "call", "booked_at": at - 60, "outcome": "completed", "duration_s": 12,
                 "destination": "a1b2c3d4e5f6", "modem": "m2"},
                {"kind": "sms", "booked_at": at - 120, "outcome": None, "destination": None},
            ],
            "evidence": [{"at": NOW.isoformat(), "kind": "reject_cause",
                          "detail": {"reject_cause": 7, "stat": 3}}],
            "audit": [{"at": at, "actor": "operator", "action": "sim_disable", "iccid": ICCID_C}],
            "sim_state": {"usage": {"calls_hour": 1}, "limits": LIMITS},
        }
    )  # fmt: skip
    assert "  state   blocked since 2026-11-28 20:14:03 (reject_cause)" in text
    assert "  usage   calls/h 1/20" in text
    lines = text.splitlines()
    table = lines[lines.index("usage, last 30 days (2 record(s)):") + 1 :]
    assert table[0].split() == ["TIME", "(UTC)", "KIND", "OUTCOME", "DURATION", "DEST", "MODEM"]
    assert table[1].split()[2:] == ["sms", "pending", "-", "-", "-"]  # oldest first
    assert table[2].split()[2:] == ["call", "completed", "12", "s", "a1b2c3d4", "m2"]
    assert "  2026-11-28 20:14:03  reject_cause  reject_cause=7, stat=3" in lines
    assert "  2026-11-28 20:14:03  operator  sim_disable" in lines


def test_report_marks_unauthorized_calls_and_lists_inbound_calls() -> None:
    at = NOW.timestamp()
    text = output.report(
        {
            "iccid": ICCID_C,
            "state": "active",
            "usage": [
                {"kind": "call", "booked_at": at, "outcome": "completed", "duration_s": 40,
                 "destination": "a1b2c3d4e5f6", "modem": "m1", "unauthorized": True},
            ],
            "calls_unauthorized": 1,
            "calls_in": {
                "days": 30, "answered": 1, "missed": 2, "rejected": 0,
                "recent": [{"at": at, "outcome": "missed", "action": "ring",
                            "reason": "policy_ignore", "rings": 3, "caller": "+15*******23",
                            "modem": "m1"}],
            },
        }
    )  # fmt: skip
    lines = text.splitlines()
    table = lines[lines.index("usage, last 30 days (1 record(s)):") + 1 :]
    assert table[1].split()[2:4] == ["call", "(unauthorized)"]
    assert "  1 unauthorized call(s): dialled past simbank, booked as usage" in lines
    assert "inbound calls, last 30 days: 1 answered, 2 missed, 0 rejected" in lines
    assert (
        "  2026-11-28 20:14:03  missed  +15*******23  3 ring(s)  ring (policy_ignore)  m1" in lines
    )


def test_when() -> None:
    assert output.when(None) == "-"
    assert output.when(0) == "1970-01-01 00:00:00"
    assert output.when("not a time") == "not a time"


def test_watch_shows_quality_without_an_rssi_as_the_bar_alone() -> None:
    """+CESQ may give a quality and no RSSI: the frame shows the bar, never "None dBm"."""
    state = _state()
    topic = TOPICS.modem("m1")
    state[topic] = {**state[topic], "signal": {"rssi_dbm": None, "quality": 60}}
    frame = render_frame(state, TOPICS, [], now=NOW)
    assert "None" not in frame
    assert "[######----]" in frame
