"""The restart-safety loop: traffic, a SIGKILL at a chosen moment, restart, retry, check.

Each cycle starts the daemon, waits until it identified the modem's SIM again, checks the
ledger, retries every request the last kill interrupted (same transaction, one at a time,
counting what the simulated modem does meanwhile), then drives a random mix of calls, SMS
and slot selects (plus inbound SMS from the network) and kills the daemon: inside the
simulator's handler for a dial / SMS / slot select, after a random delay, while idle, or
while the daemon is still starting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from killrig import KillRig

PHASES = ("call", "sms", "switch", "idle", "startup")
PHASE_WEIGHTS = (30, 25, 25, 12, 8)
KINDS = ("call", "sms", "switch")
#: How a cycle's own request is answered before the kill lands (or not at all).
REQUEST_TIMEOUT_S = 60.0


@dataclass
class Req:
    kind: str  # call, sms, switch
    command: str
    payload: dict[str, Any]

    @property
    def txn(self) -> str:
        return str(self.payload["transaction"])

    @property
    def key(self) -> str:
        """The transaction as the daemon keys it (canonical JSON)."""
        return json.dumps(self.txn, sort_keys=True, separators=(",", ":"))


@dataclass
class Figures:
    kills: int = 0
    phases: Counter[str] = field(default_factory=Counter)
    in_handler: Counter[str] = field(default_factory=Counter)
    restarts: int = 0
    restart_s: list[float] = field(default_factory=list)
    cycle_s: list[float] = field(default_factory=list)
    requests: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    retried: int = 0
    retry_states: Counter[str] = field(default_factory=Counter)
    repeated: int = 0
    inbound_sent: int = 0
    inbound_duplicated: int = 0
    inbound_lost: int = 0
    problems: list[str] = field(default_factory=list)

    def report(self, wall_s: float) -> str:
        restart = sorted(self.restart_s) or [0.0]
        return (
            f"kills {self.kills} by phase {dict(self.phases)} "
            f"(inside a simulator handler: {dict(self.in_handler)}); restarts {self.restarts}; "
            f"wall {wall_s:.0f} s, {wall_s / max(1, self.kills):.2f} s per cycle, "
            f"{self.kills / max(wall_s, 1e-9):.3f} cycles/s; restart-to-ready "
            f"median {restart[len(restart) // 2]:.2f} s max {restart[-1]:.2f} s; "
            f"requests {self.requests} answers {dict(self.answers)}; retried {self.retried} "
            f"{dict(self.retry_states)}; repeated actions {self.repeated}; inbound SMS sent "
            f"{self.inbound_sent} duplicated {self.inbound_duplicated} lost {self.inbound_lost}; "
            f"problems {len(self.problems)}"
        )


class KillLoop:
    """Runs ``kills`` cycles on ``rig``; every problem found lands in ``figures.problems``."""

    def __init__(self, rig: KillRig, seed: int, *, max_call_s: int = 1) -> None:
        self.rig = rig
        self.rng = random.Random(seed)
        self.figures = Figures()
        self.pending: list[Req] = []
        self.inbound: list[str] = []
        self.max_call_s = max_call_s
        self._serial = 0
        self.slots = [c.iccid for c in rig.modem.slots if c is not None]

    # -- requests --------------------------------------------------------------------------
    def _txn(self, kind: str) -> str:
        self._serial += 1
        return f"{kind}-{self._serial}-{self.rng.getrandbits(32):08x}"

    def new_request(self, kind: str) -> Req:
        txn = self._txn(kind)
        number = f"+155501000{self.rng.randrange(90):02d}"  # 00-89 answer
        if kind == "call":
            payload = {"number": number, "max_duration_s": self.max_call_s}
            return Req(kind, "call", {**payload, "transaction": txn})
        if kind == "sms":
            return Req(
                kind, "sms/send", {"number": number, "text": f"out {txn}", "transaction": txn}
            )
        slot = 3 - (self.rig.modem.active_slot or 1)
        return Req(kind, "sim/select", {"modem": "m1", "slot": slot, "transaction": txn})

    def _answered(self, answer: dict[str, Any]) -> None:
        self.figures.answers[answer.get("code") or answer.get("status", "?")] += 1

    def send_inbound(self) -> None:
        self._serial += 1
        text = f"hello {self._serial} {self.rng.getrandbits(24):06x}"
        iccid = self.rng.choice(self.slots)
        self.rig.bank.send_sms(iccid, "+15550100150", text)
        self.inbound.append(text)
        self.figures.inbound_sent += 1

    # -- one restart -----------------------------------------------------------------------
    async def restart(self) -> None:
        rig = self.rig
        rig.start()
        self.figures.restarts += 1
        self.figures.restart_s.append(await rig.ready())
        self.problems(rig.check_ledger())

    def problems(self, found: list[str]) -> None:
        self.figures.problems += found
        if found:
            raise AssertionError(
                f"after {self.figures.kills} kills: {found}\n{self.rig.log_tail()}"
            )

    async def retry_pending(self) -> None:
        """Send each interrupted request again (same transaction); nothing may happen twice."""
        pending, self.pending = self.pending, []
        for req in pending:
            await self._retry(req, first=True)
            if self.rng.random() < 0.3:
                await self._retry(req, first=False)

    async def _retry(self, req: Req, *, first: bool) -> None:
        rig = self.rig
        state = rig.transaction_state(req.command, req.key)
        stored = rig.query(
            "SELECT response FROM responses WHERE command = ? AND txn = ?", (req.command, req.key)
        )
        before = rig.taps.counts()
        try:
            answer = await rig.client.request(req.command, req.payload, timeout=REQUEST_TIMEOUT_S)
        except TimeoutError:
            self.problems([f"retry of {req} ({state}) not answered"])
            raise
        delta = [a - b for a, b in zip(rig.taps.counts(), before, strict=True)]
        if first:
            self.figures.retried += 1
            self.figures.retry_states[state] += 1
            self._answered(answer)
        allowed = [0, 0, 0]
        if state == "new":  # never reached the daemon: carried out now, once
            allowed = (
                [1, 0, 1] if req.kind == "call" else [0, 1, 1] if req.kind == "sms" else [0, 0, 1]
            )
        elif state == "started" and answer.get("code") != "interrupted":
            self.problems([f"{req.txn}: started before the kill, answered {answer}"])
        elif state == "answered" and answer != json.loads(stored[0][0]):
            self.problems([f"{req.txn}: stored answer {stored[0][0]!r}, got {answer}"])
        if any(d > a for d, a in zip(delta, allowed, strict=True)):
            self.figures.repeated += 1
            self.problems([f"{req.txn} ({state}) repeated: dials/sms/selects {delta}"])

    # -- one cycle ---------------------------------------------------------------------------
    async def cycle(self) -> None:
        rig = self.rig
        started = time.monotonic()
        phase = self.rng.choices(PHASES, PHASE_WEIGHTS)[0]
        if phase == "startup":
            rig.start()
            self.figures.restarts += 1
            await asyncio.sleep(self.rng.uniform(0.05, 1.5))
            await self._kill("startup")
            self.figures.cycle_s.append(time.monotonic() - started)
            return
        await self.restart()
        await self.retry_pending()
        # Every retry was answered: any booking of this life has its outcome by now.
        self.problems(self.rig.check_ledger())
        self.problems(await self.rig.usage_published())
        if self.rng.random() < 0.3:
            self.send_inbound()
        if phase == "idle":
            reqs = [self.new_request(self.rng.choice(KINDS))] if self.rng.random() < 0.5 else []
        else:
            reqs = [self.new_request(phase)]
        if self.rng.random() < 0.3:
            reqs.append(self.new_request(self.rng.choice(KINDS)))
        in_handler = phase != "idle" and self.rng.random() < 0.5
        if in_handler:
            rig.taps.kill_on = {"call": "dial", "sms": "sms", "switch": "select"}[phase]
        tasks = {
            req.txn: asyncio.create_task(
                rig.client.request(req.command, req.payload, timeout=REQUEST_TIMEOUT_S),
                name=f"kill-loop-{req.txn}",
            )
            for req in reqs
        }
        self.figures.requests += len(reqs)
        try:
            kind = await self._aim(phase, in_handler, reqs, tasks)
            await self._kill(kind)
        finally:
            rig.taps.kill_on = None
            for req in reqs:
                task = tasks[req.txn]
                if task.done() and not task.cancelled() and task.exception() is None:
                    self._answered(task.result())
                else:
                    task.cancel()
                    self.pending.append(req)
            await asyncio.gather(*tasks.values(), return_exceptions=True)
        if self.rng.random() < 0.3:
            self.send_inbound()  # while the daemon is down
        self.figures.cycle_s.append(time.monotonic() - started)

    async def _aim(
        self, phase: str, in_handler: bool, reqs: list[Req], tasks: dict[str, asyncio.Task[Any]]
    ) -> str:
        """Wait for the moment to kill; returns the phase the kill hits."""
        rig = self.rig
        if in_handler:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    while rig.alive:
                        await asyncio.sleep(0.005)
            if rig.taps.fired is not None:
                self.figures.in_handler[rig.taps.fired] += 1
                rig.taps.fired = None
                return phase
            return self._busy(reqs, tasks)  # refused (quota) or not needed: kill now
        if phase == "call":
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    while rig.modem.call is None and not all(t.done() for t in tasks.values()):
                        await asyncio.sleep(0.005)
            await asyncio.sleep(self.rng.uniform(0, 1.3 * self.max_call_s))
        elif phase in ("sms", "switch"):
            await asyncio.sleep(self.rng.uniform(0, 0.4))
        else:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(20):
                    await asyncio.gather(*tasks.values(), return_exceptions=True)
            await asyncio.sleep(self.rng.uniform(0, 0.3))
        return self._busy(reqs, tasks)

    def _busy(self, reqs: list[Req], tasks: dict[str, asyncio.Task[Any]]) -> str:
        """What the daemon is doing right now, seen from the simulator and the requests."""
        if self.rig.modem.call is not None:
            return "call"
        if self.rig.modem.cfun != 1:
            return "switch"
        running = {req.kind for req in reqs if not tasks[req.txn].done()}
        for kind in ("sms", "switch", "call"):
            if kind in running:
                return kind
        return "idle"

    async def _kill(self, phase: str) -> None:
        self.rig.kill()
        self.rig.reap()
        self.figures.kills += 1
        self.figures.phases[phase] += 1

    # -- the end -------------------------------------------------------------------------------
    async def finish(self) -> None:
        """Restart once more, retry, visit both SIMs, and account for every inbound SMS."""
        rig = self.rig
        await self.restart()
        await self.retry_pending()
        for _ in self.slots:
            req = self.new_request("switch")
            answer = await rig.client.request(req.command, req.payload, timeout=60)
            assert answer["status"] == "ok", answer
            await asyncio.sleep(0.5)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(20):
                while any(text not in rig.stored_inbound() for text in self.inbound):
                    await asyncio.sleep(0.1)
        stored = rig.stored_inbound()
        self.figures.inbound_lost = sum(1 for text in self.inbound if text not in stored)
        self.figures.inbound_duplicated = sum(count - 1 for count in stored.values())
        sent = Counter(text for _, _, text in rig.taps.sms)
        self.figures.repeated += sum(count - 1 for count in sent.values())
        self.problems(rig.check_ledger())
