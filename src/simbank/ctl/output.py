"""Human-readable rendering of ``simbankctl`` answers: one line per action, the SIM report.

Pure functions of the response ``data``. Phone numbers are never part of an answer, and
nothing here is given the number the operator typed, so none can be echoed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from simbank.ctl.table import render_table, usage_text

Data = Mapping[str, Any]


def when(value: Any) -> str:
    """An epoch float or ISO string as ``YYYY-MM-DD HH:MM:SS`` UTC; ``-`` when missing."""
    if value is None or value == "":
        return "-"
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")
    text = str(value)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return text
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


def _sim(data: Data) -> str:
    return f"SIM {data['iccid']}" if data.get("iccid") else "no SIM"


def _call(d: Data) -> str:
    cause = ""
    if d.get("cause") is not None:
        cause = f", cause {d['cause']}" + (f" ({d['cause_text']})" if d.get("cause_text") else "")
    return (
        f"call via {d.get('modem')} ({_sim(d)}): {d.get('outcome')}, "
        f"{d.get('duration_s', 0)} s{cause}"
    )


def _authorize(d: Data) -> str:
    """``key=value`` pairs on one line: readable, and cut apart by a dialplan's shell."""
    keys = ("device", "booking", "modem", "iccid", "max_duration_s", "expires_at")
    return " ".join(f"{k}={'-' if d.get(k) is None else d[k]}" for k in keys)


def _complete(d: Data) -> str:
    cause = f", cause {d['cause']}" if d.get("cause") is not None else ""
    return (
        f"booking {d.get('booking')} settled via {d.get('modem')} ({_sim(d)}): "
        f"{d.get('outcome')}, {d.get('duration_s', 0)} s{cause}"
    )


def _sms(d: Data) -> str:
    segments = d.get("segments") or 1
    parts = f", {segments} segments" if segments > 1 else ""
    report = ", delivery report requested" if d.get("status_report") else ""
    return (
        f"SMS sent via {d.get('modem')} ({_sim(d)}), reference {d.get('reference')}{parts}{report}"
    )


def _inbox(d: Data) -> str:
    messages = list(d.get("messages") or [])
    if not messages:
        return f"no messages ({d.get('unread', 0)} unread)"
    rows = [
        (
            str(m.get("id")),
            when(m.get("received_at")),
            str(m.get("iccid") or "-"),
            str(m.get("sender") or "-"),
            " " if m.get("acked") else "*",
            str(m.get("text", "")).replace("\n", " ")
            + (f" [missing parts {m['missing']}]" if m.get("missing") else ""),
        )
        for m in messages
    ]
    more = f"\nmore: --after {d['next']}" if d.get("next") is not None else ""
    table = render_table(rows, ("ID", "RECEIVED (UTC)", "ICCID", "SENDER", "NEW", "TEXT"))
    return f"{table}\n{d.get('unread', 0)} unread{more}"


def _ack(d: Data) -> str:
    return f"{d.get('acked', 0)} message(s) marked read"


def _balance(d: Data) -> str:
    amount = d.get("amount") if d.get("amount") is not None else "not found in the answer"
    low = f", under the floor {d.get('floor')}" if d.get("low") else ""
    return f"{d.get('modem')} ({_sim(d)}): balance {amount}{low}"


def _ussd(d: Data) -> str:
    return f"{d.get('modem')} ({_sim(d)}): {d.get('text')}"


def _rotate(d: Data) -> str:
    if d.get("rotated"):
        return f"{d.get('modem')} rotated to slot {d.get('slot')} ({_sim(d)})"
    why = f": {d['why']}" if d.get("why") else ""
    return f"{d.get('modem')} stayed on slot {d.get('slot')} ({_sim(d)}){why}"


def _select(d: Data) -> str:
    registered = "registered" if d.get("registered") else "not registered"
    return (
        f"{d.get('modem')} on slot {d.get('slot')} ({_sim(d)}), "
        f"SIM status {d.get('sim_status')}, {registered}"
    )


def _sim_state(d: Data) -> str:
    return f"SIM {d.get('iccid')} is now {d.get('state')}"


def _release(d: Data) -> str:
    return f"SIM {d.get('iccid')} released (was {d.get('was')}), now {d.get('state')}"


def _reset(d: Data) -> str:
    return f"{d.get('modem')} reset: {d.get('state')} ({_sim(d)})"


def _pause(d: Data) -> str:
    return f"traffic paused: {d.get('reason')}"


def _resume(d: Data) -> str:
    circuit = "open" if d.get("circuit_open") else "closed"
    return f"traffic resumed (circuit {circuit})"


ANSWERS: dict[str, Callable[[Data], str]] = {
    "call": _call,
    "call/authorize": _authorize,
    "call/complete": _complete,
    "sms/send": _sms,
    "sms/list": _inbox,
    "sms/ack": _ack,
    "balance/check": _balance,
    "ussd": _ussd,
    "sim/rotate": _rotate,
    "sim/select": _select,
    "sim/enable": _sim_state,
    "sim/disable": _sim_state,
    "sim/release": _release,
    "modem/reset": _reset,
    "traffic/pause": _pause,
    "traffic/resume": _resume,
}


def answer(command: str, data: Data) -> str:
    """The one-line summary of a successful command."""
    render = ANSWERS.get(command)
    if render is None:
        return ", ".join(f"{k}={v}" for k, v in sorted(data.items()))
    return render(data)


def error_line(response: Data) -> str:
    """``simbankctl: <code>: <error>`` plus what the detail adds (limits, when they free)."""
    line = f"simbankctl: {response.get('code', 'error')}: {response.get('error', '')}".rstrip()
    detail = response.get("detail") or {}
    extra = []
    if detail.get("limits"):
        extra.append(f"limits: {', '.join(map(str, detail['limits']))}")
    if detail.get("frees_at"):
        extra.append(f"frees at {when(detail['frees_at'])} UTC")
    return line + (f" ({'; '.join(extra)})" if extra else "")


def _details(entry: Data, skip: set[str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in entry.items() if k not in skip and v is not None)


def _evidence_details(entry: Data) -> str:
    """An evidence entry's ``detail`` as ``key=value, ...``. A daemon before the one evidence
    shape put the detail's fields inline (next to ``at`` and ``kind``): shown alike."""
    detail = entry.get("detail")
    if isinstance(detail, Mapping):
        return _details(detail, set())
    return _details(entry, {"at", "kind"})


def report(data: Data) -> str:
    """The ``sim/report`` answer as sections: identity, usage timeline (unauthorized calls
    marked), inbound calls, evidence, audit."""
    out = [
        f"SIM {data.get('iccid')}",
        f"  state   {data.get('state')}"
        + (f" since {when(data.get('since'))}" if data.get("since") else "")
        + (f" ({data['reason']})" if data.get("reason") else ""),
        f"  policy  {data.get('policy') or '-'}",
        f"  modem   {data.get('modem') or '-'}, slot {data.get('slot') or '-'}",
    ]
    sim_state = data.get("sim_state")
    if isinstance(sim_state, Mapping):
        out.append(f"  usage   {usage_text(sim_state)}")
    usage = list(data.get("usage") or [])
    out += ["", f"usage, last 30 days ({len(usage)} record(s)):"]
    if usage:
        rows = [
            (
                when(u.get("booked_at")),
                str(u.get("kind") or "-") + (" (unauthorized)" if u.get("unauthorized") else ""),
                str(u.get("outcome") or "pending"),
                f"{u.get('duration_s') or 0} s" if u.get("kind") == "call" else "-",
                str(u.get("destination") or "-")[:8],
                str(u.get("modem") or "-"),
            )
            for u in sorted(usage, key=lambda u: u.get("booked_at") or 0)
        ]
        columns = ("TIME (UTC)", "KIND", "OUTCOME", "DURATION", "DEST", "MODEM")
        out.append(_indent(render_table(rows, columns)))
    unauthorized = data.get("calls_unauthorized")
    if unauthorized:
        out.append(f"  {unauthorized} unauthorized call(s): dialled past simbank, booked as usage")
    calls_in = data.get("calls_in")
    if isinstance(calls_in, Mapping):
        counts = ", ".join(
            f"{calls_in.get(k) or 0} {k}" for k in ("answered", "missed", "rejected")
        )
        out += ["", f"inbound calls, last {calls_in.get('days') or '-'} days: {counts}"]
        out.extend(
            f"  {when(c.get('at'))}  {c.get('outcome')}  {c.get('caller')}  "
            f"{c.get('rings')} ring(s)  {c.get('action')} ({c.get('reason')})  {c.get('modem')}"
            for c in calls_in.get("recent") or []
        )
    evidence = list(data.get("evidence") or [])
    out += ["", f"block evidence ({len(evidence)}):"]
    out.extend(
        f"  {when(e.get('at'))}  {e.get('kind')}  {_evidence_details(e)}".rstrip() for e in evidence
    )
    audit = list(data.get("audit") or [])
    out += ["", f"audit trail ({len(audit)}):"]
    out.extend(
        f"  {when(a.get('at'))}  {a.get('actor')}  {a.get('action')}  "
        f"{_details(a, {'at', 'actor', 'action', 'iccid'})}".rstrip()
        for a in audit
    )
    return "\n".join(out)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
