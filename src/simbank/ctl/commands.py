"""What each ``simbankctl`` command does, once its arguments are parsed: read the retained
state (``status``, ``watch``, ``events``) or send one request and print its answer.

Phone numbers typed by the operator are sent as given and never printed back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from typing import Any

from simbank.contract import Topics
from simbank.ctl import output
from simbank.ctl.settings import Settings
from simbank.ctl.table import render_status
from simbank.ctl.watch import GatewayWatcher, tail_events, watch_live, watch_once
from simbank.mqtt import RequestClient

#: exit statuses (the ``simbankctl --help`` epilog explains them)
EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_NOTHING = 0, 1, 2, 3
EXIT_UNAVAILABLE, EXIT_TEMPFAIL, EXIT_CONFIG = 69, 75, 78

#: A gateway that hears requests: ``degraded`` too (its ledger cannot book; it answers).
UP_STATES = frozenset({"online", "degraded"})


class CtlExit(Exception):
    """Ends the command with ``status`` after printing ``message`` on stderr."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _read_state(s: Settings, gateway: str | None, quiet_s: float) -> GatewayWatcher:
    watcher = GatewayWatcher(s.cfg, s.base, s.client_id, gateway=gateway)
    try:
        async with asyncio.timeout(max(10.0, quiet_s * 4)):
            await watcher.run(until_quiet_s=quiet_s)
    except TimeoutError:
        pass  # a busy gateway is never quiet: what arrived so far is the state
    return watcher


async def _one_gateway(s: Settings) -> str:
    if s.gateway:
        return s.gateway
    watcher = await _read_state(s, None, 0.5)
    found = {
        gw: watcher.state[Topics(s.base, gw).bridge_state].get("state") for gw in watcher.gateways()
    }
    online = [gw for gw, st in found.items() if st in UP_STATES]
    if len(found) == 1:
        return next(iter(found))
    if len(online) == 1:
        return online[0]
    if not found:
        raise CtlExit(EXIT_NOTHING, f"no simbank gateway under {s.base}/ on {_where(s)}")
    listed = ", ".join(f"{gw} ({st})" for gw, st in sorted(found.items()))
    raise CtlExit(EXIT_USAGE, f"several gateways ({listed}): choose one with --gateway")


def _where(s: Settings) -> str:
    return f"{s.cfg.host}:{s.cfg.port}"


#: simbankctl command → (MQTT command, the argparse attributes that make the payload)
ACTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "call": ("call", ("number", "max_duration", "modem")),
    "authorize": ("call/authorize", ("number", "max_duration", "modem")),
    "complete": ("call/complete", ("booking", "duration", "outcome", "cause")),
    "sms": ("sms/send", ("number", "text", "modem", "status_report")),
    "inbox": ("sms/list", ("iccid", "modem", "since", "unread", "after", "limit")),
    "ack": ("sms/ack", ("ids", "iccid", "up_to")),
    "balance": ("balance/check", ("modem",)),
    "ussd": ("ussd", ("modem", "code")),
    "rotate": ("sim/rotate", ("modem",)),
    "reset": ("modem/reset", ("modem",)),
    "select": ("sim/select", ("modem", "slot")),
    "enable": ("sim/enable", ("iccid",)),
    "disable": ("sim/disable", ("iccid",)),
    "release": ("sim/release", ("iccid", "note")),
    "report": ("sim/report", ("iccid",)),
    "pause": ("traffic/pause", ("reason",)),
    "resume": ("traffic/resume", ("reason",)),
    "backup": ("storage/backup", ()),
    "confirm-ledger": ("storage/confirm", ("note",)),
}
_FIELD = {"max_duration": "max_duration_s", "duration": "duration_s"}


async def _act(args: argparse.Namespace, s: Settings) -> int:
    command, attrs = ACTIONS[args.command]
    payload = {_FIELD.get(a, a): getattr(args, a) for a in attrs if getattr(args, a) is not None}
    # A call holds the request open while it rings and talks.
    timeout = s.timeout + (args.max_duration if command == "call" else 0)
    gateway = await _one_gateway(s)
    topics = Topics(s.base, gateway)
    async with RequestClient(s.cfg, topics, s.client_id) as client:
        try:
            response = await client.request(command, payload, timeout=timeout)
        except TimeoutError:
            raise CtlExit(
                EXIT_TEMPFAIL,
                f"no answer to {command} from gateway {gateway} within {timeout:g} s "
                "(is simbankd running and connected?)",
            ) from None
        sim_state: Any = None
        if command == "sim/report" and response.get("status") == "ok" and not args.json:
            with contextlib.suppress(TimeoutError):  # the live counters are in the status answer
                status = await client.request("status", {}, timeout=min(timeout, 10.0))
                sim_state = ((status.get("data") or {}).get("sims") or {}).get(args.iccid)
    number = payload.get("number")
    if args.json:
        print(_scrub(json.dumps(response, indent=2, sort_keys=True), number))
    if response.get("status") != "ok":
        if not args.json:
            print(_scrub(output.error_line(response), number), file=sys.stderr)
        return EXIT_REFUSED
    if not args.json:
        data = response.get("data") or {}
        if command == "sim/report":
            print(output.report({**data, "sim_state": sim_state}))
        elif command in _STORAGE_ANSWERS:
            print(_STORAGE_ANSWERS[command](data))
        else:
            print(_scrub(output.answer(command, data), number))
    return EXIT_OK


def _backup_answer(d: output.Data) -> str:
    rows = f", {d['usage_rows']} usage rows" if d.get("usage_rows") is not None else ""
    return (
        f"backup {d.get('path')} ({d.get('size_bytes')} bytes{rows}, "
        f"taken {output.when(d.get('created_at'))} UTC, verified)"
    )


def _confirm_answer(d: output.Data) -> str:
    recovery = d.get("recovery")
    if not isinstance(recovery, dict):
        return "no restored ledger waiting for confirmation"
    source = recovery.get("restored_from") or "no backup (a fresh ledger)"
    salvaged = ", ".join(f"{k} {v}" for k, v in sorted((recovery.get("salvaged") or {}).items()))
    return (
        f"ledger recovery of {output.when(recovery.get('at'))} UTC confirmed: restored from "
        f"{source}, salvaged {salvaged or 'nothing'}; the old ledger is kept at "
        f"{recovery.get('moved_to') or '-'}"
    )


_STORAGE_ANSWERS = {"storage/backup": _backup_answer, "storage/confirm": _confirm_answer}


def _scrub(text: str, number: str | None) -> str:
    """Belt and braces: the daemon never returns a number, and neither do we."""
    if not number:
        return text
    digits = number.lstrip("+")
    return text.replace(digits, "<number>") if len(digits) >= 4 else text


async def _status(args: argparse.Namespace, s: Settings) -> int:
    watcher = await _read_state(s, s.gateway, args.wait)
    if args.json:
        print(json.dumps(watcher.state, indent=2, sort_keys=True))
        return EXIT_OK if watcher.state else EXIT_NOTHING
    gateways = watcher.gateways()
    if not gateways:
        raise CtlExit(EXIT_NOTHING, f"no simbank gateway under {s.base}/ on {_where(s)}")
    texts = []
    for gw in gateways:
        topics = Topics(s.base, gw)
        traffic = None
        if watcher.state.get(topics.bridge_state, {}).get("state") in UP_STATES:
            traffic = await _traffic(s, topics)
        texts.append(render_status(watcher.state, topics, sims=True, traffic=traffic))
    print("\n\n".join(texts))
    return EXIT_OK


async def _traffic(s: Settings, topics: Topics) -> dict[str, Any] | None:
    """Paused / circuit state from the ``status`` command; ``None`` if no answer soon."""
    async with RequestClient(s.cfg, topics, s.client_id) as client:
        try:
            answer = await client.request("status", {}, timeout=min(s.timeout, 3.0))
        except TimeoutError:
            return None
    traffic = (answer.get("data") or {}).get("traffic")
    return traffic if isinstance(traffic, dict) else None


async def _watch(args: argparse.Namespace, s: Settings) -> int:
    watcher = GatewayWatcher(s.cfg, s.base, s.client_id, gateway=s.gateway)
    if args.once:
        if not await watch_once(watcher, s.base, sys.stdout, quiet_s=0.5):
            raise CtlExit(EXIT_NOTHING, f"no simbank gateway under {s.base}/ on {_where(s)}")
        return EXIT_OK
    await watch_live(watcher, s.base, sys.stdout, tty=sys.stdout.isatty())
    return EXIT_OK


async def _events(args: argparse.Namespace, s: Settings) -> int:
    watcher = GatewayWatcher(s.cfg, s.base, s.client_id, gateway=s.gateway, tail=True)
    await tail_events(
        watcher, sys.stdout, count=args.count, as_json=args.json, prefix=not s.gateway
    )
    return EXIT_OK


async def run(args: argparse.Namespace, s: Settings) -> int:
    """Carry out the parsed command; the exit status, or :class:`CtlExit`."""
    if args.command == "status":
        return await _status(args, s)
    if args.command == "watch":
        return await _watch(args, s)
    if args.command == "events":
        return await _events(args, s)
    return await _act(args, s)
