"""An SMS text is planned, refused and booked as the segments it goes out as: ``check_sms``
with a count (day and billing month: fits, fits exactly, one over), the refusal's
``segments_needed``/``segments_remaining``, and ``booked(count=n)`` against a real ledger
(n rows committed before the act, every one completed with the act's outcome)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simbank.bank.policy import Limits, check_sms, sms_remaining
from simbank.bank.refusal import plan_refusal
from simbank.bank.rotation import Action, SlotView, plan
from simbank.bank.usage import Usage, UsageKind
from simbank.clock import ScriptedClock
from simbank.config.models import Config, GatewayConfig
from simbank.contract import Topics
from simbank.daemon.board import StatusBoard
from simbank.daemon.commands.access import with_segments
from simbank.daemon.commands.booking import booked
from simbank.daemon.runtime import BankRuntime
from simbank.errors import AtTimeout
from simbank.store.ledger import Ledger

LONDON = ZoneInfo("Europe/London")
NOW = dt.datetime(2026, 3, 20, 12, tzinfo=LONDON).timestamp()
DAY_END = dt.datetime(2026, 3, 21, tzinfo=LONDON).timestamp()
MONTH_END = dt.datetime(2026, 4, 1, tzinfo=LONDON).timestamp()
ICCID = "89990100000000000013"
NUMBER = "+447700900123"


def usage(sms_day: int, sms_month: int | None = None) -> Usage:
    counted = sms_month is not None
    return Usage(
        NOW, NOW - 12 * 3600, DAY_END, sms_day=sms_day,
        month_start=NOW - 19 * 86400 if counted else None,
        month_end=MONTH_END if counted else None, sms_month=sms_month,
    )  # fmt: skip


DAY = Limits(sms_per_day=10)
MONTH = Limits(sms_per_day=100, sms_per_month=20)


def check(limits: Limits, used: Usage, segments: int) -> tuple[str, int, int, float | None] | None:
    refusal = check_sms(limits, used, NOW, LONDON, on_dnc=False, circuit_open=False,
                        segments=segments)  # fmt: skip
    if refusal is None:
        return None
    assert refusal.code == "quota_exhausted"
    assert refusal.segments_needed is not None and refusal.segments_remaining is not None
    return str(refusal.limit), refusal.segments_needed, refusal.segments_remaining, refusal.frees_at


@pytest.mark.parametrize(
    ("limits", "used", "segments", "expected"),
    [
        (DAY, usage(4), 5, None),  # fits
        (DAY, usage(4), 6, None),  # fits exactly: 4 + 6 == 10
        (DAY, usage(4), 7, ("sms_per_day", 7, 6, DAY_END)),  # one over
        (DAY, usage(10), 1, ("sms_per_day", 1, 0, DAY_END)),  # one SMS, as before
        (DAY, usage(0), 11, ("sms_per_day", 11, 10, None)),  # never fits a day: never frees
        (MONTH, usage(0, 14), 6, None),  # fits exactly: 14 + 6 == 20
        (MONTH, usage(0, 15), 6, ("sms_per_month", 6, 5, MONTH_END)),  # one over
        (MONTH, usage(0, 20), 1, ("sms_per_month", 1, 0, MONTH_END)),
        (MONTH, usage(0, 0), 21, ("sms_per_month", 21, 20, None)),
        (replace(MONTH, sms_per_day=5), usage(3, 3), 3, ("sms_per_day", 3, 2, DAY_END)),
        (replace(MONTH, sms_per_day=5), usage(3, 18), 3, ("sms_per_month", 3, 2, MONTH_END)),
        (MONTH, usage(0), 1, ("sms_per_month", 1, 0, None)),  # month not counted: closed
    ],
)
def test_a_text_fits_only_whole(
    limits: Limits, used: Usage, segments: int, expected: tuple[str, int, int, float] | None
) -> None:
    assert check(limits, used, segments) == expected


def test_the_gateway_checks_still_come_first() -> None:
    refusal = check_sms(DAY, usage(10), NOW, LONDON, on_dnc=False, circuit_open=True, segments=3)
    assert refusal is not None and refusal.code == "circuit_open"
    assert refusal.segments_needed is None


@given(
    day=st.integers(0, 30), used_day=st.integers(0, 40), month=st.none() | st.integers(0, 60),
    used_month=st.integers(0, 70), segments=st.integers(1, 40),
)  # fmt: skip
def test_a_text_fits_exactly_when_its_segments_are_left(
    day: int, used_day: int, month: int | None, used_month: int, segments: int
) -> None:
    limits = Limits(sms_per_day=day, sms_per_month=month)
    used = usage(used_day, used_month)
    refusal = check_sms(limits, used, NOW, LONDON, on_dnc=False, circuit_open=False,
                        segments=segments)  # fmt: skip
    assert (refusal is None) == (segments <= sms_remaining(limits, used))
    if refusal is not None:
        assert refusal.segments_remaining == sms_remaining(limits, used)


def test_the_refusal_detail_names_segments() -> None:
    refusal = check_sms(DAY, usage(8), NOW, LONDON, on_dnc=False, circuit_open=False, segments=6)
    assert refusal is not None
    error = refusal.as_error()
    assert (error.reason, error.data["limit"]) == ("quota_exhausted", "sms_per_day")
    assert (error.data["segments_needed"], error.data["segments_remaining"]) == (6, 2)
    assert "6 segment(s) needed, 2 left" in str(error)


def test_rotation_leaves_a_sim_without_room_for_the_text_and_names_the_best_left() -> None:
    slots = [
        SlotView(1, "8900001", "active", usage(7), DAY),  # 3 left
        SlotView(2, "8900002", "available", usage(5), DAY),  # 5 left
    ]
    fits = plan(slots, 1, NOW - 3600, NOW, tz=LONDON, action=Action(UsageKind.SMS, segments=4),
                min_dwell_s=0)  # fmt: skip
    assert (fits.decision, fits.slot) == ("switch", 2)
    none = plan(slots, 1, NOW - 3600, NOW, tz=LONDON, action=Action(UsageKind.SMS, segments=6),
                min_dwell_s=0)  # fmt: skip
    assert none.decision == "none"
    error = with_segments(plan_refusal(none), none.refusals.values())
    assert error.reason == "quota_exhausted"
    assert (error.data["segments_needed"], error.data["segments_remaining"]) == (6, 5)
    assert error.data["limits"] == ["sms_per_day"]


def test_a_refusal_that_is_not_the_sms_quota_gains_no_segments() -> None:
    slots = [SlotView(1, "8900001", "active", usage(0), Limits(quiet_hours=()))]
    none = plan(slots, 1, None, NOW, tz=LONDON, action=Action(UsageKind.SMS, circuit_open=True),
                min_dwell_s=0)  # fmt: skip
    error = with_segments(plan_refusal(none), none.refusals.values())
    assert error.reason == "circuit_open"
    assert "segments_needed" not in error.data


# -- booking every segment ---------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.retained: list[tuple[str, dict[str, object]]] = []

    def set_retained(self, topic: str, payload: bytes) -> None:
        self.retained.append((topic, json.loads(payload)))

    def publish(self, topic: str, payload: bytes, *args: object, **kwargs: object) -> None:
        pass


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[BankRuntime]:
    config = Config(gateway=GatewayConfig(id="gw1", state_dir=tmp_path / "state"))
    ledger = Ledger.open(config.gateway.state_dir, durable=False)
    board = StatusBoard(Recorder(), Topics("simbank", "gw1"))
    try:
        yield BankRuntime(config, ledger, board, ScriptedClock(NOW, tick=1.0))
    finally:
        ledger.close()


async def test_every_segment_is_booked_before_the_act_and_completed_sent(
    runtime: BankRuntime,
) -> None:
    seen: list[tuple[int, bool, int]] = []
    async with booked(runtime, ICCID, UsageKind.SMS, modem="m1", transaction='"t1"',
                      destination=NUMBER, count=6) as booking:  # fmt: skip
        records = runtime.ledger.usage_records(ICCID, 0)
        shown = runtime.board.sims[ICCID].usage.sms_day
        seen.append((len(records), any(r.completed for r in records), shown))
        booking.outcome = "sent"
    assert seen == [(6, False, 6)]  # all committed, and shown, before the act
    records = runtime.ledger.usage_records(ICCID, 0)
    assert len(booking.ids) == 6 and booking.id == booking.ids[0]
    assert sorted(r.id for r in records) == sorted(booking.ids)
    assert {(r.kind, r.outcome, r.duration_s, r.modem, r.transaction) for r in records} == {
        (UsageKind.SMS, "sent", 0, "m1", '"t1"')
    }
    assert all(r.completed and r.destination == runtime.ledger.hasher.hash(NUMBER)
               for r in records)  # fmt: skip
    assert runtime.board.sims[ICCID].usage.sms_day == 6


async def test_every_segment_stays_charged_unknown_when_the_send_fails(
    runtime: BankRuntime,
) -> None:
    with pytest.raises(AtTimeout):
        async with booked(runtime, ICCID, UsageKind.SMS, modem="m1", transaction=None,
                          destination=NUMBER, count=3):  # fmt: skip
            raise AtTimeout("AT+CMGS")
    records = runtime.ledger.usage_records(ICCID, 0)
    assert [(r.outcome, r.completed) for r in records] == [("unknown", True)] * 3
    assert runtime.board.sims[ICCID].usage.sms_day == 3


async def test_a_count_below_one_books_nothing(runtime: BankRuntime) -> None:
    with pytest.raises(ValueError, match="at least one"):
        async with booked(runtime, ICCID, UsageKind.SMS, modem="m1", transaction=None, count=0):
            pass
    assert runtime.ledger.usage_records(ICCID, 0) == []
