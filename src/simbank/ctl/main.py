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
import os
import sys
from collections.abc import Mapping, Sequence

from simbank.contract import CALL_OUTCOMES
from simbank.ctl import fleet
from simbank.ctl.commands import EXIT_CONFIG, EXIT_OK, EXIT_UNAVAILABLE, CtlExit, run
from simbank.ctl.settings import Settings, settings
from simbank.errors import ConfigError
from simbank.mqtt import BrokerError

_EPILOG = __doc__.split("Exit codes:", 1)[1].rstrip() if __doc__ else ""


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return value


def _cause(text: str) -> int | None:
    """A release cause as a dialplan passes it: Asterisk's ``HANGUPCAUSE`` is empty before
    anything hung up and 0 when no cause is known — both mean none."""
    text = text.strip()
    if text in ("", "0"):
        return None
    if not text.isdigit() or int(text) > 255:
        raise argparse.ArgumentTypeError(f"{text[:16]!r} is not a cause (1-255)")
    return int(text)


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
    authorize = cmd(
        "authorize", "check and book a call a PBX dials itself (call/authorize; docs/pbx.md)"
    )
    authorize.add_argument("number")
    authorize.add_argument(
        "--max-duration",
        type=int,
        metavar="S",
        help="the longest talk time (default: the gateway's [compliance] max_call_duration_s)",
    )
    authorize.add_argument("--modem")
    authorize.add_argument(
        "--fleet",
        action="store_true",
        help="ask the gateway of the fleet with room (retained capacity); prints gateway=",
    )
    cmd("capacity", "every gateway's capacity: SIMs eligible now per action, next free")
    complete = cmd("complete", "settle an authorized call (call/complete)")
    complete.add_argument("booking")
    complete.add_argument("--duration", type=int, required=True, metavar="S")
    complete.add_argument("--outcome", required=True, choices=CALL_OUTCOMES)
    complete.add_argument(
        "--cause",
        type=_cause,
        help="the 24.008 release cause; empty or 0: none (so --cause=${HANGUPCAUSE} is safe)",
    )
    sms = cmd("sms", "send an SMS")
    sms.add_argument("number")
    sms.add_argument("text")
    sms.add_argument("--modem")
    sms.add_argument(
        "--report",
        dest="status_report",
        action="store_true",
        default=None,
        help="ask for a delivery report (default: the SIM's policy)",
    )
    inbox = cmd("inbox", "received SMS, oldest first (sms/list)")
    inbox.add_argument("--sim", dest="iccid", metavar="ICCID")
    inbox.add_argument("--modem")
    inbox.add_argument("--since", metavar="ISO8601", help="received at or after")
    inbox.add_argument("--unread", action="store_true", default=None, help="only unread")
    inbox.add_argument("--after", type=int, metavar="ID", help="the page after this id")
    inbox.add_argument("--limit", type=int, metavar="N", help="messages per page (50)")
    ack = cmd("ack", "mark received SMS read (sms/ack)")
    ack.add_argument("ids", type=int, nargs="*", metavar="ID")
    ack.add_argument("--sim", dest="iccid", metavar="ICCID")
    ack.add_argument("--up-to", dest="up_to", type=int, metavar="ID", help="with --sim")
    cmd("balance", "check the prepaid balance of a modem's SIM").add_argument("modem")
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
    cmd("backup", "a verified backup of the gateway's ledger now (storage/backup)")
    confirm = cmd(
        "confirm-ledger",
        "accept a ledger restored after corruption: ends the 'degraded' hold (storage/confirm)",
    )
    confirm.add_argument("--note", help="why (kept in the audit trail)")
    events = cmd("events", "follow bridge/event, one line per event")
    events.add_argument("--count", type=int, help="exit after this many events")
    return p


def _leaf(exc: BaseException) -> BaseException:
    """The one error inside (nested) single-member exception groups from task groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


async def _carry_out(args: argparse.Namespace, s: Settings) -> int:
    """The fleet's commands (:mod:`.fleet`), else one gateway's (:func:`.commands.run`)."""
    if args.command == "capacity":
        return await fleet.capacity(args, s)
    if args.command == "authorize" and args.fleet:
        return await fleet.authorize(args, s)
    return await run(args, s)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        try:
            s = settings(args, os.environ if environ is None else environ)
            return asyncio.run(_carry_out(args, s))
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
