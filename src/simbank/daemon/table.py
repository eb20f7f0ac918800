"""Plain-text status table of a gateway, built from its retained MQTT state.

Shared by ``simbankd demo`` and ``simbankctl status`` so both show the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from simbank.daemon.contract import Topics

_COLUMNS = ("MODEM", "STATE", "MODEL", "SLOT", "ICCID", "SIM", "REGISTRATION", "OPERATOR", "dBm")


def _cell(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def modem_rows(state: Mapping[str, Mapping[str, Any]], topics: Topics) -> list[tuple[str, ...]]:
    """One row per modem of this gateway, sorted by modem id."""
    sims = {str(v.get("iccid")): v for k, v in state.items() if k.startswith(f"{topics.root}/sim/")}
    rows: list[tuple[str, ...]] = []
    for topic, modem in sorted(state.items()):
        if not topic.startswith(f"{topics.root}/modem/"):
            continue
        reg = modem.get("registration") or {}
        sig = modem.get("signal") or {}
        iccid = modem.get("iccid")
        sim = sims.get(str(iccid), {}) if iccid else {}
        reg_text = _cell(reg.get("state"))
        if reg.get("reject_cause") is not None:
            reg_text += f" (#{reg['reject_cause']})"
        rows.append(
            (
                _cell(modem.get("id")),
                _cell(modem.get("state")),
                _cell(str(modem.get("model") or "")[:20]),
                _cell(modem.get("active_slot")),
                _cell(iccid),
                _cell(sim.get("state")),
                reg_text,
                _cell(reg.get("operator")),
                _cell(sig.get("rssi_dbm")),
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


def render_status(
    state: Mapping[str, Mapping[str, Any]],
    topics: Topics,
    events: Iterable[Mapping[str, Any]] = (),
) -> str:
    """Bridge line, modem table, SIM counts and the last events."""
    bridge = state.get(topics.bridge_state, {}).get("state", "unknown")
    rows = modem_rows(state, topics)
    online = sum(1 for r in rows if r[1] == "ready")
    sims = [v for k, v in state.items() if k.startswith(f"{topics.root}/sim/")]
    by_state: dict[str, int] = {}
    for sim in sims:
        by_state[str(sim.get("state"))] = by_state.get(str(sim.get("state")), 0) + 1
    sim_text = ", ".join(f"{n} {s}" for s, n in sorted(by_state.items())) or "none seen"
    out = [
        f"gateway {topics.root}  bridge: {bridge}  modems ready: {online}/{len(rows)}  "
        f"SIMs: {sim_text}",
        "",
        render_table(rows),
    ]
    recent = list(events)[-8:]
    if recent:
        out += ["", "recent events:"]
        for ev in recent:
            extra = ", ".join(f"{k}={v}" for k, v in ev.items() if k not in {"type", "ts"})
            out.append(f"  {str(ev.get('ts', ''))[11:19]}  {ev.get('type')}  {extra}")
    return "\n".join(out)
