"""Plain-text status tables of a gateway, built from its retained MQTT state.

Shared by ``simbankd demo``, ``simbankctl status`` and ``simbankctl watch`` so all show the
same thing. Pure functions of the state: no I/O, no colours (``watch`` adds those).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from simbank.contract import Topics

_COLUMNS = ("MODEM", "STATE", "MODEL", "SLOT", "ICCID", "SIM", "REGISTRATION", "OPERATOR", "dBm")
SIM_COLUMNS = ("ICCID", "MODEM", "SLOT", "STATE", "POLICY", "USAGE", "BLOCK")

#: (usage key, limit key, label) of the quota counters a SIM shows, in display order
QUOTAS = (
    ("calls_hour", "calls_per_hour", "calls/h"),
    ("calls_day", "calls_per_day", "calls/d"),
    ("call_seconds_day", "call_seconds_per_day", "s/d"),
    ("sms_day", "sms_per_day", "sms/d"),
)
#: The billing month's counters, shown only for a SIM whose policy limits the month.
MONTH_QUOTAS = (
    ("calls_month", "calls_per_month", "calls/mo"),
    ("call_seconds_month", "call_seconds_per_month", "s/mo"),
    ("sms_month", "sms_per_month", "sms/mo"),
)


def cell(value: Any) -> str:
    """A table cell: ``-`` for a missing or empty value."""
    return "-" if value is None or value == "" else str(value)


def sims_of(state: Mapping[str, Mapping[str, Any]], topics: Topics) -> list[Mapping[str, Any]]:
    """The retained SIM payloads of this gateway, sorted by modem, slot, then ICCID."""
    prefix = f"{topics.root}/sim/"
    sims = [v for k, v in state.items() if k.startswith(prefix)]
    return sorted(
        sims,
        key=lambda s: (s.get("modem") is None, str(s.get("modem") or ""), s.get("slot") or 0,
                       str(s.get("iccid"))),
    )  # fmt: skip


class ModemRow(NamedTuple):
    """One modem as every view shows it: text cells (``-`` when missing), and the raw signal
    values that ``watch`` draws as a gauge."""

    modem: str
    state: str
    model: str
    slot: str
    iccid: str
    sim: str
    registration: str
    operator: str
    rssi_dbm: Any
    quality: Any

    def cells(self) -> tuple[str, ...]:
        """The row of the status table (see ``_COLUMNS``)."""
        return (
            self.modem,
            self.state,
            self.model,
            self.slot,
            self.iccid,
            self.sim,
            self.registration,
            self.operator,
            cell(self.rssi_dbm),
        )


def modems_of(state: Mapping[str, Mapping[str, Any]], topics: Topics) -> list[ModemRow]:
    """Each modem of this gateway with its SIM's state, sorted by topic (so by modem id)."""
    sims = {str(s.get("iccid")): s for s in sims_of(state, topics)}
    rows: list[ModemRow] = []
    for topic, modem in sorted(state.items()):
        if not topic.startswith(f"{topics.root}/modem/"):
            continue
        reg = modem.get("registration") or {}
        sig = modem.get("signal") or {}
        iccid = modem.get("iccid")
        sim = sims.get(str(iccid), {}) if iccid else {}
        registration = cell(reg.get("state"))
        if reg.get("reject_cause") is not None:
            registration += f" (#{reg['reject_cause']})"
        rows.append(
            ModemRow(
                modem=cell(modem.get("id")),
                state=cell(modem.get("state")),
                model=cell(str(modem.get("model") or "")[:20]),
                slot=cell(modem.get("active_slot")),
                iccid=cell(iccid),
                sim=cell(sim.get("state")),
                registration=registration,
                operator=cell(reg.get("operator")),
                rssi_dbm=sig.get("rssi_dbm"),
                quality=sig.get("quality"),
            )
        )
    return rows


def modem_rows(state: Mapping[str, Mapping[str, Any]], topics: Topics) -> list[tuple[str, ...]]:
    """One row per modem of this gateway, sorted by modem id (see ``_COLUMNS``)."""
    return [row.cells() for row in modems_of(state, topics)]


def usage_pairs(sim: Mapping[str, Any]) -> list[tuple[str, int, int | None]]:
    """``(label, used, limit)`` for each quota counter of a SIM payload."""
    usage = sim.get("usage") or {}
    limits = sim.get("limits") or {}
    out: list[tuple[str, int, int | None]] = []
    for used_key, limit_key, label in QUOTAS:
        limit = limits.get(limit_key)
        out.append(
            (label, int(usage.get(used_key) or 0), limit if isinstance(limit, int) else None)
        )
    for used_key, limit_key, label in MONTH_QUOTAS:
        limit = limits.get(limit_key)
        if isinstance(limit, int):
            out.append((label, int(usage.get(used_key) or 0), limit))
    return out


def quota(used: int, limit: int | None) -> str:
    """``3/20``; ``3/-`` when the policy sets no limit."""
    return f"{used}/{'-' if limit is None else limit}"


def usage_text(sim: Mapping[str, Any]) -> str:
    """``calls/h 3/20  calls/d 10/100  s/d 75/3600  sms/d 0/50``."""
    return "  ".join(f"{label} {quota(used, limit)}" for label, used, limit in usage_pairs(sim))


def bar(used: int, limit: int | None, width: int = 10) -> str:
    """An ASCII gauge ``[###-------]``; full when at or over the limit (and for a 0 limit)."""
    if width <= 0:
        return ""
    if limit is None:
        return "[" + "?" * width + "]"
    filled = width if limit <= 0 or used >= limit else round(width * max(used, 0) / limit)
    if used > 0 and filled == 0:
        filled = 1  # any use shows
    if used < limit and filled == width:
        filled = width - 1  # full means "no headroom" only
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def sim_rows(state: Mapping[str, Mapping[str, Any]], topics: Topics) -> list[tuple[str, ...]]:
    """One row per SIM of this gateway (see :data:`SIM_COLUMNS`)."""
    rows: list[tuple[str, ...]] = []
    for sim in sims_of(state, topics):
        block = sim.get("block") or {}
        rows.append(
            (
                cell(sim.get("iccid")),
                cell(sim.get("modem")),
                cell(sim.get("slot")),
                cell(sim.get("state")),
                cell(sim.get("policy")),
                usage_text(sim),
                cell(block.get("reason") or sim.get("reason")),
            )
        )
    return rows


def render_table(rows: Iterable[tuple[str, ...]], columns: tuple[str, ...] = _COLUMNS) -> str:
    rows = list(rows)
    widths = [
        max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)
    ]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.extend(
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )
    return "\n".join(lines)


def event_line(event: Mapping[str, Any]) -> str:
    """``20:14:03  sim_rotated  modem=m1, slot=2, ...`` (time of day, UTC)."""
    extra = ", ".join(
        f"{k}={_short(v)}" for k, v in event.items() if k not in {"type", "ts", "evidence"}
    )
    if event.get("evidence"):
        extra += f"{', ' if extra else ''}evidence={len(event['evidence'])} item(s)"
    return f"{str(event.get('ts', ''))[11:19]:8}  {event.get('type')}  {extra}".rstrip()


def _short(value: Any, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def header(state: Mapping[str, Mapping[str, Any]], topics: Topics) -> str:
    """``gateway <root>  bridge: online  modems ready: 3/4  SIMs: 2 active, 1 resting``."""
    shown = state.get(topics.bridge_state, {})
    bridge = shown.get("state", "unknown")
    if bridge == "degraded":  # its ledger cannot book: say why, it refuses every booking
        bridge = f"DEGRADED ({shown.get('reason') or 'storage'}: nothing can be booked)"
    rows = modems_of(state, topics)
    online = sum(1 for r in rows if r.state == "ready")
    by_state: dict[str, int] = {}
    for sim in sims_of(state, topics):
        by_state[str(sim.get("state"))] = by_state.get(str(sim.get("state")), 0) + 1
    sim_text = ", ".join(f"{n} {s}" for s, n in sorted(by_state.items())) or "none seen"
    return (
        f"gateway {topics.root}  bridge: {bridge}  modems ready: {online}/{len(rows)}  "
        f"SIMs: {sim_text}"
    )


def traffic_text(traffic: Mapping[str, Any]) -> str:
    """The ``traffic`` part of the ``status`` answer: running, paused, or the circuit open."""
    if traffic.get("paused"):
        return f"traffic: PAUSED ({traffic.get('pause_reason') or 'no reason given'})"
    if traffic.get("circuit_open"):
        return f"traffic: CIRCUIT OPEN ({traffic.get('blocks_in_window', '?')} blocks in window)"
    return "traffic: running"


def render_status(
    state: Mapping[str, Mapping[str, Any]],
    topics: Topics,
    events: Iterable[Mapping[str, Any]] = (),
    *,
    sims: bool = False,
    traffic: Mapping[str, Any] | None = None,
) -> str:
    """Bridge line, modem table, (with ``sims``) the SIM table, and the last events; with
    ``traffic`` (from the ``status`` command) whether outbound traffic may flow."""
    first = header(state, topics) + (f"  {traffic_text(traffic)}" if traffic else "")
    out = [first, "", render_table(modem_rows(state, topics))]
    if sims:
        out += ["", render_table(sim_rows(state, topics), SIM_COLUMNS)]
    recent = list(events)[-8:]
    if recent:
        out += ["", "recent events:"]
        out.extend(f"  {event_line(ev)}" for ev in recent)
    return "\n".join(out)
