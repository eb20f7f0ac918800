"""``simbankctl``: talk to simbank gateways over MQTT only."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence

from simbank.config.loader import load_config
from simbank.config.models import MqttConfig
from simbank.daemon.contract import DEFAULT_BASE, Topics
from simbank.daemon.mqtt import BrokerError, StateWatcher
from simbank.daemon.table import render_status
from simbank.errors import ConfigError

EXIT_OK, EXIT_ERROR, EXIT_UNREACHABLE, EXIT_NOTHING = 0, 1, 69, 3


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="simbankctl", description="control simbank gateways over MQTT")
    p.add_argument("--config", "-c", help="read broker settings from the daemon's simbank.toml")
    p.add_argument("--host", default=os.environ.get("SIMBANK_MQTT_HOST"))
    p.add_argument(
        "--port", type=int, default=int(os.environ.get("SIMBANK_MQTT_PORT", "0")) or None
    )
    p.add_argument("--base", default=os.environ.get("SIMBANK_BASE_TOPIC"))
    p.add_argument(
        "--gateway",
        "-g",
        default=os.environ.get("SIMBANK_GATEWAY"),
        help="gateway id (default: every gateway on the broker)",
    )
    sub = p.add_subparsers(dest="command", required=True)
    status = sub.add_parser("status", help="table of modems and SIMs")
    status.add_argument("--json", action="store_true", help="print the raw retained state")
    status.add_argument(
        "--wait", type=float, default=1.0, help="seconds of quiet that end the retained-state read"
    )
    return p


def _mqtt_settings(args: argparse.Namespace) -> tuple[MqttConfig, str, str | None]:
    cfg = MqttConfig()
    gateway = args.gateway
    if args.config:
        full = load_config(args.config)
        cfg = full.mqtt
        gateway = gateway or full.gateway.id
    updates: dict[str, object] = {}
    if args.host:
        updates["host"] = args.host
    if args.port:
        updates["port"] = args.port
    if updates:
        cfg = MqttConfig.model_validate({**cfg.model_dump(), **updates})
    return cfg, args.base or cfg.base_topic or DEFAULT_BASE, gateway


async def _status(
    cfg: MqttConfig, base: str, gateway: str | None, as_json: bool, wait: float
) -> int:
    watcher = StateWatcher(cfg, base, f"simbankctl-{os.getpid()}", gateway=gateway)
    await watcher.run(until_quiet_s=wait)
    if as_json:
        print(json.dumps(watcher.state, indent=2, sort_keys=True))
        return EXIT_OK if watcher.state else EXIT_NOTHING
    gateways = watcher.gateways()
    if not gateways:
        print(f"no simbank gateway found under {base}/ on {cfg.host}:{cfg.port}", file=sys.stderr)
        return EXIT_NOTHING
    for gw in gateways:
        print(render_status(watcher.state, Topics(base, gw)))
        print()
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg, base, gateway = _mqtt_settings(args)
        return asyncio.run(_status(cfg, base, gateway, args.json, args.wait))
    except ConfigError as exc:
        print(f"simbankctl: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokerError as exc:
        print(f"simbankctl: cannot reach the broker: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE


if __name__ == "__main__":
    sys.exit(main())
