"""``simbankd scan``: its options, and the run that prints the config block and udev lines.

Light at import (argparse only), like ``simbank.demo``: ``simbankd --help`` loads no driver.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TextIO


def add_arguments(scan: argparse.ArgumentParser) -> None:
    """The ``simbankd scan`` options."""
    scan.add_argument(
        "--ports",
        nargs="+",
        metavar="GLOB",
        default=None,
        help="ports to probe (default: /dev/ttyUSB* /dev/ttyACM* /dev/serial/by-id/*)",
    )
    scan.add_argument("--baud", type=int, default=115200, help="serial speed (default 115200)")
    scan.add_argument(
        "--timeout",
        type=float,
        default=2.0,
        help="seconds to wait for each answer (default 2)",
    )
    scan.add_argument("--json", action="store_true", help="machine-readable output")
    scan.add_argument(
        "--assume-free",
        action="store_true",
        help="probe real serial ports even when other users' open files cannot be seen "
        "(not root): only if nothing else (ModemManager, minicom) may be using them",
    )


def main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Probe, print, exit 0 (also when no modem answered: that is an answer too)."""
    from simbank.scan.grouping import group_modems  # noqa: PLC0415 - drivers only when asked
    from simbank.scan.ports import DEFAULT_PATTERNS  # noqa: PLC0415
    from simbank.scan.probe import scan  # noqa: PLC0415
    from simbank.scan.render import json_report, text_report  # noqa: PLC0415

    stream = out or sys.stdout
    if args.timeout <= 0:
        print("simbankd scan: --timeout must be positive", file=sys.stderr)
        return 2
    patterns = tuple(args.ports or DEFAULT_PATTERNS)
    findings = asyncio.run(
        scan(patterns, baudrate=args.baud, timeout=args.timeout, assume_free=args.assume_free)
    )
    modems = group_modems(findings)
    if args.json:
        json.dump(json_report(findings, modems), stream, indent=2)
        stream.write("\n")
    else:
        stream.write(text_report(findings, modems, patterns))
    return 0
