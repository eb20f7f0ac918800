"""``simbank-sim --scenario FILE [--dir DIR]``: run a simulated modem bank on PTYs."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
from pathlib import Path

import structlog
from pydantic import ValidationError

from simbank.simulator.bank import SimulatedBank
from simbank.simulator.scenario import Scenario, demo_scenario, load_scenario


async def _run(scenario: Scenario, directory: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with SimulatedBank(scenario, directory=directory) as bank:
        for modem in bank.modems.values():
            second = f" {modem.aux_link}" if modem.aux_link is not None else ""
            print(f"{modem.id} {modem.dialect.name} {modem.path}{second}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog="simbank-sim", description=__doc__)
    parser.add_argument("--scenario", type=Path, help="scenario TOML (default: built-in demo)")
    parser.add_argument("--dir", type=Path, help="directory for the modem symlinks")
    args = parser.parse_args(argv)
    # stdout carries exactly one line per modem (a fourth field: its second AT port, if any);
    # logs go to stderr.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    try:
        scenario = load_scenario(args.scenario) if args.scenario else demo_scenario()
    except (OSError, ValueError, ValidationError) as exc:
        print(f"simbank-sim: {args.scenario}: {exc}", file=sys.stderr)
        return 78
    directory = args.dir or scenario.directory
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="simbank-sim-"))
    asyncio.run(_run(scenario, directory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
