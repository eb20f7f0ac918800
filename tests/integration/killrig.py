"""A SIGKILL rig: ``simbankd run`` as a subprocess, killed at chosen moments, restarted, checked.

The simulator runs in the test process, so the rig sees every action the modem carried out
(dials, SMS submitted, slot selects, deletes) and can kill the daemon *synchronously inside the
simulated modem's command handler*: after the modem acted and before the daemon hears the
answer, the narrowest window there is. The simulator has no public hook for that yet, so
:class:`Taps` wraps the handlers of one ``SimulatedModem`` instance.

After each restart :meth:`KillRig.check_ledger` reads the ledger file directly (SQLite, as an
operator would) and :meth:`KillRig.ready` waits for the modem's retained state to name the SIM
the simulator really has active.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bankrig import outside, stop_daemon

from simbank.contract import Topics
from simbank.mosquitto import PrivateMosquitto
from simbank.mqtt import RequestClient, StateWatcher
from simbank.simulator import Scenario, SimulatedBank
from simbank.simulator.at_server import Command, Kind
from simbank.simulator.modem import SimulatedModem
from simbank.simulator.results import Reply
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid

REGISTERED = {"registered_home", "registered_roaming"}


def fast_modem(first_serial: int, dialect: str = "quectel") -> Scenario:
    """One dual-SIM modem with the fastest timings that still behave like a modem."""
    return Scenario(
        timing=Timing(boot_s=0.3, sim_init_s=0.05, ring_s=0.1, talk_s=30, no_answer_s=1),
        modems=[
            ModemSpec(
                id="m1",
                dialect=dialect,  # type: ignore[arg-type]
                slots=[
                    SimSpec(iccid=make_iccid(first_serial + n), registration_delay_s=0.05)
                    for n in (0, 1)
                ],
            )
        ],
    )


@dataclass(frozen=True)
class Policy:
    calls_per_hour: int = 40
    calls_per_day: int = 5000
    call_seconds_per_day: int = 86400
    sms_per_day: int = 5000


class Taps:
    """What one simulated modem did, with times; ``kill_on`` kills the daemon inside a handler.

    ``kill_on`` is one of ``dial`` (after ATD set the call up), ``sms`` (after the network took
    the SMS), ``select`` (after the slot select, radio still off), ``delete`` (instead of an
    AT+CMGD: the message stays on the SIM). It is disarmed once it fired.
    """

    def __init__(self, modem: SimulatedModem, killer: Callable[[], None]) -> None:
        self.modem = modem
        self.killer = killer
        self.kill_on: str | None = None
        self.fired: str | None = None
        self.dials: list[tuple[float, str]] = []
        self.sms: list[tuple[float, str, str]] = []
        self.selects: list[tuple[float, int]] = []
        # No simulator hook exists: wrap this instance's handlers (see the module docstring).
        commands = modem._commands
        table = commands.table
        dial, select, delete = table["D"], table["+QUIMSLOT"], table["+CMGD"]
        messaging = commands.messaging
        submitted = messaging.sms_submitted

        def on_dial(c: Command) -> Reply:
            reply = dial(c)
            if modem.call is not None:
                self.dials.append((time.monotonic(), modem.call.number))
                self._fire("dial")
            return reply

        def on_select(c: Command) -> Reply:
            reply = select(c)
            if c.kind is Kind.SET:
                self.selects.append((time.monotonic(), modem.active_slot))
                self._fire("select")
            return reply

        def on_delete(c: Command) -> Reply:
            if self._fire("delete"):
                return Reply(final="ERROR")
            return delete(c)

        def on_sms(number: str, text: str) -> Reply:
            before = len(modem.sent_sms)
            reply = submitted(number, text)
            if len(modem.sent_sms) > before:
                # What reached the network (decoded from a PDU in PDU mode), not the raw payload.
                sent_to, sent_text = modem.sent_sms[-1]
                self.sms.append((time.monotonic(), sent_to, sent_text))
                self._fire("sms")
            return reply

        table["D"], table["+QUIMSLOT"], table["+CMGD"] = on_dial, on_select, on_delete
        messaging.sms_submitted = on_sms  # type: ignore[method-assign]

    def _fire(self, kind: str) -> bool:
        if self.kill_on != kind:
            return False
        self.kill_on = None
        self.fired = kind
        self.killer()
        return True

    def counts(self) -> tuple[int, int, int]:
        return len(self.dials), len(self.sms), len(self.selects)


def config_text(tmp_path: Path, port: int, base: str, path: str, policy: Policy) -> str:
    return (
        f'[gateway]\nid = "gw1"\nstate_dir = "{tmp_path / "state"}"\npoll_interval_s = 1\n'
        f'[mqtt]\nport = {port}\nbase_topic = "{base}"\n'
        "[rotation]\nmin_dwell_s = 0\nsim_ready_timeout_s = 10\nregistration_timeout_s = 10\n"
        "[policies.default]\n"
        f"calls_per_hour = {policy.calls_per_hour}\ncalls_per_day = {policy.calls_per_day}\n"
        f"call_seconds_per_day = {policy.call_seconds_per_day}\n"
        f"sms_per_day = {policy.sms_per_day}\nmin_call_gap_s = 0\n"
        "calls_per_destination_per_day = 10000\nquiet_hours = []\n"
        '[logging]\nformat = "json"\n'
        f'[[modems]]\nid = "m1"\nport = "{path}"\nslots = 2\n'
    )


@dataclass
class KillRig:
    tmp_path: Path
    bank: SimulatedBank
    watcher: StateWatcher
    client: RequestClient
    topics: Topics
    policy: Policy
    config: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None
    started_wall: float = 0.0
    started_mono: float = 0.0
    taps: Taps = field(init=False)

    def __post_init__(self) -> None:
        self.taps = Taps(self.modem, self.kill)

    @property
    def modem(self) -> SimulatedModem:
        return self.bank.modems["m1"]

    @property
    def ledger_path(self) -> Path:
        return self.tmp_path / "state" / "ledger.sqlite3"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        self.started_wall = time.time()
        self.started_mono = time.monotonic()
        env = dict(os.environ)
        if source := os.environ.get("SIMBANK_DAEMON_SRC"):
            # A long soak may run the daemon from a frozen copy of the sources, so edits made
            # to the working tree meanwhile do not change the daemon between two restarts.
            env["PYTHONPATH"] = source
        self.process = subprocess.Popen(
            [sys.executable, "-m", "simbank.daemon.cli", "run", "--config", str(self.config)],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            env=env,
        )

    def kill(self) -> None:
        """SIGKILL now (synchronous: safe to call from inside a simulator handler)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)

    def reap(self) -> None:
        if self.process is not None:
            self.process.wait(timeout=10)

    def stop(self) -> None:
        stop_daemon(self.process)

    # -- reading the ledger file -------------------------------------------------------------
    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        if not self.ledger_path.exists():
            return []
        conn = sqlite3.connect(self.ledger_path, timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
        finally:
            conn.close()

    def modem_state(self) -> dict[str, Any]:
        return self.watcher.state.get(self.topics.modem("m1"), {})

    def identified(self) -> bool:
        """The daemon's retained state names the SIM the simulator really has active."""
        state = self.modem_state()
        sim = self.modem.sim
        return (
            state.get("state") == "ready"
            and (state.get("registration") or {}).get("state") in REGISTERED
            and sim is not None
            and state.get("iccid") == sim.iccid
            and state.get("active_slot") == self.modem.active_slot
        )

    async def ready(self, timeout: float = 30.0) -> float:
        """Wait until this life finished its slot inventory and the modem's retained state
        reports the ICCID the simulator has active; returns seconds since the start."""
        online = self.topics.bridge_state
        async with asyncio.timeout(timeout):
            while True:
                if not self.alive:
                    raise AssertionError(f"the daemon exited: {self.log_tail()}")
                done = self.query(
                    "SELECT COUNT(*) FROM audit WHERE action = 'inventory' AND at >= ?",
                    (self.started_wall,),
                )
                if (
                    done
                    and done[0][0] > 0
                    and self.watcher.state.get(online, {}).get("state") == "online"
                    and self.identified()
                ):
                    return time.monotonic() - self.started_mono
                await asyncio.sleep(0.02)

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    # -- invariants --------------------------------------------------------------------------
    def check_ledger(self) -> list[str]:
        """Problems found in the ledger file (none expected): see the module docstring."""
        problems: list[str] = []
        (integrity,) = self.query("PRAGMA integrity_check")[0]
        if integrity != "ok":
            problems.append(f"integrity_check: {integrity}")
        for row in self.query(
            "SELECT id, booked_at FROM usage WHERE completed_at IS NULL AND booked_at >= ?",
            (self.started_wall,),
        ):
            problems.append(f"booking {row[0]} of this life has no outcome while idle")
        for txn, count in self.query(
            "SELECT txn, COUNT(*) FROM usage WHERE txn IS NOT NULL GROUP BY txn HAVING COUNT(*) > 1"
        ):
            problems.append(f"transaction {txn} booked {count} times")
        for iccid, text, count in self.query(
            "SELECT iccid, text, COUNT(*) FROM inbound_sms GROUP BY iccid, text HAVING COUNT(*) > 1"
        ):
            problems.append(f"inbound SMS {text!r} to {iccid} stored {count} times")
        problems += self._check_quota()
        return problems

    def _check_quota(self) -> list[str]:
        problems: list[str] = []
        rows = self.query(
            "SELECT iccid, kind, booked_at, reserved_s, completed_at, duration_s FROM usage"
            " ORDER BY booked_at"
        )
        calls: dict[str, list[float]] = {}
        sms_day: dict[tuple[str, str], int] = {}
        seconds_day: dict[tuple[str, str], int] = {}
        for iccid, kind, booked_at, reserved_s, completed_at, duration_s in rows:
            day = datetime.fromtimestamp(booked_at, UTC).date().isoformat()
            if kind == "call":
                calls.setdefault(iccid, []).append(booked_at)
                charged = duration_s if completed_at is not None else reserved_s
                seconds_day[iccid, day] = seconds_day.get((iccid, day), 0) + charged
            elif kind == "sms":
                sms_day[iccid, day] = sms_day.get((iccid, day), 0) + 1
        for iccid, times in calls.items():
            start = 0
            for end, at in enumerate(times):
                while times[start] <= at - 3600:
                    start += 1
                if end - start + 1 > self.policy.calls_per_hour:
                    problems.append(f"{iccid}: {end - start + 1} calls in the hour up to {at}")
                    break
        for (iccid, day), count in sms_day.items():
            if count > self.policy.sms_per_day:
                problems.append(f"{iccid}: {count} SMS on {day}")
        for (iccid, day), seconds in seconds_day.items():
            if seconds > self.policy.call_seconds_per_day:
                problems.append(f"{iccid}: {seconds} call seconds on {day}")
        return problems

    async def usage_published(self, timeout: float = 5.0) -> list[str]:
        """Each SIM's retained ``usage`` counts today's bookings as the ledger has them, those
        a kill left without an outcome included (they count in full). Call while idle."""
        day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        if time.time() - day > 86400 - 120:
            return []  # midnight (UTC, the gateway's zone) is too close to compare days
        booked = {
            (iccid, kind): count
            for iccid, kind, count in self.query(
                "SELECT iccid, kind, COUNT(*) FROM usage WHERE booked_at >= ? GROUP BY iccid, kind",
                (day,),
            )
        }
        problems: list[str] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while True:
                    problems = []
                    for iccid in (c.iccid for c in self.modem.slots if c is not None):
                        usage = self.watcher.state.get(self.topics.sim(iccid), {}).get("usage")
                        shown = (usage or {}).get("calls_day"), (usage or {}).get("sms_day")
                        wanted = booked.get((iccid, "call"), 0), booked.get((iccid, "sms"), 0)
                        if shown != wanted:
                            problems.append(f"{iccid}: usage shows {shown}, ledger {wanted}")
                    if not problems:
                        return []
                    await asyncio.sleep(0.05)
        return problems

    def transaction_state(self, command: str, key: str) -> str:
        """``answered`` (a response is stored), ``started`` (marked, no answer) or ``new``."""
        if self.query("SELECT 1 FROM responses WHERE command = ? AND txn = ?", (command, key)):
            return "answered"
        if self.query("SELECT 1 FROM transactions WHERE command = ? AND txn = ?", (command, key)):
            return "started"
        return "new"

    def stored_inbound(self) -> dict[str, int]:
        return dict(self.query("SELECT text, COUNT(*) FROM inbound_sms GROUP BY text"))


@contextlib.asynccontextmanager
async def kill_rig(
    tmp_path: Path,
    broker: PrivateMosquitto,
    base_topic: str,
    scenario: Scenario,
    policy: Policy | None = None,
) -> AsyncIterator[KillRig]:
    """The simulator, a state watcher and a request client in this process; the daemon not
    started yet (``rig.start()``)."""
    policy = policy or Policy()
    async with outside(tmp_path, broker, base_topic, scenario) as out:
        config = tmp_path / "simbank.toml"
        path = str(out.bank.modems["m1"].path)
        config.write_text(config_text(tmp_path, broker.port, base_topic, path, policy))
        rig = KillRig(
            tmp_path,
            out.bank,
            out.watcher,
            out.client,
            out.topics,
            policy,
            config,
            tmp_path / "d.log",
        )
        try:
            yield rig
        finally:
            rig.stop()
