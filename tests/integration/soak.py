"""The fault soak: a simulated bank with traffic flowing while a fault injector breaks things.

``simbankd run`` runs as a subprocess (as systemd runs it), so it can be SIGKILLed and
restarted; the simulator, mosquitto (restartable), the traffic and the fault injector live in
the test. Invariants are checked while it runs and at the end; ``SoakReport`` holds the counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiomqtt
from bankrig import start_daemon, stop_daemon

from simbank.bank.usage import local_day_bounds
from simbank.config.models import MqttConfig
from simbank.contract import Topics
from simbank.mosquitto import PrivateMosquitto
from simbank.mqtt import RequestClient, StateWatcher
from simbank.simulator import Scenario, SimulatedBank
from simbank.simulator.dialects import DIALECTS as DIALECT_SPECS
from simbank.simulator.scenario import ModemSpec, OperatorLimits, SimSpec, Timing, make_iccid
from simbank.store.ledger import LEDGER_FILE

# The policy the daemon enforces; the simulated carrier blocks any SIM that breaks it.
CALLS_PER_HOUR = 20
CALLS_PER_DAY = 60
MIN_CALL_GAP_S = 8
SMS_PER_DAY = 12
LIMIT_REASONS = {"calls_per_hour", "calls_per_day", "min_call_gap", "sms_per_day"}
RECOVERY_LIMIT_S = 30.0
#: Without a recovery limit (the default suite, on a loaded machine), how long the end of the
#: run waits for every modem and every announced SMS: a hang guard, not a figure.
OUTCOME_GUARD_S = 150.0
SETTLE_S = 5.0  # ready this long without a break = recovered
#: At the end, SMS still announced may wait behind the longest AT command (a dial: 40 s).
INBOUND_DRAIN_S = 45.0
DIALECTS = ("quectel", "simcom", "huawei", "fibocom", "generic")


def soak_scenario(modems: int) -> Scenario:
    """``modems`` modems of mixed dialects (two slots where the dialect has two)."""
    specs: list[ModemSpec] = []
    serial = 7000
    for number in range(1, modems + 1):
        dialect = DIALECTS[(number - 1) % len(DIALECTS)]
        slots = []
        for _ in range(DIALECT_SPECS[dialect].max_slots):
            serial += 1
            slots.append(SimSpec(iccid=make_iccid(serial), registration_delay_s=0.2))
        specs.append(ModemSpec(id=f"m{number}", dialect=dialect, slots=slots))  # type: ignore[arg-type]
    return Scenario(
        timing=Timing(boot_s=0.5, sim_init_s=0.3, ring_s=0.3, talk_s=1.5, no_answer_s=3),
        # A gap a little under the policy's: booking and dialling are a moment apart. The
        # carrier counts a rolling day, the policy a local calendar day: across midnight
        # the policy may allow its day's worth on each side, so the most any rolling day can
        # hold is twice the day's limit.
        carrier={
            "test": OperatorLimits(
                calls_per_hour=CALLS_PER_HOUR,
                calls_per_day=2 * CALLS_PER_DAY,
                min_call_gap_s=MIN_CALL_GAP_S - 4,
                sms_per_day=2 * SMS_PER_DAY,
            )
        },
        modems=specs,
    )


def soak_config(state_dir: Path, port: int, base: str, bank: SimulatedBank) -> str:
    modems = "".join(
        f'[[modems]]\nid = "{mid}"\nport = "{m.path}"\nslots = {len(m.slots)}\n'
        for mid, m in bank.modems.items()
    )
    return (
        f'[gateway]\nid = "gw1"\nstate_dir = "{state_dir}"\npoll_interval_s = 1\n'
        f'timezone = "{SOAK_TZ.key}"\n'
        f'[mqtt]\nport = {port}\nbase_topic = "{base}"\n'
        # Injected blocks must not pause the whole fleet: the breaker has its own tests.
        "[detection]\ndenied_confirm_s = 2\ncircuit_blocks = 1000\n"
        "[rotation]\nmin_dwell_s = 0\nsim_ready_timeout_s = 10\nregistration_timeout_s = 10\n"
        "[policies.default]\n"
        f"calls_per_hour = {CALLS_PER_HOUR}\ncalls_per_day = {CALLS_PER_DAY}\n"
        f"min_call_gap_s = {MIN_CALL_GAP_S}\nsms_per_day = {SMS_PER_DAY}\n"
        "calls_per_destination_per_day = 50\nquiet_hours = []\n"
        '[logging]\nformat = "json"\n' + modems
    )


#: The gateway's time zone (``SIMBANK_SOAK_TZ``, default UTC): a zone whose midnight falls
#: inside the run (``Etc/GMT-1`` for a run across 23:00 UTC) shows the day starting again.
SOAK_TZ = ZoneInfo(os.environ.get("SIMBANK_SOAK_TZ", "UTC"))
#: Seconds before midnight under which the final checks wait for the new day: stopping the
#: daemon may take 20 s, and it must not show the new day to some SIMs only.
MIDNIGHT_MARGIN_S = 30.0
#: Seconds after midnight by which the daemon has published every SIM's new day (it looks at
#: each once a second, 64 at a time).
MIDNIGHT_SETTLE_S = 10.0


def _day_start(epoch: float) -> float:
    """The start of ``epoch``'s day in the soak gateway's time zone."""
    return local_day_bounds(epoch, SOAK_TZ)[0]


async def _clear_of_midnight() -> None:
    """Return at a moment at least :data:`MIDNIGHT_SETTLE_S` past a midnight and
    :data:`MIDNIGHT_MARGIN_S` before the next, so the daemon stopped then has shown the day the
    check compares."""
    now = time.time()
    start, end = local_day_bounds(now, SOAK_TZ)
    if end - now < MIDNIGHT_MARGIN_S:
        await asyncio.sleep(end + MIDNIGHT_SETTLE_S - now)
    elif now - start < MIDNIGHT_SETTLE_S:
        await asyncio.sleep(start + MIDNIGHT_SETTLE_S - now)


@dataclass
class Recovery:
    modem: str
    fault: str
    cleared_at: float
    recovered_at: float | None = None


@dataclass
class SoakReport:
    duration_s: float = 0.0
    modems: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    sms_out: Counter[str] = field(default_factory=Counter)
    rotations: Counter[str] = field(default_factory=Counter)
    retried: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    sms_in_sent: int = 0
    sms_in_stored: int = 0
    sms_in_on_sim: int = 0
    recoveries: int = 0
    slowest_recovery_s: float = 0.0
    slowest_recovery: str = ""
    daemon_lives: int = 0
    rss_samples: list[tuple[float, float]] = field(default_factory=list)
    rss_slope_mb_per_h: float = 0.0
    #: Over the second half of the last life only: past the warm-up (SQLite's page cache fills
    #: to its 2 MB limit in the first minutes), a leak still climbs.
    rss_late_slope_mb_per_h: float = 0.0
    violations: list[str] = field(default_factory=list)
    carrier_calls: int = 0
    carrier_sms: int = 0
    bookings: int = 0
    bookings_charged_in_full: int = 0

    def rss_profile(self, points: int = 6) -> str:
        """RSS at evenly spaced moments of the last life: a leak climbs, a warm-up levels off."""
        samples = self.rss_samples
        if not samples:
            return "-"
        picks = [samples[round(i * (len(samples) - 1) / (points - 1))] for i in range(points)]
        return ", ".join(f"{t:.0f}: {mb:.1f}" for t, mb in picks)

    def lines(self) -> list[str]:
        slow = f"{self.slowest_recovery_s:.1f} s ({self.slowest_recovery})"
        first, last = (
            (self.rss_samples[0][1], self.rss_samples[-1][1]) if self.rss_samples else (0.0, 0.0)
        )
        return [
            f"duration {self.duration_s:.0f} s, {self.modems} modems, "
            f"{self.daemon_lives} daemon lives",
            f"faults injected {sum(self.faults.values())}: {dict(sorted(self.faults.items()))}",
            f"calls requested {sum(self.calls.values())}: {dict(sorted(self.calls.items()))}; "
            f"carrier saw {self.carrier_calls}",
            f"sms sent {sum(self.sms_out.values())}: {dict(sorted(self.sms_out.items()))}; "
            f"carrier saw {self.carrier_sms}",
            f"rotations {sum(self.rotations.values())}: {dict(sorted(self.rotations.items()))}",
            f"inbound sms {self.sms_in_sent}: stored once {self.sms_in_stored}, "
            f"still on the SIM {self.sms_in_on_sim}",
            f"bookings {self.bookings} ({self.bookings_charged_in_full} charged in full); "
            f"requests retried with their transaction {self.retried}",
            f"recoveries {self.recoveries}, slowest {slow}",
            f"daemon RSS last life {first:.1f} → {last:.1f} MB, "
            f"slope {self.rss_slope_mb_per_h:+.2f} MB/h "
            f"({self.rss_late_slope_mb_per_h:+.2f} over its second half); "
            f"over that life (s: MB) {self.rss_profile()}",
            f"ledger SIM states at the end {dict(self.quarantined)}",
            f"violations {len(self.violations)}",
        ]


def rss_mb(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def slope_per_hour(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per hour."""
    if len(samples) < 3:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0
    cov = sum((t - mean_t) * (v - mean_v) for t, v in samples)
    return cov / var * 3600


class FaultSoak:
    """Runs the soak for ``duration_s`` seconds; ``run()`` returns the report."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        duration_s: float,
        modems: int = 32,
        seed: int | None = None,
        fault_every_s: float = 2.5,
        quiet_tail_s: float = 25.0,
        kills_before: float = 0.66,
        recovery_limit_s: float | None = RECOVERY_LIMIT_S,
    ) -> None:
        self.tmp = tmp_path
        #: Every modem must be back this soon after its fault clears; ``None`` asserts only
        #: that each comes back (the default suite: no wall-clock bounds on a shared machine).
        self.recovery_limit_s = recovery_limit_s
        self.duration_s = duration_s
        self.seed = seed if seed is not None else random.randrange(1 << 30)
        self.rng = random.Random(self.seed)
        self.scenario = soak_scenario(modems)
        self.fault_every_s = fault_every_s
        self.quiet_tail_s = quiet_tail_s
        #: The daemon is killed only in this first fraction of the run: the last life runs
        #: long, so its RSS slope means something (lower it for a memory run).
        self.kills_before = kills_before
        self.base = f"soak{os.getpid()}"
        self.topics = Topics(self.base, "gw1")
        self.report = SoakReport(modems=modems)
        self.broker = PrivateMosquitto(tmp_path / "mosquitto")
        self.state_dir = tmp_path / "state"
        self.config = tmp_path / "simbank.toml"
        self.log = tmp_path / "daemon.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.watcher: StateWatcher | None = None
        #: When the daemon was stopped for the final checks (wall clock).
        self.stopped_at = time.time()
        self.client: RequestClient | None = None
        self.bank: SimulatedBank | None = None
        self.busy: dict[str, float] = {}  # modem → when its current fault clears
        self.recoveries: list[Recovery] = []
        self.blocked: dict[str, float] = {}  # iccid → when the carrier blocked it
        self.locked: set[str] = set()
        self.inbound: dict[str, str] = {}  # token → iccid
        self.life_started = 0.0
        self.expected_exit = False
        self.faults_until = 0.0
        self._txn = 0
        self._since: dict[str, float] = {}  # modem → only state published after this counts

    # -- plumbing -------------------------------------------------------------------------------
    @property
    def mqtt(self) -> MqttConfig:
        return MqttConfig(port=self.broker.port, base_topic=self.base)

    def _start_daemon(self) -> None:
        self.process = start_daemon(self.config, self.log)
        self.life_started = time.monotonic()
        self.report.daemon_lives += 1
        self.report.rss_samples = []

    def _modem_state(self, modem: str) -> dict[str, Any]:
        assert self.watcher is not None
        return self.watcher.state.get(self.topics.modem(modem), {})

    def _ready(self, modem: str) -> bool:
        state = self._modem_state(modem)
        return state.get("state") == "ready" and _newer(state, self._since.get(modem, 0.0))

    async def _keep_watching(self) -> None:
        """A watcher that rides out broker restarts (its view survives them)."""
        while True:
            self.watcher = self.watcher or StateWatcher(self.mqtt, self.base, "soak-watch")
            # After a broker restart only what the daemon publishes again counts.
            self.watcher.state.clear()
            with contextlib.suppress(aiomqtt.MqttError):
                await self.watcher.run()
            await asyncio.sleep(0.2)

    async def _request(self, command: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Send with a fresh transaction; with no answer (daemon or broker down), retry once
        with the same transaction, as an operator's client would: nothing may happen twice."""
        self._txn += 1
        transaction = f"soak-{self.seed}-{self._txn}"
        for attempt in (1, 2):
            client = self.client
            if client is None:
                await asyncio.sleep(2)
                continue
            try:
                return await client.request(command, payload, timeout=20, transaction=transaction)
            except (TimeoutError, aiomqtt.MqttError):
                if attempt == 1:
                    self.report.retried += 1
        return None

    async def _keep_client(self) -> None:
        while True:
            try:
                async with RequestClient(self.mqtt, self.topics, "soak-client") as client:
                    self.client = client
                    while True:
                        await asyncio.sleep(0.5)
                        assert client._client is not None
                        # A client that lost its broker learns it here.
                        await client._client.publish(f"{self.base}/soak/ping", b"", qos=0)
            except aiomqtt.MqttError:
                self.client = None
                await asyncio.sleep(0.3)

    # -- the run --------------------------------------------------------------------------------
    async def run(self) -> SoakReport:
        started = time.monotonic()
        self.broker.start()
        try:
            async with SimulatedBank(self.scenario, directory=self.tmp / "ports") as bank:
                self.bank = bank
                self.config.write_text(
                    soak_config(self.state_dir, self.broker.port, self.base, bank)
                )
                self._start_daemon()
                await self._main(started)
        finally:
            self._stop_daemon()
            self.broker.stop()
        self.report.duration_s = time.monotonic() - started
        return self.report

    async def _main(self, started: float) -> None:
        async with asyncio.TaskGroup() as tg:
            background = [
                tg.create_task(self._keep_watching(), name="soak-watch"),
                tg.create_task(self._keep_client(), name="soak-client"),
                tg.create_task(self._watch_daemon(), name="soak-daemon-alive"),
                tg.create_task(self._watch_recoveries(), name="soak-recoveries"),
                tg.create_task(self._check_while_running(), name="soak-ledger-checks"),
            ]
            await self._all_ready(60, "initial start")
            self.faults_until = started + self.duration_s - self.quiet_tail_s
            traffic_until = started + self.duration_s - self.quiet_tail_s / 2
            work = [
                tg.create_task(self._calls(traffic_until), name="soak-calls"),
                tg.create_task(self._sms_out(traffic_until), name="soak-sms-out"),
                tg.create_task(self._sms_in(traffic_until), name="soak-sms-in"),
                tg.create_task(self._rotations(traffic_until), name="soak-rotations"),
                tg.create_task(self._faults(), name="soak-faults"),
            ]
            await asyncio.gather(*work)
            # The quiet tail: every fault cleared, every modem back.
            limit = self.recovery_limit_s
            await self._all_ready(OUTCOME_GUARD_S if limit is None else limit, "the quiet tail")
            await asyncio.sleep(3)
            await self._final_checks()
            for task in background:
                task.cancel()

    async def _all_ready(self, timeout: float, when: str) -> None:
        assert self.bank is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.watcher is not None and all(self._ready(m) for m in self.bank.modems):
                return
            await asyncio.sleep(0.1)
        states = {m: self._modem_state(m).get("state") for m in self.bank.modems}
        raise AssertionError(f"not all modems ready in {timeout}s after {when}: {states}")

    async def _watch_daemon(self) -> None:
        """The daemon never exits on its own; sample its RSS."""
        while True:
            process = self.process
            if process is not None and not self.expected_exit:
                code = process.poll()
                if code is not None:
                    self._violate(f"daemon exited on its own with {code}")
                    raise AssertionError(f"daemon exited on its own with {code}")
                rss = rss_mb(process.pid)
                age = time.monotonic() - self.life_started
                if rss is not None and age > 20:  # after the start-up allocations
                    self.report.rss_samples.append((age, rss))
            await asyncio.sleep(1.0)

    async def _watch_recoveries(self) -> None:
        """A modem is back when it has been ready for ``SETTLE_S`` without a break: a hang the
        daemon only notices after it cleared must not count as an instant recovery."""
        streak: dict[str, float] = {}
        while True:
            now = time.monotonic()
            for modem in self._all_modems():
                if self._ready(modem):
                    streak.setdefault(modem, now)
                else:
                    streak.pop(modem, None)
            for rec in self.recoveries:
                if rec.recovered_at is not None:
                    continue
                began = streak.get(rec.modem)
                if began is not None and now - began >= SETTLE_S:
                    rec.recovered_at = max(began, rec.cleared_at)
                elif (
                    self.recovery_limit_s is not None
                    and now - rec.cleared_at > self.recovery_limit_s + SETTLE_S
                ):
                    state = self._modem_state(rec.modem).get("state")
                    self._violate(
                        f"{rec.modem} not back {self.recovery_limit_s:.0f}s after {rec.fault} "
                        f"cleared (state {state})"
                    )
                    rec.recovered_at = float("inf")
            await asyncio.sleep(0.1)

    def _expect_back(self, modem: str, fault: str, *, fresh: bool = False) -> None:
        """The fault on ``modem`` cleared now: it must be ready again within the limit. With
        ``fresh`` (a new daemon) only state published from now on counts."""
        if fresh:
            self._since[modem] = time.time()
        self.recoveries.append(Recovery(modem, fault, time.monotonic()))

    # -- traffic --------------------------------------------------------------------------------
    async def _spawn_paced(
        self, until: float, every_s: float, action: Callable[[], Awaitable[None]]
    ) -> None:
        async with asyncio.TaskGroup() as tg:
            while time.monotonic() < until:
                tg.create_task(action())
                await asyncio.sleep(self.rng.expovariate(1 / every_s))

    async def _calls(self, until: float) -> None:
        async def one() -> None:
            number = f"+155501001{self.rng.randrange(100):02d}"
            answer = await self._request("call", {"number": number, "max_duration_s": 4})
            self.report.calls[_outcome(answer)] += 1

        await self._spawn_paced(until, 0.4, one)

    async def _sms_out(self, until: float) -> None:
        async def one() -> None:
            number = f"+155501001{self.rng.randrange(100):02d}"
            answer = await self._request("sms/send", {"number": number, "text": "soak test"})
            self.report.sms_out[_outcome(answer)] += 1

        await self._spawn_paced(until, 1.5, one)

    async def _rotations(self, until: float) -> None:
        """An operator rotates a modem's SIM now and then (SIM switches under faults)."""
        modems = sorted(self._all_modems())

        async def one() -> None:
            answer = await self._request("sim/rotate", {"modem": self.rng.choice(modems)})
            self.report.rotations[_outcome(answer)] += 1

        await self._spawn_paced(until, 4.0, one)

    async def _sms_in(self, until: float) -> None:
        assert self.bank is not None
        count = 0
        while time.monotonic() < until:
            await asyncio.sleep(self.rng.expovariate(1 / 0.7))
            # The network delivers to a SIM in service: not to one it blocked, nor a locked one.
            out_of_service = self.blocked.keys() | self.locked
            active = [
                card.iccid
                for modem in self.bank.modems.values()
                if modem.plugged
                and (card := modem.sim) is not None
                and card.iccid not in out_of_service
            ]
            if not active:
                continue
            count += 1
            token = f"soak-{self.seed}-{count}"
            iccid = self.rng.choice(active)
            self.bank.send_sms(iccid, "+15550100999", f"{token} hello")
            self.inbound[token] = iccid
        self.report.sms_in_sent = count

    # -- faults ---------------------------------------------------------------------------------
    def _free_modem(self) -> str | None:
        assert self.bank is not None
        now = time.monotonic()
        free = [m for m in self.bank.modems if self.busy.get(m, 0) <= now and self._ready(m)]
        return self.rng.choice(free) if free else None

    async def _faults(self) -> None:
        kinds = {
            "unplug": 4,
            "hang": 3,
            "garbage": 3,
            "urc_storm": 3,
            "block_sim": 1,
            "puk_lock": 1,
            "restart_mosquitto": 0.6,
            "kill_daemon": 0.6,
        }
        names, weights = list(kinds), list(kinds.values())
        # Each whole-gateway fault happens at least once, however the dice fall.
        start = time.monotonic()
        window = self.faults_until - start
        forced = [
            (start + window * min(0.3, self.kills_before / 2), "kill_daemon"),
            (start + window * 0.6, "restart_mosquitto"),
        ]
        async with asyncio.TaskGroup() as tg:
            while time.monotonic() < self.faults_until:
                await asyncio.sleep(self.rng.expovariate(1 / self.fault_every_s))
                kind = self.rng.choices(names, weights)[0]
                if forced and time.monotonic() >= forced[0][0]:
                    kind = forced[0][1]
                if kind == "kill_daemon" and time.monotonic() > start + window * self.kills_before:
                    continue  # the last life runs long: its RSS slope means something
                if kind in {"restart_mosquitto", "kill_daemon"}:
                    # Whole-gateway faults wait for every modem fault to clear.
                    if any(b > time.monotonic() for b in self.busy.values()) or not all(
                        self._ready(m) for m in self._all_modems()
                    ):
                        continue
                    if forced and forced[0][1] == kind:
                        forced.pop(0)
                    await getattr(self, f"_{kind}")()
                    self.report.faults[kind] += 1
                    continue
                modem = self._free_modem()
                if modem is None:
                    continue
                if await self._modem_fault(tg, kind, modem):
                    self.report.faults[kind] += 1

    def _all_modems(self) -> set[str]:
        assert self.bank is not None
        return set(self.bank.modems)

    async def _modem_fault(self, tg: asyncio.TaskGroup, kind: str, modem_id: str) -> bool:
        assert self.bank is not None
        modem = self.bank.modems[modem_id]
        rng = self.rng
        if kind == "unplug":
            hold = rng.uniform(1, 5)
            self.busy[modem_id] = time.monotonic() + hold + SETTLE_S
            modem.unplug()
            tg.create_task(self._later(hold, modem.replug, modem_id, kind))
        elif kind == "hang":
            hold = rng.uniform(2, 8)
            self.busy[modem_id] = time.monotonic() + hold + SETTLE_S
            modem.hang(True)
            tg.create_task(self._later(hold, lambda: modem.hang(False), modem_id, kind))
        elif kind == "garbage":
            modem.inject_garbage(rng.randrange(16, 600))
            self._expect_back(modem_id, kind)
        elif kind == "urc_storm":
            modem.urc_storm(rng.randrange(50, 400))
            self._expect_back(modem_id, kind)
        elif kind in {"block_sim", "puk_lock"}:
            return self._sim_fault(kind, modem_id)
        return True

    def _sim_fault(self, kind: str, modem_id: str) -> bool:
        """Block or PUK-lock the active SIM of a modem whose other SIM is still good."""
        assert self.bank is not None
        modem = self.bank.modems[modem_id]
        card = modem.sim
        if card is None or len(modem.slots) < 2:
            return False
        bad = self.blocked.keys() | self.locked
        if any(c is not None and c.iccid in bad for c in modem.slots):
            return False
        # Its URCs are due in a moment: no other fault on this modem until they are out.
        self.busy[modem_id] = time.monotonic() + SETTLE_S
        if kind == "block_sim":
            self.bank.carrier.block(card.iccid, "soak")
            self.blocked[card.iccid] = time.time()
        else:
            card.set_behaviour("puk")
            self.locked.add(card.iccid)
        return True

    async def _later(
        self, delay: float, clear: Callable[[], None], modem_id: str, kind: str
    ) -> None:
        await asyncio.sleep(delay)
        clear()
        self._expect_back(modem_id, kind)

    async def _restart_mosquitto(self) -> None:
        self.broker.stop()
        await asyncio.sleep(self.rng.uniform(0.5, 3))
        await asyncio.to_thread(self.broker.start)
        for modem in self._all_modems():
            self._expect_back(modem, "restart_mosquitto")

    async def _kill_daemon(self) -> None:
        assert self.process is not None
        self.expected_exit = True
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        await asyncio.sleep(self.rng.uniform(0.2, 2))
        self._start_daemon()
        self.expected_exit = False
        for modem in self._all_modems():
            self._expect_back(modem, "kill_daemon", fresh=True)

    def _stop_daemon(self) -> None:
        self.expected_exit = True
        stop_daemon(self.process)

    # -- the end --------------------------------------------------------------------------------
    async def _final_checks(self) -> None:
        assert self.bank is not None
        report = self.report
        done = [
            (r.recovered_at - r.cleared_at, r)
            for r in self.recoveries
            if r.recovered_at is not None and r.recovered_at != float("inf")
        ]
        report.recoveries = len(done)
        if done:
            took, slowest = max(done, key=lambda pair: pair[0])
            report.slowest_recovery_s = took
            report.slowest_recovery = f"{slowest.modem} after {slowest.fault}"
        if report.rss_samples:
            report.rss_slope_mb_per_h = slope_per_hour(report.rss_samples)
            half = report.rss_samples[-1][0] / 2
            late = [s for s in report.rss_samples if s[0] >= half]
            if len(late) >= 3:
                report.rss_late_slope_mb_per_h = slope_per_hour(late)
        stats = self.bank.carrier.stats
        report.carrier_calls, report.carrier_sms = stats.calls, stats.sms
        for block in stats.blocks:
            if block.reason in LIMIT_REASONS:
                self._violate(f"carrier blocked {block.iccid} for {block.reason}")
        # Let the daemon finish what is in flight, then read the ledger and the retained state.
        # A dial sent into a hang holds its modem for the dial's own 40 s timeout (an AT
        # would abort a real dial, so nothing may jump the queue), and the SMS announced
        # meanwhile are read after it: wait that long for them before judging.
        drain_s = INBOUND_DRAIN_S if self.recovery_limit_s is not None else OUTCOME_GUARD_S
        deadline = time.monotonic() + drain_s
        while self._inbound_waiting() and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        await _clear_of_midnight()
        self.stopped_at = time.time()
        self._stop_daemon()
        self._check_ledger()
        self._check_inbound()

    def _ledger(self) -> sqlite3.Connection:
        path = self.state_dir / LEDGER_FILE
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True)

    def _violate(self, message: str) -> None:
        if message not in self.report.violations:
            self.report.violations.append(message)

    async def _check_while_running(self) -> None:
        """The ledger's limits and transactions, read (WAL) while the daemon writes."""
        while True:
            await asyncio.sleep(15)
            with contextlib.suppress(sqlite3.OperationalError):  # the very first start
                self._check_ledger(final=False)

    def _check_ledger(self, *, final: bool = True) -> None:
        report = self.report
        with contextlib.closing(self._ledger()) as db:
            if final and (ok := db.execute("PRAGMA integrity_check").fetchone()[0]) != "ok":
                self._violate(f"ledger integrity: {ok}")
            rows = db.execute(
                "SELECT iccid, kind, booked_at, completed_at FROM usage ORDER BY booked_at"
            ).fetchall()
            twice = db.execute(
                "SELECT txn, COUNT(*) FROM usage WHERE txn IS NOT NULL"
                " GROUP BY txn HAVING COUNT(*) > 1"
            ).fetchall()
            for txn, n in twice:
                self._violate(f"transaction {txn} booked {n} times")
            report.bookings = len(rows)
            report.bookings_charged_in_full = sum(1 for r in rows if r[3] is None)
            states = dict(db.execute("SELECT iccid, state FROM sim_state").fetchall())
        # No SIM over its limits by the ledger's own count (every booking counts, done or not).
        calls: dict[str, list[float]] = {}
        sms: Counter[tuple[str, float]] = Counter()  # by SIM and local day
        calls_by_day: Counter[tuple[str, float]] = Counter()
        for iccid, kind, booked_at, _ in rows:
            if kind == "call":
                calls.setdefault(iccid, []).append(booked_at)
                calls_by_day[iccid, _day_start(booked_at)] += 1
            elif kind == "sms":
                sms[iccid, _day_start(booked_at)] += 1
        for iccid, times in calls.items():
            for i, t in enumerate(times):
                in_hour = sum(1 for u in times[: i + 1] if u > t - 3600)
                if in_hour > CALLS_PER_HOUR:
                    self._violate(f"{iccid}: {in_hour} calls in an hour")
                if i and t - times[i - 1] < MIN_CALL_GAP_S - 0.01:
                    self._violate(f"{iccid}: calls {t - times[i - 1]:.1f}s apart")
        for (iccid, _), n in sms.items():
            if n > SMS_PER_DAY:
                self._violate(f"{iccid}: {n} SMS in a day")
        for (iccid, _), n in calls_by_day.items():
            if n > CALLS_PER_DAY:
                self._violate(f"{iccid}: {n} calls in a day")
        if not final:
            return
        # The carrier never saw an action the ledger did not book first.
        stats = self.bank.carrier.stats if self.bank else None
        if stats is not None:
            for iccid, n in stats.calls_by_iccid.items():
                if n > len(calls.get(iccid, [])):
                    self._violate(f"{iccid}: {n} calls dialled, fewer booked")
            sms_booked = Counter[str]()
            for (iccid, _), n in sms.items():
                sms_booked[iccid] += n
            for iccid, n in stats.sms_by_iccid.items():
                if n > sms_booked[iccid]:
                    self._violate(f"{iccid}: {n} SMS sent, fewer booked")
        # Retained state matches the ledger: quarantines, and the usage counts.
        self._check_retained(states, calls, sms)
        # Every SIM the carrier blocked that sits active in a modem at the end is quarantined.
        assert self.bank is not None
        active = {m.sim.iccid for m in self.bank.modems.values() if m.plugged and m.sim}
        for iccid in self.blocked:
            if iccid in active and states.get(iccid) not in {"blocked", "suspected"}:
                self._violate(f"{iccid} blocked by the carrier, ledger {states.get(iccid)}")
        for iccid in self.locked:
            if iccid in active and states.get(iccid) != "locked":
                self._violate(f"{iccid} PUK-locked in a modem, ledger {states.get(iccid)}")
        report.quarantined = Counter(states.values())

    def _check_retained(
        self,
        states: dict[str, str],
        calls: dict[str, list[float]],
        sms: Counter[tuple[str, float]],
    ) -> None:
        """The retained ``sim/<iccid>`` payloads as the daemon left them, against the ledger on
        the local day it stopped (:func:`_clear_of_midnight` kept that clear of a midnight)."""
        assert self.watcher is not None
        day = _day_start(self.stopped_at)
        for topic, payload in self.watcher.state.items():
            if "/sim/" not in topic:
                continue
            iccid = topic.rsplit("/", 1)[-1]
            retained = payload.get("state")
            ledger = states.get(iccid)
            quarantine = {"blocked", "suspected", "locked"}
            if (retained in quarantine or ledger in quarantine) and retained != ledger:
                self._violate(f"{iccid}: retained {retained}, ledger {ledger}")
            usage = payload.get("usage") or {}
            booked = sum(1 for t in calls.get(iccid, []) if t >= day)
            if isinstance(usage, dict) and usage.get("calls_day") != booked:
                self._violate(
                    f"{iccid}: retained calls_day {usage.get('calls_day')}, ledger {booked}"
                )
            if isinstance(usage, dict) and usage.get("sms_day") != sms[iccid, day]:
                self._violate(
                    f"{iccid}: retained sms_day {usage.get('sms_day')}, ledger {sms[iccid, day]}"
                )

    def _inbound_state(self) -> tuple[Counter[str], set[str], set[str]]:
        """Tokens stored (with their counts), tokens still on a SIM, and the ICCIDs of SIMs
        in service whose storage the daemon can read."""
        assert self.bank is not None
        with contextlib.closing(self._ledger()) as db:
            texts = [r[0] for r in db.execute("SELECT text FROM inbound_sms").fetchall()]
        stored = Counter(t.split(" ", 1)[0] for t in texts)
        on_sim = {
            m.text.split(" ", 1)[0] for card in self.bank.sims.values() for m in card.sms.values()
        }
        active = {
            card.iccid
            for modem in self.bank.modems.values()
            if modem.plugged and (card := modem.sim) is not None
        }
        # A PUK-locked SIM's storage cannot be read (+CMS ERROR: 316) until it is unlocked.
        return stored, on_sim, active - self.locked

    def _inbound_waiting(self) -> list[tuple[str, str]]:
        """(token, ICCID) of messages not stored yet that the daemon can still read."""
        stored, on_sim, readable = self._inbound_state()
        return [
            (token, iccid)
            for token, iccid in self.inbound.items()
            if stored[token] == 0 and token in on_sim and iccid in readable
        ]

    def _check_inbound(self) -> None:
        for token, iccid in self._inbound_waiting():
            self._violate(f"inbound {token} still waiting on active {iccid}")
        stored, on_sim, _ = self._inbound_state()
        for token, iccid in self.inbound.items():
            if stored[token] > 1:
                self._violate(f"inbound {token} stored {stored[token]} times")
            elif stored[token] == 0 and token not in on_sim:
                self._violate(f"inbound {token} to {iccid} lost")
        self.report.sms_in_stored = sum(1 for t in self.inbound if stored[t] == 1)
        self.report.sms_in_on_sim = sum(1 for t in self.inbound if t in on_sim and not stored[t])


def _newer(state: dict[str, Any], since: float) -> bool:
    ts = state.get("ts")
    if not isinstance(ts, str):
        return False
    try:
        return datetime.fromisoformat(ts).timestamp() >= since
    except ValueError:
        return False


def _outcome(answer: dict[str, Any] | None) -> str:
    if answer is None:
        return "unanswered"
    if answer.get("status") == "ok":
        data = answer.get("data") or {}
        return str(data.get("outcome", "ok")) if isinstance(data, dict) else "ok"
    return str(answer.get("code", "error"))


def dump(report: SoakReport) -> str:
    return json.dumps(
        {
            "duration_s": round(report.duration_s),
            "faults": dict(report.faults),
            "calls": dict(report.calls),
            "sms_out": dict(report.sms_out),
            "rotations": dict(report.rotations),
            "sms_in": report.sms_in_sent,
            "recoveries": report.recoveries,
            "slowest_recovery_s": round(report.slowest_recovery_s, 1),
            "rss_slope_mb_per_h": round(report.rss_slope_mb_per_h, 2),
            "rss_late_slope_mb_per_h": round(report.rss_late_slope_mb_per_h, 2),
            "violations": len(report.violations),
        }
    )
