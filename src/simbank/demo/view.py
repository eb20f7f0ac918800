"""The demo's live screen: the day's clock and counters, the modems, the SIMs with their quota
bars, and the events as they come. Pure: text from the retained state and what was heard."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from simbank.contract import Topics
from simbank.ctl.table import bar, cell, header, modem_rows, render_table, sims_of
from simbank.demo.events import Heard
from simbank.demo.summary import Tally, clock_text

#: Events too frequent to be news in the feed: the modem table shows registration, the SIM
#: table each quota (``quota_exhausted`` follows every call while the SIM keeps its gap).
QUIET_EVENTS = frozenset({"registration_changed", "quota_exhausted"})
SIM_COLUMNS = ("SIM", "MODEM", "SLOT", "STATE", "CALLS/HOUR", "CALLS/DAY", "SMS/DAY", "WHY")


def gauge(
    usage: Mapping[str, Any], limits: Mapping[str, Any], used_key: str, limit_key: str
) -> str:
    """``[##----] 2/4``: a quota's use against its limit."""
    used = int(usage.get(used_key) or 0)
    limit = limits.get(limit_key)
    limit = limit if isinstance(limit, int) else None
    return f"{bar(used, limit, 6)} {used}/{cell(limit)}"


def sim_table(state: Mapping[str, Mapping[str, Any]], topics: Topics) -> str:
    """One row per SIM: where it is, its state and its quota use against the policy."""
    rows: list[tuple[str, ...]] = []
    for sim in sims_of(state, topics):
        usage = sim.get("usage") or {}
        limits = sim.get("limits") or {}
        block = sim.get("block") or {}

        rows.append(
            (
                cell(sim.get("iccid")),
                cell(sim.get("modem")),
                cell(sim.get("slot")),
                cell(sim.get("state")),
                gauge(usage, limits, "calls_hour", "calls_per_hour"),
                gauge(usage, limits, "calls_day", "calls_per_day"),
                f"{int(usage.get('sms_day') or 0)}/{cell(limits.get('sms_per_day'))}",
                cell(block.get("reason") or sim.get("reason")),
            )
        )
    return render_table(rows, SIM_COLUMNS)


def event_text(heard: Heard) -> str:
    """``09:14  sim_rotated  modem=m1 slot=2 …`` (simulated time of day)."""
    event = heard.event
    keys = ("modem", "slot", "iccid", "previous", "reason", "actor", "outcome", "blocks")
    extra = " ".join(f"{k}={event[k]}" for k in keys if event.get(k) is not None)
    if event.get("evidence"):
        extra += f" evidence={len(event['evidence'])}"
    return f"{clock_text(heard.at)}  {heard.type:<16} {extra}".rstrip()


def at_hourly_limit(state: Mapping[str, Mapping[str, Any]], topics: Topics) -> int:
    """SIMs whose calls in the rolling hour reached their policy's limit."""
    full = 0
    for sim in sims_of(state, topics):
        used = (sim.get("usage") or {}).get("calls_hour")
        limit = (sim.get("limits") or {}).get("calls_per_hour")
        if isinstance(used, int) and isinstance(limit, int) and used >= limit:
            full += 1
    return full


def counters_text(tally: Tally, heard: Sequence[Heard], sms_received: int, filled: int = 0) -> str:
    """The day's counters in two lines."""
    served = ", ".join(f"{o.replace('_', ' ')} {n}" for o, n in sorted(tally.calls.items()))
    refused = ", ".join(f"{c} {n}" for c, n in tally.calls_refused.most_common(4))
    switches = sum(1 for h in heard if h.type == "sim_rotated")
    blocks = sum(1 for h in heard if h.type == "sim_blocked")
    opened = sum(1 for h in heard if h.type == "circuit_opened")
    closed = sum(1 for h in heard if h.type == "circuit_closed")
    circuit = "OPEN" if opened > closed else "closed"
    return (
        f"calls served {tally.calls_served} ({served or 'none yet'})  "
        f"refused {sum(tally.calls_refused.values())} ({refused or '-'})\n"
        f"sms sent {tally.sms_sent}, received {sms_received}  SIMs at their hourly limit {filled}  "
        f"sim switches {switches}  "
        f"blocks found {blocks}  circuit breaker {circuit}"
    )


def screen(
    state: Mapping[str, Mapping[str, Any]],
    topics: Topics,
    *,
    title: str,
    tally: Tally,
    heard: Sequence[Heard],
    footer: str = "",
    feed: int = 10,
) -> str:
    """The whole screen."""
    news = [h for h in heard if h.type not in QUIET_EVENTS][-feed:]
    received = sum(1 for h in heard if h.type == "sms_received")
    parts = [
        title,
        header(state, topics),
        counters_text(tally, heard, received, at_hourly_limit(state, topics)),
        "",
        render_table(modem_rows(state, topics)),
        "",
        sim_table(state, topics),
        "",
        "events:",
        *(f"  {event_text(h)}" for h in news),
    ]
    if footer:
        parts += ["", footer]
    return "\n".join(parts)
