"""The gateway's retained ``capacity`` summary (issue 15: fleet capacity). Stub: filled in."""

from __future__ import annotations

import asyncio

from simbank.daemon.runtime import BankRuntime


class CapacityPublisher:
    """Publishes ``<base>/<gw>/capacity`` (retained) while the daemon runs."""

    def __init__(self, runtime: BankRuntime) -> None:
        self.runtime = runtime

    async def run(self) -> None:
        await asyncio.Event().wait()
