"""The demo's live screen, from retained state and heard events."""

from __future__ import annotations

from simbank.contract import Topics
from simbank.demo.events import Heard
from simbank.demo.summary import Tally
from simbank.demo.view import at_hourly_limit, event_text, screen

T = Topics("simbank", "demo")
NINE = 1_780_000_000.0 - 1_780_000_000.0 % 86400 + 9 * 3600
STATE = {
    T.modem("m1"): {"id": "m1", "state": "ready", "active_slot": 2, "iccid": "8999B"},
    T.sim("8999A"): {
        "iccid": "8999A", "modem": "m1", "slot": 1, "state": "blocked",
        "usage": {"calls_hour": 4, "calls_day": 5}, "limits": {"calls_per_hour": 4,
        "calls_per_day": 24, "sms_per_day": 6}, "block": {"reason": "reject_cause"},
    },
    T.sim("8999B"): {
        "iccid": "8999B", "modem": "m1", "slot": 2, "state": "active",
        "usage": {"calls_hour": 1, "calls_day": 1, "sms_day": 2},
        "limits": {"calls_per_hour": 4, "calls_per_day": 24, "sms_per_day": 6},
    },
}  # fmt: skip


def test_screen_shows_modems_sims_with_quota_bars_and_news() -> None:
    tally = Tally()
    tally.record("call", {"status": "ok", "data": {"outcome": "completed"}})
    heard = [
        Heard(NINE, {"type": "registration_changed", "modem": "m1"}),
        Heard(NINE, {"type": "quota_exhausted", "iccid": "8999A"}),
        Heard(NINE + 60, {"type": "sim_blocked", "iccid": "8999A", "modem": "m1",
                          "reason": "reject_cause", "evidence": [{}, {}]}),
        Heard(NINE + 120, {"type": "sim_rotated", "modem": "m1", "slot": 2, "iccid": "8999B",
                           "previous": "8999A", "actor": "rotation", "reason": "blocked"}),
    ]  # fmt: skip
    text = screen(STATE, T, title="title", tally=tally, heard=heard)
    assert text.startswith("title\ngateway simbank/demo")
    assert "calls served 1 (completed 1)" in text
    assert "SIMs at their hourly limit 1  sim switches 1  blocks found 1" in text
    assert "\nm1     ready" in text
    assert "8999A  m1     1     blocked  [######] 4/4" in text
    assert "[##----] 1/4" in text and "2/6" in text and "reject_cause" in text
    feed = text.split("events:\n", 1)[1]
    assert "registration_changed" not in feed and "quota_exhausted" not in feed
    assert "09:01  sim_blocked      modem=m1 iccid=8999A reason=reject_cause evidence=2" in feed
    assert feed.rstrip().endswith(
        "09:02  sim_rotated      modem=m1 slot=2 iccid=8999B previous=8999A reason=blocked "
        "actor=rotation"
    )


def test_hourly_limit_and_event_text() -> None:
    assert at_hourly_limit(STATE, T) == 1
    assert at_hourly_limit({}, T) == 0
    assert event_text(Heard(NINE, {"type": "circuit_opened", "blocks": 3})) == (
        "09:00  circuit_opened   blocks=3"
    )
