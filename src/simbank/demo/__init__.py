"""``simbankd demo``: the daemon's main job on a simulated bank, with a private broker.

This module stays light (argparse only): ``simbankd --help`` must not import the daemon.
"""

from __future__ import annotations

import argparse
import asyncio


def add_arguments(demo: argparse.ArgumentParser) -> None:
    """The ``simbankd demo`` options."""
    demo.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many seconds (default: until Ctrl-C)",
    )
    demo.add_argument("--workdir", default=None, help="keep ports, logs and state here")
    demo.add_argument(
        "--until-online",
        action="store_true",
        help="stop as soon as every modem is online with its SIM",
    )


def main(args: argparse.Namespace) -> int:
    """Run the demo for parsed ``simbankd demo`` arguments."""
    from simbank.demo.runner import run_demo  # noqa: PLC0415 - the daemon only when asked

    return asyncio.run(
        run_demo(duration=args.duration, workdir=args.workdir, until_online=args.until_online)
    )
