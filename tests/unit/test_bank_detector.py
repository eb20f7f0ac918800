"""Block detector (pure): one table per rule, with timestamps, plus hypothesis properties."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simbank.bank.detector import BlockDetector
from simbank.bank.evidence import EPISODE_LIMIT, Observation, Verdict, mask_numbers
from simbank.config.models import DetectionConfig

CFG = DetectionConfig(
    denied_confirm_s=30,
    searching_timeout_s=300,
    searching_min_rssi_dbm=-100,
    barred_cause_21_count=3,
)
OP = "46000"

Step = Callable[[BlockDetector], list[Verdict] | None]
Seen = tuple[float, str, str, str, str | None]  # (t, iccid, state, reason, action)


def reg(
    t: float,
    stat: int,
    iccid: str = "A",
    *,
    domain: str = "cereg",
    cause: int | None = None,
    rssi: int | None = -70,
    op: str | None = OP,
    cause_type: int | None = None,
) -> tuple[float, Step]:
    def step(d: BlockDetector) -> list[Verdict]:
        raw = f"+{domain.upper()}: {stat}" + ("" if cause is None else f",,,,0,{cause}")
        return d.on_registration(
            iccid,
            t,
            domain=domain,
            stat=stat,
            reject_cause=cause,
            rssi_dbm=rssi,
            operator=op,
            raw=raw,
            cause_type=cause_type,
        )

    return t, step


def tick(t: float) -> tuple[float, Step]:
    return t, lambda d: d.tick(t)


def away(t: float, iccid: str = "A") -> tuple[float, Step]:
    return t, lambda d: d.on_switched_away(iccid, t)


def reattached(t: float, iccid: str = "A") -> tuple[float, Step]:
    return t, lambda d: d.on_reattached(iccid, t)


def sim(t: float, status: str, cme: int | None = None, iccid: str = "A") -> tuple[float, Step]:
    return t, lambda d: d.on_sim_status(iccid, t, status=status, cme_code=cme, raw="+CPIN: x")


def ceer(t: float, cause: int, iccid: str = "A") -> tuple[float, Step]:
    return t, lambda d: d.on_reject_cause(iccid, t, cause=cause, source="ceer", raw="+CEER: x")


def call_failed(t: float, cause: int | None, dest: str | None = "h1") -> tuple[float, Step]:
    return t, lambda d: d.on_call_failed("A", t, cause=cause, destination_hash=dest, raw=None)


def call_ok(t: float) -> tuple[float, Step]:
    return t, lambda d: d.on_call_ok("A", t)


def text(t: float, body: str) -> tuple[float, Step]:
    return t, lambda d: d.on_operator_text("A", t, text=body, source="sms")


def run(
    steps: Sequence[tuple[float, Step]], cfg: DetectionConfig = CFG, **kwargs: float
) -> tuple[BlockDetector, list[Seen], list[Verdict]]:
    detector = BlockDetector(cfg, **kwargs)
    seen: list[Seen] = []
    verdicts: list[Verdict] = []
    for t, step in steps:
        for v in step(detector) or []:
            seen.append((t, v.iccid, v.state, v.reason, v.action))
            verdicts.append(v)
    return detector, seen, verdicts


# -- registration denied --------------------------------------------------------------------

DENIED = [
    (
        "confirmed at the edge",
        [reg(0, 3), tick(29.9), tick(30)],
        [(30, "blocked", "registration_denied")],
    ),
    ("registration in time clears it", [reg(0, 3), reg(10, 1), tick(100)], []),
    ("roaming clears it too", [reg(0, 3), reg(29, 5), tick(100)], []),
    ("sms-only registration clears it", [reg(0, 3), reg(29, 6), tick(100)], []),
    (
        "repeated URCs give one verdict",
        [reg(0, 3), reg(10, 3), reg(35, 3), reg(40, 3), tick(50)],
        [(35, "blocked", "registration_denied")],
    ),
    ("a denial that turned to searching waits", [reg(0, 3), reg(5, 2), tick(100)], []),
    (
        "denied again after searching confirms",
        [reg(0, 3), reg(5, 2), tick(100), reg(120, 3)],
        [(120, "blocked", "registration_denied")],
    ),
    (
        "registration restarts the clock",
        [reg(0, 3), reg(20, 1), reg(25, 3), tick(54), tick(55)],
        [(55, "blocked", "registration_denied")],
    ),
    (
        "another domain registered: not a block",
        [reg(0, 1, domain="creg"), reg(1, 3, domain="cereg"), tick(500)],
        [],
    ),
    (
        "the registered domain drops: clock starts then",
        [reg(0, 1, domain="creg"), reg(1, 3), reg(100, 4, domain="creg"), tick(129), tick(130)],
        [(130, "blocked", "registration_denied")],
    ),
    (
        "timers pause while switched away",
        [reg(0, 3), away(10), tick(1000), reg(2000, 3), tick(2019), tick(2020)],
        [(2020, "blocked", "registration_denied")],
    ),
    ("a non-permanent cause only waits", [reg(0, 3, cause=15), tick(29)], []),
]


@pytest.mark.parametrize(("steps", "expected"), [c[1:] for c in DENIED], ids=[c[0] for c in DENIED])
def test_registration_denied(
    steps: list[tuple[float, Step]], expected: list[tuple[float, str, str]]
) -> None:
    _, seen, _ = run(steps)
    assert [(t, state, reason) for t, _, state, reason, _ in seen] == expected


def test_denial_evidence_carries_the_raw_reports_in_time_order() -> None:
    _, _, verdicts = run([reg(0, 2, cause=None), reg(3, 3, cause=15), reg(40, 3, cause=15)])
    (v,) = verdicts
    assert [o.at for o in v.evidence] == [0, 3, 40]
    assert v.evidence[1].kind == "registration"
    assert dict(v.evidence[1].detail) == {
        "domain": "cereg",
        "stat": 3,
        "reject_cause": 15,
        "rssi_dbm": -70,
        "operator": OP,
        "raw": "+CEREG: 3,,,,0,15",
    }
    assert v.evidence[-1].kind == "timeout"
    assert v.evidence[-1].detail["timer"] == "denied_confirm"
    assert v.since == 40
    json.dumps(v.as_dict())  # JSON-ready


# -- permanent reject causes ----------------------------------------------------------------


@pytest.mark.parametrize("cause", [2, 3, 6, 7, 8])
def test_permanent_reject_cause_blocks_at_once(cause: int) -> None:
    d, seen, verdicts = run([reg(100, 3, cause=cause)])
    assert seen == [(100, "A", "blocked", "reject_cause", None)]
    assert verdicts[0].evidence[0].detail["reject_cause"] == cause
    assert d.state_of("A") == "blocked"


REJECTS = [
    ("temporary cause #15", [reg(0, 3, cause=15)], []),
    ("vendor cause type", [reg(0, 3, cause=2, cause_type=1)], []),
    ("stale cause on a registered report", [reg(0, 1, cause=7)], []),
    ("#7 on EPS while CS registered", [reg(0, 1, domain="creg"), reg(1, 3, cause=7)], []),
    ("CEER permanent", [reg(0, 2), ceer(5, 7)], [(5, "blocked", "reject_cause")]),
    ("CEER temporary", [reg(0, 2), ceer(5, 17)], []),
    ("CEER while registered is stale", [reg(0, 1), ceer(5, 2)], []),
]


@pytest.mark.parametrize(
    ("steps", "expected"), [c[1:] for c in REJECTS], ids=[c[0] for c in REJECTS]
)
def test_reject_causes(
    steps: list[tuple[float, Step]], expected: list[tuple[float, str, str]]
) -> None:
    _, seen, _ = run(steps)
    assert [(t, state, reason) for t, _, state, reason, _ in seen] == expected


# -- stuck searching ------------------------------------------------------------------------

PEER = reg(0, 1, "B")
SUSPECT = (300, "A", "suspected", "stuck_searching", "reattach")
SEARCHING = [
    (
        "suspected, re-attach, blocked",
        [PEER, reg(0, 2), tick(299), tick(300), tick(400), reattached(400), tick(549), tick(550)],
        [SUSPECT, (550, "A", "blocked", "stuck_searching", None)],
    ),
    (
        "registers after the re-attach",
        [PEER, reg(0, 2), tick(300), reattached(310), reg(320, 1), tick(1000)],
        [SUSPECT],
    ),
    ("no re-attach reported: no block", [PEER, reg(0, 2), tick(300), tick(5000)], [SUSPECT]),
    ("stat 0 counts as searching", [PEER, reg(0, 0), tick(300)], [SUSPECT]),
    ("no peer of the operator", [reg(0, 2), tick(1000)], []),
    ("peer of another operator", [reg(0, 1, "B", op="46001"), reg(0, 2), tick(1000)], []),
    (
        "operator names compare loosely",
        [reg(0, 1, "B", op="China Mobile"), reg(0, 2, op=" china mobile"), tick(300)],
        [SUSPECT],
    ),
    ("unknown operator", [PEER, reg(0, 2, op=None), tick(1000)], []),
    ("weak signal", [PEER, reg(0, 2, rssi=-105), tick(1000)], []),
    ("signal at the threshold", [PEER, reg(0, 2, rssi=-100), tick(300)], [SUSPECT]),
    ("unknown signal", [PEER, reg(0, 2, rssi=None), tick(1000)], []),
    ("peer registers later", [reg(0, 2), reg(200, 1, "B"), tick(300)], [SUSPECT]),
    (
        "peer registered during the episode, then left",
        [reg(0, 2), reg(100, 1, "B"), away(150, "B"), tick(300)],
        [SUSPECT],
    ),
    ("its own registration is no peer", [reg(0, 1), reg(0, 2), tick(1000)], []),
    ("peer left before the episode", [PEER, away(5, "B"), reg(10, 2), tick(1000)], []),
    (
        "registration resets the timer",
        [PEER, reg(0, 2), reg(200, 1), reg(250, 2), tick(549), tick(550)],
        [(550, "A", "suspected", "stuck_searching", "reattach")],
    ),
    ("absent SIM is not searched for", [PEER, sim(0, "absent"), reg(0, 0), tick(1000)], []),
    (
        "ready again resumes the clock",
        [PEER, reg(0, 2), sim(100, "pin"), sim(500, "ready"), tick(699), tick(700)],
        [(700, "A", "suspected", "stuck_searching", "reattach")],
    ),
    (
        "switching back counts as the re-attach",
        [PEER, reg(0, 2), tick(300), away(310), reg(1000, 2), tick(1149), tick(1150)],
        [SUSPECT, (1150, "A", "blocked", "stuck_searching", None)],
    ),
    (
        "weak signal after the re-attach waits",
        [
            PEER,
            reg(0, 2),
            tick(300),
            reattached(300),
            reg(310, 2, rssi=-110),
            tick(1000),
            reg(1001, 2, rssi=-80),
        ],
        [SUSPECT, (1001, "A", "blocked", "stuck_searching", None)],
    ),
]


@pytest.mark.parametrize(
    ("steps", "expected"), [c[1:] for c in SEARCHING], ids=[c[0] for c in SEARCHING]
)
def test_stuck_searching(steps: list[tuple[float, Step]], expected: list[Seen]) -> None:
    _, seen, _ = run(steps)
    assert seen == expected


def test_stuck_searching_evidence_names_the_peer_and_the_reattach() -> None:
    d, _, verdicts = run([PEER, reg(0, 2), tick(300), reattached(300), tick(450)])
    suspected, blocked = verdicts
    assert [o.kind for o in suspected.evidence] == ["registration", "peer_registered", "timeout"]
    assert dict(suspected.evidence[1].detail) == {"peer": "B", "operator": OP}
    assert [o.kind for o in blocked.evidence] == ["registration", "reattached", "timeout"]
    assert blocked.evidence[-1].detail["timer"] == "reattach_grace"
    assert d.state_of("A") == "blocked"


def test_long_episodes_keep_their_first_and_latest_observations() -> None:
    flapping = [reg(i, 2 if i % 2 else 0) for i in range(100)]
    _, _, verdicts = run([*flapping, reg(100, 3), tick(130)])
    (v,) = verdicts
    assert len(v.evidence) == EPISODE_LIMIT + 1  # the kept reports and the timeout
    assert [o.at for o in v.evidence[:2]] == [0, 1]
    assert [o.at for o in v.evidence[-3:]] == [99, 100, 130]


def test_reattach_grace_is_configurable() -> None:
    _, seen, _ = run(
        [PEER, reg(0, 2), tick(300), reattached(300), tick(359), tick(360)], reattach_grace_s=60
    )
    assert seen[-1] == (360, "A", "blocked", "stuck_searching", None)


def test_state_returns_to_none_when_a_suspected_sim_registers() -> None:
    d, _, _ = run([PEER, reg(0, 2), tick(300)])
    assert d.state_of("A") == "suspected"
    d.on_registration(
        "A", 310, domain="cereg", stat=1, reject_cause=None, rssi_dbm=-70, operator=OP
    )
    assert d.state_of("A") is None


# -- SIM locks ------------------------------------------------------------------------------

LOCKS = [
    ("+CPIN: SIM PUK", [sim(0, "puk")], [(0, "locked", "puk_locked")]),
    ("CME 12 SIM PUK required", [sim(0, "error", 12)], [(0, "locked", "puk_locked")]),
    # CME 18 is SIM PUK2 required: PIN2 features only, never a lock (issue 11 item 4).
    ("CME 18 SIM PUK2 required", [sim(0, "error", 18)], []),
    ("CME 41 network personalisation PUK", [sim(0, "error", 41)], [(0, "locked", "puk_locked")]),
    ("CME 262 SIM blocked", [sim(0, "error", 262)], [(0, "locked", "sim_blocked")]),
    ("PIN is not a lock verdict", [sim(0, "pin"), sim(1, "error", 11)], []),
    ("absent is not a lock verdict", [sim(0, "absent", 10)], []),
    (
        "repeated PUK reports: one verdict",
        [sim(0, "puk"), sim(5, "puk"), sim(9, "error", 12)],
        [(0, "locked", "puk_locked")],
    ),
]


@pytest.mark.parametrize(("steps", "expected"), [c[1:] for c in LOCKS], ids=[c[0] for c in LOCKS])
def test_sim_locks(steps: list[tuple[float, Step]], expected: list[tuple[float, str, str]]) -> None:
    _, seen, _ = run(steps)
    assert [(t, state, reason) for t, _, state, reason, _ in seen] == expected


def test_unknown_sim_status_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="unknown SIM status"):
        BlockDetector(CFG).on_sim_status("A", 0, status="sleepy")


# -- calls barred ---------------------------------------------------------------------------

BARRED = (0, "blocked", "calls_barred")
CALLS = [
    ("cause 8 operator determined barring", [call_failed(0, 8)], [BARRED]),
    ("cause 50 facility not subscribed", [call_failed(0, 50)], [BARRED]),
    ("cause 57 bearer capability not authorized", [call_failed(0, 57)], [BARRED]),
    ("cause 68 ACM >= ACMmax", [call_failed(0, 68)], [BARRED]),
    ("cause 17 user busy", [call_failed(0, 17)], []),
    ("unknown cause", [call_failed(0, None)], []),
    (
        "cause 21 to three destinations",
        [call_failed(0, 21, "h1"), call_failed(5, 21, "h2"), call_failed(9, 21, "h3")],
        [(9, "blocked", "calls_barred")],
    ),
    (
        "cause 21 to two destinations",
        [call_failed(0, 21, "h1"), call_failed(5, 21, "h2"), call_failed(9, 21, "h2")],
        [],
    ),
    (
        "cause 21 without destination hash",
        [call_failed(0, 21, None), call_failed(1, 21, None), call_failed(2, 21, None)],
        [],
    ),
    (
        "a good call in between clears the tally",
        [call_failed(0, 21, "h1"), call_failed(5, 21, "h2"), call_ok(6), call_failed(9, 21, "h3")],
        [],
    ),
    (
        "the day window, inclusive edge",
        [call_failed(0, 21, "h1"), call_failed(5, 21, "h2"), call_failed(86400, 21, "h3")],
        [(86400, "blocked", "calls_barred")],
    ),
    (
        "the day window, just outside",
        [call_failed(0, 21, "h1"), call_failed(5, 21, "h2"), call_failed(86400.5, 21, "h3")],
        [],
    ),
]


@pytest.mark.parametrize(("steps", "expected"), [c[1:] for c in CALLS], ids=[c[0] for c in CALLS])
def test_calls_barred(
    steps: list[tuple[float, Step]], expected: list[tuple[float, str, str]]
) -> None:
    _, seen, _ = run(steps)
    assert [(t, state, reason) for t, _, state, reason, _ in seen] == expected


def test_call_evidence_keeps_hashes_and_masks_numbers() -> None:
    d = BlockDetector(CFG)
    raw = 'NO CARRIER dialing "+86 138-0013-8000" via 10086'
    (v,) = d.on_call_failed("A", 7, cause=8, destination_hash="9f2c", raw=raw)
    detail = v.evidence[0].as_dict()["detail"]
    assert detail == {
        "cause": 8,
        "destination_hash": "9f2c",
        "raw": 'NO CARRIER dialing "<number>" via 10086',
    }
    assert "0013" not in json.dumps(v.as_dict())


def test_cause_21_evidence_lists_each_rejected_call() -> None:
    _, _, verdicts = run(
        [call_failed(0, 21, "h1"), call_failed(5, 21, "h2"), call_failed(9, 21, "h3")]
    )
    assert [o.detail["destination_hash"] for o in verdicts[0].evidence] == ["h1", "h2", "h3"]


# -- operator messages ----------------------------------------------------------------------

TEXTS = [
    ("suspended", "Your service has been SUSPENDED for non-payment.", True),
    ("barred", "Outgoing calls are barred on this line", True),
    ("keyword inside another word", "Your number has been unblocked.", False),
    ("no keyword", "Your balance is 12.30. Recharge at 10086.", False),
]


@pytest.mark.parametrize(("body", "suspected"), [c[1:] for c in TEXTS], ids=[c[0] for c in TEXTS])
def test_operator_text(body: str, suspected: bool) -> None:
    _, seen, _ = run([text(3, body)])
    assert seen == ([(3, "A", "suspected", "operator_message", None)] if suspected else [])


def test_operator_text_once_and_masked() -> None:
    d, seen, verdicts = run([text(1, "Line 13800138000 suspended"), text(2, "blocked, really")])
    assert len(seen) == 1
    assert dict(verdicts[0].evidence[0].detail) == {
        "source": "sms",
        "keyword": "suspended",
        "text": "Line <number> suspended",
    }
    assert d.state_of("A") == "suspected"


def test_operator_text_keywords_without_word_spaces() -> None:
    cfg = DetectionConfig(suspension_keywords=["停机"])
    _, seen, _ = run([text(1, "尊敬的客户您的号码已停机")], cfg)
    assert seen == [(1, "A", "suspected", "operator_message", None)]


def test_text_suspicion_survives_registration_and_escalates() -> None:
    d, seen, _ = run([text(0, "account suspended"), reg(1, 1), reg(2, 3), tick(40)])
    assert [s[3] for s in seen] == ["operator_message", "registration_denied"]
    assert d.state_of("A") == "blocked"


# -- quarantine, release, restore -----------------------------------------------------------


def test_blocked_is_sticky_until_release() -> None:
    d, seen, _ = run(
        [
            reg(0, 3, cause=2),
            reg(5, 3, cause=2),
            reg(6, 1),
            sim(7, "puk"),
            call_failed(8, 8),
            tick(100),
        ]
    )
    assert len(seen) == 1
    assert d.state_of("A") == "blocked"
    d.release("A")
    assert d.state_of("A") is None
    assert [
        v.reason
        for v in d.on_registration(
            "A", 200, domain="creg", stat=3, reject_cause=3, rssi_dbm=None, operator=None
        )
    ] == ["reject_cause"]


def test_release_clears_pending_timers() -> None:
    d = BlockDetector(CFG)
    d.on_registration(
        "A", 0, domain="creg", stat=3, reject_cause=None, rssi_dbm=None, operator=None
    )
    d.release("A")
    assert d.tick(1000) == []


def test_release_forgets_the_sim_as_a_peer() -> None:
    d = BlockDetector(CFG)
    d.on_registration("B", 0, domain="cereg", stat=1, reject_cause=None, rssi_dbm=-60, operator=OP)
    d.release("B")
    d.on_registration("A", 1, domain="cereg", stat=2, reject_cause=None, rssi_dbm=-60, operator=OP)
    assert d.tick(1000) == []


def test_restore_blocked_emits_nothing_more() -> None:
    d = BlockDetector(CFG)
    d.restore("A", "blocked", "registration_denied")
    assert d.state_of("A") == "blocked"
    assert (
        d.on_registration(
            "A", 0, domain="creg", stat=3, reject_cause=2, rssi_dbm=None, operator=None
        )
        == []
    )


def test_restore_stuck_searching_waits_for_registration() -> None:
    d = BlockDetector(CFG)
    d.restore("A", "suspected", "stuck_searching")
    assert d.state_of("A") == "suspected"
    assert d.tick(10_000) == []  # not back in a modem yet: the grace has not started
    d.on_registration(
        "A", 10_000, domain="cereg", stat=2, reject_cause=None, rssi_dbm=-70, operator=OP
    )
    assert [(v.state, v.reason) for v in d.tick(10_150)] == [("blocked", "stuck_searching")]


def test_restore_rejects_unknown_values() -> None:
    with pytest.raises(ValueError, match="cannot restore"):
        BlockDetector(CFG).restore("A", "available", "registration_denied")  # type: ignore[arg-type]


# -- evidence values ------------------------------------------------------------------------


def test_observation_round_trip_and_immutability() -> None:
    obs = Observation(12.5, "registration", {"stat": 3, "raw": "+CREG: 3"})
    again = Observation.from_dict(json.loads(json.dumps(obs.as_dict())))
    assert again == obs
    with pytest.raises(TypeError):
        obs.detail["stat"] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        Observation.from_dict({"at": "yesterday", "kind": "x"})


def test_verdict_needs_evidence_and_orders_it() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Verdict("A", "blocked", "reject_cause", ())
    late, early = Observation(5, "b", {}), Observation(1, "a", {})
    assert Verdict("A", "blocked", "reject_cause", (late, early)).evidence == (early, late)


def test_mask_numbers_keeps_short_codes() -> None:
    assert mask_numbers("call 10086 or +8613800138000") == "call 10086 or <number>"


# -- properties -----------------------------------------------------------------------------

REGISTERED = {1, 5}
SIMS = ["A", "B", "C"]


class Ev(NamedTuple):
    """One generated input: a registration report, a tick or a switch away."""

    kind: Literal["reg", "tick", "away", "reattached"]
    iccid: str
    domain: str = "creg"
    stat: int = 0
    cause: int | None = None
    rssi: int | None = None


event = st.one_of(
    st.builds(
        Ev,
        st.just("reg"),
        st.sampled_from(SIMS),
        st.sampled_from(["creg", "cereg"]),
        st.sampled_from([0, 1, 2, 3, 4, 5]),
        st.sampled_from([None, 15, 2]),
        st.sampled_from([None, -110, -70]),
    ),
    st.builds(Ev, st.just("tick"), st.just("")),
    st.builds(Ev, st.sampled_from(["away", "reattached"]), st.sampled_from(SIMS)),
)
PROP_CFG = DetectionConfig(denied_confirm_s=30, searching_timeout_s=90)
stream = st.lists(st.tuples(st.floats(0, 120, allow_nan=False), event), max_size=80)


def feed(d: BlockDetector, now: float, ev: Ev) -> list[Verdict]:
    if ev.kind == "reg":
        return d.on_registration(
            ev.iccid,
            now,
            domain=ev.domain,
            stat=ev.stat,
            reject_cause=ev.cause,
            rssi_dbm=ev.rssi,
            operator=OP,
        )
    if ev.kind == "tick":
        return d.tick(now)
    if ev.kind == "away":
        d.on_switched_away(ev.iccid, now)
    else:
        d.on_reattached(ev.iccid, now)
    return []


@settings(max_examples=300, deadline=None)
@given(stream)
def test_no_verdict_for_a_sim_registered_throughout_the_window(
    steps: list[tuple[float, Ev]],
) -> None:
    d = BlockDetector(PROP_CFG)
    now = 0.0
    history: dict[str, list[tuple[float, int]]] = {sim: [] for sim in SIMS}
    finals = dict.fromkeys(SIMS, 0)
    for dt, ev in steps:
        now += dt
        if ev.kind == "reg":
            history[ev.iccid].append((now, ev.stat))
        for v in feed(d, now, ev):
            window = [s for t, s in history[v.iccid] if now - t <= PROP_CFG.denied_confirm_s]
            assert not (window and all(s in REGISTERED for s in window)), (v, window)
            assert v.evidence
            assert [o.at for o in v.evidence] == sorted(o.at for o in v.evidence)
            assert v.evidence[-1].at == now
            if v.state != "suspected":
                finals[v.iccid] += 1
    assert all(n <= 1 for n in finals.values())


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 100, allow_nan=False),
            st.sampled_from([1, 5, 6, 7, 9, 10]),
            st.sampled_from(["creg", "cgreg", "cereg", "c5greg"]),
        ),
        max_size=40,
    )
)
def test_a_sim_only_ever_registered_gets_no_verdict(steps: list[tuple[float, int, str]]) -> None:
    d = BlockDetector(DetectionConfig(denied_confirm_s=0, searching_timeout_s=1))
    now = 0.0
    for dt, stat, domain in steps:
        now += dt
        assert (
            d.on_registration(
                "A", now, domain=domain, stat=stat, reject_cause=7, rssi_dbm=-50, operator=OP
            )
            == []
        )
        assert d.tick(now + dt) == []
    assert d.state_of("A") is None
