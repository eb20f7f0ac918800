"""The simulated call centre's dialer: agents that ask the gateway for calls and SMS over MQTT,
as a real dialer would (``call`` and ``sms/send`` requests, nothing else), from the day's
opening to its close.

Paced in simulated time: an agent wraps up after each call, and when the gateway refuses
(quota, circuit) it comes back when the refusal says the SIM frees up, or a while later.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import structlog

from simbank.clock import Clock
from simbank.demo.summary import Tally

log = structlog.get_logger(__name__)

#: Wall-clock guard on one request (a call waits for its modem at most 120 s in the daemon).
REQUEST_TIMEOUT_S = 180.0


class Requester(Protocol):
    async def request(
        self,
        command: str,
        payload: dict[str, Any] | bytes | None = None,
        *,
        timeout: float = 30.0,  # noqa: ASYNC109 - the RequestClient's API
        transaction: Any = None,
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Campaign:
    """What the agents do (simulated seconds)."""

    agents: int = 10
    wrap_up_s: float = 45.0
    max_call_s: int = 300
    sms_share: float = 0.15
    dnc_share: float = 0.03
    #: A refused agent comes back after this long at least / at most.
    retry_min_s: float = 120.0
    retry_max_s: float = 1800.0
    sms_text: str = "Thanks for your time today. Reply STOP to opt out."


def retry_after(answer: dict[str, Any], now: float, campaign: Campaign) -> float:
    """How long a refused agent waits: until the refusal's ``frees_at`` when it names one,
    within the campaign's bounds."""
    frees = (answer.get("detail") or {}).get("frees_at")
    wait = campaign.retry_min_s
    if isinstance(frees, str):
        with contextlib.suppress(ValueError):
            wait = datetime.fromisoformat(frees).timestamp() - now
    return min(campaign.retry_max_s, max(campaign.retry_min_s, wait))


class Dialer:
    """``await Dialer(...).run(closes)``: the agents until the day's close."""

    def __init__(
        self,
        client: Requester,
        clock: Clock,
        tally: Tally,
        numbers: Sequence[str],
        do_not_call: Sequence[str],
        *,
        campaign: Campaign | None = None,
        seed: int = 0,
    ) -> None:
        self.client = client
        self.clock = clock
        self.tally = tally
        self.numbers = list(numbers)
        self.do_not_call = list(do_not_call)
        self.campaign = campaign or Campaign()
        self.rng = random.Random(seed)

    def next_request(self) -> tuple[str, dict[str, Any]]:
        """The next request an agent makes: a call (now and then to a number that turns out
        to be on the do-not-call list) or an SMS."""
        c = self.campaign
        if self.do_not_call and self.rng.random() < c.dnc_share:
            number = self.rng.choice(self.do_not_call)
        else:
            number = self.rng.choice(self.numbers)
        if self.rng.random() < c.sms_share:
            return "sms/send", {"number": number, "text": c.sms_text}
        return "call", {"number": number, "max_duration_s": c.max_call_s}

    async def run(self, closes: float) -> None:
        async with asyncio.TaskGroup() as tg:
            for n in range(self.campaign.agents):
                tg.create_task(self._agent(n, closes), name=f"demo-agent-{n}")

    async def _agent(self, n: int, closes: float) -> None:
        c = self.campaign
        await self.clock.sleep(n * c.wrap_up_s / max(1, c.agents))  # staggered log-ins
        while self.clock.now() < closes:
            command, payload = self.next_request()
            try:
                answer = await self.client.request(command, payload, timeout=REQUEST_TIMEOUT_S)
            except TimeoutError:
                self.tally.no_answer += 1
                await self.clock.sleep(c.retry_min_s)
                continue
            self.tally.record(command, answer, at=self.clock.now())
            if answer.get("status") == "ok":
                await self.clock.sleep(c.wrap_up_s)
            else:
                await self.clock.sleep(retry_after(answer, self.clock.now(), c))
