"""``simbankctl``: the operator's tool; talks to simbank gateways over MQTT only.

Broker settings come from flags, then the environment (``SIMBANK_MQTT_HOST``,
``SIMBANK_MQTT_PORT``, ``SIMBANK_MQTT_USERNAME``, ``SIMBANK_MQTT_PASSWORD_FILE``,
``SIMBANK_BASE_TOPIC``, ``SIMBANK_GATEWAY``), then ``--config`` (the daemon's simbank.toml),
then the defaults. A command that acts needs one gateway: without ``--gateway`` the only
gateway on the broker (retained ``<base>/+/bridge/state``) is used. Phone numbers typed
here are sent as given and never printed back (``--json`` output included).

Exit codes:
  0   ok
  1   the daemon refused (an error response; 'simbankctl: <code>: <error>' on stderr)
  2   usage error (bad arguments; several gateways and no --gateway)
  3   nothing found (no gateway on the broker)
  69  broker unreachable (EX_UNAVAILABLE)
  75  no answer in time (EX_TEMPFAIL)
  78  bad configuration (EX_CONFIG)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from simbank.contract import Topics
from simbank.ctl import output
from simbank.ctl.settings import Settings, settings
from simbank.ctl.table import render_status
from simbank.ctl.watch import GatewayWatcher, tail_events, watch_live, watch_once
from simbank.errors import ConfigError
from simbank.mqtt import BrokerError, RequestClient

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_NOTHING = 0, 1, 2, 3
EXIT_UNAVAILABLE, EXIT_TEMPFAIL, EXIT_CONFIG = 69, 75, 78
_EPILOG = __doc__.split("Exit codes:", 1)[1].rstrip() if __doc__ else ""


class CtlExit(Exception):
    """Ends the command with ``status`` after printing ``message`` on stderr."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="simbankctl",
        description="control simbank gateways over MQTT",
        epilog="exit codes:" + _EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", "-c", help="read broker settings and gateway id from simbank.toml")
    p.add_argument("--host", help="broker host [SIMBANK_MQTT_HOST]")
    p.add_argument("--port", type=int, help="broker port [SIMBANK_MQTT_PORT]")
    p.add_argument("--base", help="base topic [SIMBANK_BASE_TOPIC]")
    p.add_argument("--gateway", "-g", help="gateway id [SIMBANK_GATEWAY]")
    p.add_argument("--username", help="broker user [SIMBANK_MQTT_USERNAME]")
    p.add_argument("--password-file", help="file with the password [SIMBANK_MQTT_PASSWORD_FILE]")
    p.add_argument("--tls-ca", help="CA certificate: enables TLS")
    p.add_argument("--tls-cert", help="client certificate")
    p.add_argument("--tls-key", help="client key")
    p.add_argument("--protocol", choices=("3.1.1", "5"), help="MQTT version (default 5)")
    p.add_argument(
        "--timeout", type=_seconds, default=60.0, help="seconds to wait for an answer (60)"
    )
    p.add_argument("--json", action="store_true", help="print raw JSON (also after COMMAND)")
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a --json before the command is not reset by the subcommand's default
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print the raw response"
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def cmd(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, parents=[common])

    status = cmd("status", "tables of modems and SIMs (retained state)")
    status.add_argument("--wait", type=float, default=1.0, help="quiet seconds that end the read")
    watch = cmd("watch", "live view: modems, SIMs, quota bars, last events")
    watch.add_argument("--once", action="store_true", help="print one frame and exit")
    call = cmd("call", "place a voice call (the number is never printed)")
    call.add_argument("number")
    call.add_argument("--max-duration", type=int, required=True, metavar="S")
    call.add_argument("--modem")
    sms = cmd("sms", "send an SMS")
    sms.add_argument("number")
    sms.add_argument("text")
    sms.add_argument("--modem")
    ussd = cmd("ussd", "run a USSD code on a modem's SIM")
    ussd.add_argument("modem")
    ussd.add_argument("code")
    for name, text in (("rotate", "rotate a modem to its next SIM"), ("reset", "reset a modem")):
        cmd(name, text).add_argument("modem")
    select = cmd("select", "switch a modem to a slot")
    select.add_argument("modem")
    select.add_argument("slot", type=int)
    for name, text in (("enable", "enable a SIM"), ("disable", "disable a SIM")):
        cmd(name, text).add_argument("iccid")
    release = cmd("release", "end a SIM's quarantine")
    release.add_argument("iccid")
    release.add_argument("--note", required=True, help="why (kept in the audit trail)")
    cmd("report", "a SIM's state, usage, block evidence and audit trail").add_argument("iccid")
    for name in ("pause", "resume"):
        cmd(name, f"{name} outbound traffic").add_argument("--reason")
    events = cmd("events", "follow bridge/event, one line per event")
    events.add_argument("--count", type=int, help="exit after this many events")
    return p


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
    online = [gw for gw, st in found.items() if st == "online"]
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
    "sms": ("sms/send", ("number", "text", "modem")),
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
}
_FIELD = {"max_duration": "max_duration_s"}


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
        else:
            print(_scrub(output.answer(command, data), number))
    return EXIT_OK


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
        if watcher.state.get(topics.bridge_state, {}).get("state") == "online":
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


async def _run(args: argparse.Namespace, s: Settings) -> int:
    if args.command == "status":
        return await _status(args, s)
    if args.command == "watch":
        return await _watch(args, s)
    if args.command == "events":
        return await _events(args, s)
    return await _act(args, s)


def _leaf(exc: BaseException) -> BaseException:
    """The one error inside (nested) single-member exception groups from task groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        try:
            s = settings(args, os.environ if environ is None else environ)
            return asyncio.run(_run(args, s))
        except BaseExceptionGroup as group:
            raise _leaf(group) from None
    except CtlExit as exc:
        print(f"simbankctl: {exc}", file=sys.stderr)
        return exc.status
    except ConfigError as exc:
        print(f"simbankctl: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except BrokerError as exc:
        print(f"simbankctl: cannot reach the broker: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return EXIT_OK if args.command in {"watch", "events"} else 130


if __name__ == "__main__":
    sys.exit(main())
