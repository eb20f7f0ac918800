"""``simbankctl authorize --fleet`` and ``simbankctl capacity``: the fleet as one, through
:class:`simbank.fleet.FleetClient` (each gateway's retained ``capacity`` and ``bridge/state``).

:func:`render_capacity` is pure (gateways, now → text).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable
from typing import Any

from simbank.ctl import output
from simbank.ctl.commands import (
    EXIT_NOTHING,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_TEMPFAIL,
    EXIT_USAGE,
    CtlExit,
    _scrub,
    _where,
)
from simbank.ctl.settings import Settings
from simbank.ctl.table import render_table
from simbank.fleet import FleetClient, GatewaySeen
from simbank.fleet.choice import skip_reason

CAPACITY_COLUMNS = (
    "GATEWAY",
    "STATE",
    "CALL",
    "NEXT CALL",
    "SMS",
    "NEXT SMS",
    "MODEMS",
    "COMPUTED",
    "SKIPPED",
)


def _room(seen: GatewaySeen, action: str) -> tuple[str, str]:
    """``eligible/free modems`` and when the next SIM frees up, for one action."""
    if seen.capacity is None:
        return "-", "-"
    room = getattr(seen.capacity, action)
    return f"{room.eligible}/{room.modems}", output.when(
        None if room.next_free_at is None else room.next_free_at.isoformat()
    )


def render_capacity(gateways: Iterable[GatewaySeen], now: float) -> str:
    """One row per gateway: SIMs eligible / free modems per action, when the next frees up,
    ready / busy modems, when computed, and why a fleet call would skip it."""
    rows = []
    for seen in sorted(gateways, key=lambda g: g.gateway):
        state = {True: "online", False: "offline", None: "-"}[seen.online]
        call, next_call = _room(seen, "call")
        sms, next_sms = _room(seen, "sms")
        cap = seen.capacity
        modems = "-" if cap is None else f"{cap.modems_ready}/{cap.modems_busy} busy"
        computed = "-" if cap is None else output.when(cap.computed_at.isoformat())
        if cap is not None and cap.traffic_stopped:
            state += " (stopped)"
        skipped = skip_reason(seen, "call", now) or ""
        rows.append(
            (seen.gateway, state, call, next_call, sms, next_sms, modems, computed, skipped)
        )
    return render_table(rows, CAPACITY_COLUMNS)


def _as_json(gateways: Iterable[GatewaySeen]) -> str:
    shown = {
        g.gateway: {
            "online": g.online,
            "capacity": None if g.capacity is None else g.capacity.model_dump(mode="json"),
        }
        for g in gateways
    }
    return json.dumps(shown, indent=2, sort_keys=True)


async def capacity(args: argparse.Namespace, s: Settings) -> int:
    """``simbankctl capacity``: every gateway's retained capacity, one line each."""
    async with FleetClient(s.cfg, s.base, s.client_id) as fleet:
        await fleet.settled()
        gateways = list(fleet.gateways.values())
    if args.json:
        print(_as_json(gateways))
        return EXIT_OK if gateways else EXIT_NOTHING
    if not gateways:
        raise CtlExit(EXIT_NOTHING, f"no simbank gateway under {s.base}/ on {_where(s)}")
    print(render_capacity(gateways, time.time()))
    return EXIT_OK


async def authorize(args: argparse.Namespace, s: Settings) -> int:
    """``simbankctl authorize --fleet``: the gateway with room books the call; its answer is
    printed as without ``--fleet``, plus ``gateway=<id>`` (``complete`` goes there)."""
    if args.modem is not None:
        raise CtlExit(EXIT_USAGE, "--modem names one gateway's modem: not with --fleet")
    async with FleetClient(s.cfg, s.base, s.client_id) as fleet:
        await fleet.settled()
        if not fleet.gateways:
            raise CtlExit(EXIT_NOTHING, f"no simbank gateway under {s.base}/ on {_where(s)}")
        answer = await fleet.authorize(
            args.number, max_duration_s=args.max_duration, timeout=s.timeout
        )
    response: dict[str, Any] = dict(answer.response)
    if answer.gateway is not None:
        response["gateway"] = answer.gateway
    number = args.number
    if args.json:
        print(_scrub(json.dumps(response, indent=2, sort_keys=True), number))
    if not answer.ok:
        if not args.json:
            print(_scrub(output.error_line(response), number), file=sys.stderr)
            for gateway, why in ((response.get("detail") or {}).get("gateways") or {}).items():
                print(_scrub(f"  {gateway}: {why}", number), file=sys.stderr)
        # No answer in time: the gateway may still book it (75, as without --fleet).
        return EXIT_TEMPFAIL if response.get("code") == "timeout" else EXIT_REFUSED
    if not args.json:
        line = output.answer("call/authorize", answer.data)
        print(_scrub(f"{line} gateway={answer.gateway}", number))
    return EXIT_OK
