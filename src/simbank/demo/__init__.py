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
        help="stop as soon as every modem is online with its SIM (no traffic)",
    )
    demo.add_argument(
        "--time-scale",
        type=_scale,
        default=120.0,
        help="simulated seconds per real second (default 120: an hour in 30 s, the day of "
        "08:00-20:00 in six minutes)",
    )
    demo.add_argument("--seed", type=int, default=0, help="seeds the dialer and the customers")


def _scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1.0 <= value <= 3600.0:
        raise argparse.ArgumentTypeError("the time scale must be between 1 and 3600")
    return value


def main(args: argparse.Namespace) -> int:
    """Run the demo for parsed ``simbankd demo`` arguments."""
    from simbank.demo.runner import run_demo  # noqa: PLC0415 - the daemon only when asked

    return asyncio.run(
        run_demo(
            duration=args.duration,
            workdir=args.workdir,
            until_online=args.until_online,
            time_scale=args.time_scale,
            seed=args.seed,
        )
    )
