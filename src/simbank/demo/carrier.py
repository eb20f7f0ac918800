"""What the world does to the bank during the demo's day, outside the daemon's control: the
carrier blocks a SIM an hour in (a fraud review: its registration is denied from then on),
customers text back now and then, and an operator reviews an open circuit breaker.

All of it goes through the simulator's own knobs (``Carrier.block``,
``SimulatedBank.send_sms``) or the gateway's MQTT contract (``traffic/resume``); the daemon
is told nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import structlog

from simbank.clock import Clock
from simbank.demo.dialer import Requester
from simbank.demo.events import EventLog
from simbank.demo.summary import CarrierBlock
from simbank.simulator import SimulatedBank

log = structlog.get_logger(__name__)

CUSTOMER_TEXTS = (
    "Please call me back after 5pm",
    "STOP",
    "Yes, Tuesday works for me",
    "Who is this?",
    "Wrong number, sorry",
)
#: Customers (fictional numbers) who text back.
CUSTOMERS = tuple(f"+447700900{n:03d}" for n in range(200, 260))


@dataclass
class CarrierScript:
    """The carrier's block and the customers' texts, on the day's simulated clock."""

    bank: SimulatedBank
    clock: Clock
    block_modem: str
    block_at: float
    sms_every_s: float = 1500.0
    seed: int = 0
    blocks: list[CarrierBlock] = field(default_factory=list)
    sms_delivered: int = 0

    async def run(self, closes: float) -> None:
        rng = random.Random(self.seed)
        blocked = False
        next_sms = self.clock.now() + self.sms_every_s / 2
        while self.clock.now() < closes:
            now = self.clock.now()
            if not blocked and now >= self.block_at:
                blocked = self._block()
            if now >= next_sms:
                self._text(rng)
                next_sms = now + self.sms_every_s * rng.uniform(0.5, 1.5)
            await self.clock.sleep(60.0)

    def _block(self) -> bool:
        """Block the SIM in use in ``block_modem`` (registration denied from now on)."""
        card = self.bank.modems[self.block_modem].sim
        if card is None:
            return False
        block = self.bank.carrier.block(card.iccid, "fraud_review")
        self.blocks.append(CarrierBlock(card.iccid, block.reason, self.clock.now()))
        log.info("demo_carrier_blocked", iccid=card.iccid, modem=self.block_modem)
        return True

    def _text(self, rng: random.Random) -> None:
        """A customer texts the SIM in use in a random modem."""
        modem = rng.choice(sorted(self.bank.modems))
        card = self.bank.modems[modem].sim
        if card is None:
            return
        self.bank.send_sms(card.iccid, rng.choice(CUSTOMERS), rng.choice(CUSTOMER_TEXTS))
        self.sms_delivered += 1


@dataclass
class Operator:
    """The operator on duty: reviews the blocks when the circuit breaker opens, then resumes
    traffic (``traffic/resume``) after ``review_s`` simulated seconds."""

    client: Requester
    clock: Clock
    events: EventLog
    review_s: float = 1800.0
    resumed: int = 0

    async def run(self, closes: float) -> None:
        seen = 0
        while self.clock.now() < closes:
            opened = self.events.of("circuit_opened")
            if len(opened) > seen:
                seen = len(opened)
                await self.clock.sleep(self.review_s)
                answer = await self.client.request(
                    "traffic/resume", {"reason": "demo operator: blocked SIMs reviewed"}
                )
                if answer.get("status") == "ok":
                    self.resumed += 1
                continue
            await self.clock.sleep(60.0)
