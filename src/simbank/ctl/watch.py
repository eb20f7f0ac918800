"""``simbankctl watch`` and ``simbankctl events``: live views read from retained MQTT state.

:func:`render_frame` is pure (state, events, now → text); the loops around it only follow the
broker. The view redraws on every change and every second; ANSI colours only on a TTY.
Blocked, locked and suspected SIMs are marked ``!`` (and red/yellow), resting ones ``~``
(and dimmed), so the marks survive a pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from simbank.backoff import Backoff
from simbank.config.models import MqttConfig
from simbank.contract import Topics
from simbank.ctl.table import (
    bar,
    cell,
    event_line,
    header,
    modems_of,
    quota,
    render_table,
    sims_of,
    usage_pairs,
)
from simbank.mqtt import BrokerError, StateWatcher

CLEAR = "\x1b[H\x1b[2J"
RESET, BOLD, DIM, RED, YELLOW, GREEN = (
    "\x1b[0m",
    "\x1b[1m",
    "\x1b[2m",
    "\x1b[31m",
    "\x1b[33m",
    "\x1b[32m",
)

#: SIM state → (mark, ANSI style)
SIM_STYLES = {
    "blocked": ("!", BOLD + RED),
    "locked": ("!", BOLD + RED),
    "suspected": ("!", YELLOW),
    "resting": ("~", DIM),
    "disabled": ("~", DIM),
    "absent": (" ", DIM),
    "active": (" ", GREEN),
}
MODEM_STYLES = {
    "offline": RED,
    "absent": RED,
    "unresponsive": RED,
    "probing": YELLOW,
    "switching": YELLOW,
}
EVENT_STYLES = {
    "sim_blocked": RED,
    "sim_locked": RED,
    "modem_offline": RED,
    "circuit_opened": RED,
    "sim_suspected": YELLOW,
    "quota_exhausted": YELLOW,
}
MODEM_COLUMNS = ("MODEM", "STATE", "SLOT", "ICCID", "SIM", "REGISTRATION", "OPERATOR", "SIGNAL")
SIM_COLUMNS = ("", "ICCID", "AT", "STATE", "CALLS/H", "CALLS/D", "SECONDS/D", "SMS/D", "BLOCK")
EVENTS_SHOWN = 10


def _paint(text: str, style: str | None, colour: bool) -> str:
    return f"{style}{text}{RESET}" if colour and style else text


def _styled_table(
    rows: list[tuple[str, ...]], columns: tuple[str, ...], styles: list[str | None], colour: bool
) -> list[str]:
    """Pad first, colour whole lines after, so escape codes never break the alignment."""
    lines = render_table(rows, columns).splitlines()
    out = [_paint(lines[0], BOLD, colour)]
    out.extend(_paint(line, style, colour) for line, style in zip(lines[1:], styles, strict=True))
    return out


def _modem_lines(state: Mapping[str, Mapping[str, Any]], topics: Topics, colour: bool) -> list[str]:
    rows: list[tuple[str, ...]] = []
    styles: list[str | None] = []
    for m in modems_of(state, topics):
        signal = "-"
        if isinstance(m.quality, int):
            # +CESQ may report quality without an RSSI: the bar alone, never "None dBm".
            dbm = "" if m.rssi_dbm is None else f" {m.rssi_dbm} dBm"
            signal = f"{bar(int(m.quality), 100)}{dbm}"
        rows.append((m.modem, m.state, m.slot, m.iccid, m.sim, m.registration, m.operator, signal))
        style = MODEM_STYLES.get(m.state)
        styles.append(style or SIM_STYLES.get(m.sim, (" ", None))[1])
    return _styled_table(rows, MODEM_COLUMNS, styles, colour)


def _sim_lines(state: Mapping[str, Mapping[str, Any]], topics: Topics, colour: bool) -> list[str]:
    rows: list[tuple[str, ...]] = []
    styles: list[str | None] = []
    for sim in sims_of(state, topics):
        sim_state = str(sim.get("state") or "-")
        mark, style = SIM_STYLES.get(sim_state, (" ", None))
        where = f"{sim['modem']}/{sim.get('slot') or '-'}" if sim.get("modem") else "-"
        gauges = tuple(
            f"{bar(used, limit, 8)} {quota(used, limit)}"
            for _label, used, limit in usage_pairs(sim)
        )
        block = cell((sim.get("block") or {}).get("reason"))
        rows.append((mark, str(sim.get("iccid")), where, sim_state, *gauges, block))
        styles.append(style)
    return _styled_table(rows, SIM_COLUMNS, styles, colour)


def render_frame(
    state: Mapping[str, Mapping[str, Any]],
    topics: Topics,
    events: Iterable[Mapping[str, Any]],
    *,
    now: datetime,
    colour: bool = False,
) -> str:
    """One screen of ``watch`` for one gateway."""
    out = [f"{header(state, topics)}  {now.astimezone(UTC):%H:%M:%S} UTC", ""]
    out += _modem_lines(state, topics, colour)
    out.append("")
    out += _sim_lines(state, topics, colour)
    recent = list(events)[-EVENTS_SHOWN:]
    out += ["", f"last {len(recent)} event(s):" if recent else "no events yet"]
    out.extend(
        "  " + _paint(event_line(ev), EVENT_STYLES.get(str(ev.get("type"))), colour)
        for ev in recent
    )
    return "\n".join(out)


class GatewayWatcher(StateWatcher):
    """A :class:`StateWatcher` that also keeps the last events per gateway and, with
    ``tail``, queues every event for ``simbankctl events``."""

    def __init__(
        self,
        cfg: MqttConfig,
        base: str,
        client_id: str,
        gateway: str | None = None,
        *,
        tail: bool = False,
    ) -> None:
        super().__init__(cfg, base, client_id, gateway=gateway)
        self.by_gateway: dict[str, list[dict[str, Any]]] = {}
        self.tail: asyncio.Queue[tuple[str, dict[str, Any]]] | None = (
            asyncio.Queue() if tail else None
        )

    def _take(self, topic: str, payload: object) -> None:
        if topic.endswith("/bridge/event") and isinstance(payload, bytes | bytearray):
            with contextlib.suppress(ValueError):
                event = json.loads(payload)
                if isinstance(event, dict):
                    gateway = topic.split("/")[-3]
                    kept = self.by_gateway.setdefault(gateway, [])
                    kept.append(event)
                    del kept[:-EVENTS_SHOWN]
                    if self.tail is not None:
                        self.tail.put_nowait((gateway, event))
        super()._take(topic, payload)


def _frames(watcher: GatewayWatcher, base: str, colour: bool) -> str:
    now = datetime.now(UTC)
    return "\n\n".join(
        render_frame(
            watcher.state, Topics(base, gw), watcher.by_gateway.get(gw, []), now=now, colour=colour
        )
        for gw in watcher.gateways()
    )


async def watch_once(watcher: GatewayWatcher, base: str, out: TextIO, *, quiet_s: float) -> bool:
    """Read the retained state until it is quiet (at most 10 s), print one frame."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(10.0):
            await watcher.run(until_quiet_s=quiet_s)
    if not watcher.gateways():
        return False
    out.write(_frames(watcher, base, colour=False) + "\n")
    return True


async def watch_live(watcher: GatewayWatcher, base: str, out: TextIO, *, tty: bool) -> None:
    """Redraw on every change and every second until cancelled (Ctrl-C); reconnect with
    backoff if the broker goes away after the first connection."""
    backoff = Backoff(0.5, 10.0)
    shown = ""
    problem = ""
    while True:
        follow = asyncio.create_task(watcher.run(), name="watch-follow")
        try:
            while not follow.done():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await watcher.changed.wait()
                watcher.changed.clear()
                if watcher.state:
                    backoff.reset()
                    problem = ""
                text = _frames(watcher, base, colour=tty) or f"no gateway under {base}/ yet"
                if problem:
                    text += f"\n\n{problem}"
                if tty:
                    out.write(CLEAR + text + "\n(Ctrl-C to stop)\n")
                elif text.split("\n", 1)[-1] != shown.split("\n", 1)[-1]:
                    out.write(text + "\n\n")  # no screen: print changes only
                shown = text
                out.flush()
            follow.result()
        except BrokerError as exc:
            if not watcher.state:
                raise
            problem = f"broker lost ({exc}); reconnecting"
            await asyncio.sleep(backoff.next())
        finally:
            follow.cancel()
            with contextlib.suppress(asyncio.CancelledError, BrokerError):
                await follow


async def tail_events(
    watcher: GatewayWatcher, out: TextIO, *, count: int | None, as_json: bool, prefix: bool
) -> None:
    """Print each event as it arrives (``prefix``: with its gateway); stop after ``count``."""
    assert watcher.tail is not None
    seen = 0
    async with asyncio.TaskGroup() as tg:
        follow = tg.create_task(watcher.run(), name="events-follow")
        while count is None or seen < count:
            gateway, event = await watcher.tail.get()
            seen += 1
            if as_json:
                out.write(json.dumps({"gateway": gateway, **event}, sort_keys=True) + "\n")
            else:
                out.write((f"{gateway}  " if prefix else "") + event_line(event) + "\n")
            out.flush()
        follow.cancel()
