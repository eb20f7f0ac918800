"""``simbankd``: run the daemon, check a config file, scan the serial ports for modems, or run
the zero-setup demo."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from simbank import __version__
from simbank.config.loader import EXIT_CONFIG, load_config
from simbank.config.models import Config
from simbank.demo import add_arguments as add_demo_arguments
from simbank.demo import main as run_demo
from simbank.errors import ConfigError, SimbankError
from simbank.scan.command import add_arguments as add_scan_arguments
from simbank.scan.command import main as run_scan


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="simbankd", description="simbank SIM-bank controller")
    parser.add_argument("--version", action="version", version=f"simbankd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--config", "-c", required=True, help="path of simbank.toml")
    check = sub.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("config", help="path of simbank.toml")
    scan = sub.add_parser(
        "scan",
        help="probe the serial ports (read-only) and print a [[modems]] block and udev rules",
    )
    add_scan_arguments(scan)
    demo = sub.add_parser("demo", help="simulated modem bank + private mosquitto + daemon")
    add_demo_arguments(demo)
    return parser


def _config_error(exc: ConfigError) -> int:
    for line in exc.lines:
        print(line, file=sys.stderr)
    return EXIT_CONFIG


def preflight(config: Config, source: str) -> list[str]:
    """What ``load_config`` cannot see: the files and addresses the config names.

    Raises :class:`ConfigError` (``file: key: reason`` lines) for an MQTT password file that
    cannot be read or is empty, TLS files that do not load, a password that would cross the
    network in clear, or metrics on a non-loopback address without ``allow_remote``. Returns
    notes that are not errors: a modem's serial port that does not exist (yet) is one, since
    modems are plugged in later and the daemon reports them ``absent`` until then.
    """
    from simbank.integrations.metrics import check_host  # noqa: PLC0415 - after the config is valid
    from simbank.mqtt import client_options  # noqa: PLC0415

    problems = []
    try:
        client_options(config.mqtt, "check-config", "check-config")
    except ConfigError as exc:
        problems += exc.lines
    if config.metrics.enabled:
        try:
            check_host(config.metrics.host, allow_remote=config.metrics.allow_remote)
        except ConfigError as exc:
            problems += exc.lines
    if problems:
        lines = [f"{source}: {line}" for line in problems]
        raise ConfigError(lines[0], lines)
    return [
        f"{source}: note: modems[{index}].port {modem.port} does not exist now; "
        f"modem {modem.id} is reported absent until it appears"
        for index, modem in enumerate(config.modems)
        if not Path(modem.port).exists()
    ]


async def _run(config_path: str) -> int:
    config = load_config(config_path)
    preflight(config, config_path)
    from simbank.daemon.app import Daemon  # noqa: PLC0415 - a bad config exits before imports
    from simbank.daemon.logs import configure_logging  # noqa: PLC0415

    configure_logging(config.logging.level, config.logging.format)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    daemon = Daemon(config, config_path=config_path)
    loop.add_signal_handler(signal.SIGHUP, daemon.reload)
    await daemon.run(stop)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "check-config":
            config = load_config(args.config)
            notes = preflight(config, args.config)
            print(
                f"{args.config}: ok ({len(config.modems)} modems, {len(config.policies)} policies)"
            )
            for note in notes:
                print(note)
            return 0
        if args.command == "run":
            return asyncio.run(_run(args.config))
        if args.command == "scan":
            from simbank.daemon.logs import configure_logging  # noqa: PLC0415

            # stdout is the config block: logs go to stderr, errors only unless asked.
            configure_logging("error", "console", stream=sys.stderr)
            return run_scan(args)
        return run_demo(args)
    except ConfigError as exc:
        return _config_error(exc)
    except SimbankError as exc:
        print(f"simbankd: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
