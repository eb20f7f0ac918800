"""``simbankd demo``: a call-centre day on a simulated bank, with a private mosquitto, the
daemon (its normal code, on a scaled clock) and a dialer that asks it for calls and SMS.

Zero setup: everything lives in a temporary directory (or ``--workdir``); the daemon's JSON
logs go to ``simbankd.log`` there, so the terminal shows only the live view, read back from
MQTT. The day ends at its close, at ``--duration`` or at Ctrl-C, with a summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiomqtt

from simbank.clock import ScaledClock
from simbank.contract import Topics
from simbank.ctl.table import modem_rows, render_status
from simbank.daemon.app import Daemon
from simbank.daemon.logs import configure_logging
from simbank.demo.access import DemoAccess
from simbank.demo.carrier import CarrierScript, Operator
from simbank.demo.day import (
    CARRIER_BLOCKS,
    DEFAULT_SCALE,
    DO_NOT_CALL,
    GATEWAY,
    UK_NUMBERS,
    US_NUMBERS,
    Day,
    carrier_limits,
    day_scenario,
    demo_config,
    policy_limits,
)
from simbank.demo.dialer import Dialer
from simbank.demo.events import EventLog, Heard, follow_events
from simbank.demo.summary import (
    BlockFound,
    CarrierBlock,
    DayReport,
    Tally,
    check_quotas,
    clock_text,
    summary_text,
)
from simbank.demo.view import at_hourly_limit, screen
from simbank.mosquitto import PrivateMosquitto
from simbank.mqtt import RequestClient, StateWatcher
from simbank.simulator import SimulatedBank, demo_scenario
from simbank.store.ledger import Ledger
from simbank.web.server import Dashboard

CLEAR = "\x1b[H\x1b[2J"
#: How early the clock starts before the dialer opens (simulated s): the modems come up.
WARM_UP_S = 600.0
#: Without a terminal, the view is printed this often (wall seconds).
PRINT_EVERY_S = 15.0

__all__ = ["demo_config", "run_demo"]


def _ready_modems(watcher: StateWatcher, topics: Topics) -> int:
    rows = modem_rows(watcher.state, topics)
    return sum(1 for r in rows if r[1] == "ready" and r[4] != "-" and r[5] != "-")


def _found(heard: list[Heard]) -> tuple[BlockFound, ...]:
    """The first ``sim_blocked`` / ``sim_locked`` verdict of each SIM."""
    out: dict[str, BlockFound] = {}
    for h in heard:
        if h.type not in {"sim_blocked", "sim_locked"}:
            continue
        iccid = str(h.event.get("iccid"))
        if iccid in out:
            continue
        out[iccid] = BlockFound(
            iccid,
            h.type.removeprefix("sim_"),
            str(h.event.get("reason")),
            h.event.get("modem"),
            h.at,
            len(h.event.get("evidence") or []),
        )
    return tuple(out.values())


def _switches(heard: list[Heard]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for h in heard:
        if h.type != "sim_rotated":
            continue
        reason = h.event.get("reason")
        if reason:
            counts[f"left a {reason} SIM"] += 1
        elif h.event.get("actor") == "operator":
            counts["by the operator"] += 1
        else:
            counts["rotated for traffic"] += 1
    return counts


def _circuit(heard: list[Heard]) -> tuple[str, ...]:
    out = []
    for h in heard:
        if h.type == "circuit_opened":
            out.append(f"opened at {clock_text(h.at)} ({h.event.get('blocks')} blocks)")
        elif h.type == "circuit_closed":
            out.append(f"closed at {clock_text(h.at)} by the operator")
    return tuple(out)


class _Demo:
    """One run: the pieces and what the view needs of them."""

    def __init__(self, scale: float, duration: float | None, until_online: bool) -> None:
        self.scale = scale
        self.duration = duration
        self.until_online = until_online
        self.day = Day.today(scale)
        self.clock = ScaledClock(scale, start=self.day.opens - WARM_UP_S)
        self.started = self.clock.now()
        self.wall_started = time.monotonic()
        self.tally = Tally()
        self.events = EventLog()
        self.finish = asyncio.Event()
        self.all_online_after: float | None = None
        #: When (simulated) a SIM first reached its hourly call limit.
        self.first_full_at: float | None = None

    def title(self) -> str:
        minutes = 3600 / self.scale / 60
        pace = (
            f"an hour every {minutes:.1f} min"
            if minutes >= 1
            else f"an hour every {minutes * 60:.0f} s"
        )
        return (
            f"simbank demo: a call-centre day at x{self.scale:g} ({pace})   "
            f"{clock_text(self.clock.now())} simulated, open {clock_text(self.day.opens)}-"
            f"{clock_text(self.day.closes)}"
        )

    async def show(self, watcher: StateWatcher, topics: Topics, expected: int) -> None:
        tty = sys.stdout.isatty()
        last_print = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5 if tty else 1.0):
                    await watcher.changed.wait()
            watcher.changed.clear()
            if self.first_full_at is None and at_hourly_limit(watcher.state, topics):
                self.first_full_at = self.clock.now()
            now = time.monotonic()
            just_online = (
                self.all_online_after is None and _ready_modems(watcher, topics) >= expected
            )
            if just_online:
                self.all_online_after = now - self.wall_started
            if not tty and now - last_print < PRINT_EVERY_S and not just_online:
                continue
            last_print = now
            self.print_view(watcher, topics, expected, tty=tty)
            if just_online and self.until_online:
                self.finish.set()

    def print_view(
        self, watcher: StateWatcher, topics: Topics, expected: int, *, tty: bool
    ) -> None:
        online = (
            f"all {expected} modems online with their SIMs after {self.all_online_after:.1f} s"
            if self.all_online_after is not None
            else f"waiting for modems… {_ready_modems(watcher, topics)}/{expected} "
            f"({time.monotonic() - self.wall_started:.0f} s)"
        )
        if self.until_online:
            text = render_status(watcher.state, topics, list(watcher.events))
        else:
            text = screen(
                watcher.state,
                topics,
                title=self.title(),
                tally=self.tally,
                heard=self.events.heard,
            )
        sys.stdout.write((CLEAR if tty else "\n") + text + f"\n{online}\n(Ctrl-C to stop)\n")
        sys.stdout.flush()

    async def day_over(self) -> None:
        await self.clock.sleep(self.day.closes - self.clock.now())
        self.finish.set()

    def report(self, ledger: Ledger, bank: SimulatedBank, script: CarrierScript) -> str:
        records = {iccid: ledger.usage_records(iccid, 0) for iccid in bank.sims}
        carrier = bank.carrier.limits_for("test")
        heard = self.events.heard
        found = _found(heard)
        rotated = self.events.of("sim_rotated")
        guard = [h.at for h in rotated if h.event.get("reason")]
        rotations = [h.at for h in rotated if not h.event.get("reason")]
        blocks = [f.at for f in found if f.state == "blocked"]
        mid_day = {b.iccid for b in script.blocks}
        found_mid_day = [f.at for f in found if f.iccid in mid_day]
        return summary_text(
            DayReport(
                started=self.started,
                ended=self.clock.now(),
                scale=self.scale,
                tally=self.tally,
                switches=_switches(heard),
                found=found,
                carrier_blocks=tuple(script.blocks),
                circuit=_circuit(heard),
                sms_received=sum(1 for h in heard if h.type == "sms_received"),
                quotas=check_quotas(
                    records, policy_limits(), carrier_limits(carrier), script_blocks(bank)
                ),
                firsts=(
                    ("switch off a SIM that cannot serve", min(guard, default=None)),
                    ("block found", min(blocks, default=None)),
                    ("call served", self.tally.first_served_at),
                    ("SIM at its hourly call limit", self.first_full_at),
                    ("rotation for traffic", min(rotations, default=None)),
                    ("carrier block mid-day", min((b.at for b in script.blocks), default=None)),
                    ("mid-day block found", min(found_mid_day, default=None)),
                ),
            )
        )


def script_blocks(bank: SimulatedBank) -> list[CarrierBlock]:
    """Every block the simulated carrier recorded (its own limits' and the script's)."""
    return [CarrierBlock(b.iccid, b.reason, b.at) for b in bank.carrier.stats.blocks]


async def run_demo(
    duration: float | None = None,
    workdir: str | None = None,
    until_online: bool = False,
    time_scale: float = DEFAULT_SCALE,
    seed: int = 0,
) -> int:
    async with contextlib.AsyncExitStack() as stack:
        base = (
            Path(workdir)
            if workdir
            else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="simbank-demo-")))
        )
        base.mkdir(parents=True, exist_ok=True)
        state_dir = base / "state"
        shutil.rmtree(state_dir, ignore_errors=True)  # each demo is a fresh day
        log_file = stack.enter_context((base / "simbankd.log").open("a", encoding="utf-8"))
        configure_logging("info", "json", stream=log_file)
        demo = _Demo(time_scale, duration, until_online)
        print(f"simbank demo: working in {base} (daemon log: {base / 'simbankd.log'})")
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, demo.finish.set)
        dnc = base / "do-not-call.txt"
        dnc.write_text(
            "# the call centre's do-not-call list (fictional numbers)\n"
            + "\n".join(DO_NOT_CALL)
            + "\n"
        )
        stop = asyncio.Event()
        access = DemoAccess.create(base / "mqtt-users", GATEWAY)
        async with (
            PrivateMosquitto(
                base / "mqtt", password_file=access.passwd, acl_file=access.acl
            ) as broker,
            SimulatedBank(
                day_scenario(demo_scenario(), time_scale), directory=base / "ports"
            ) as bank,
        ):
            ports = {mid: (str(m.path), len(m.slots)) for mid, m in bank.modems.items()}
            plain = demo_config(ports, broker.port, state_dir, dnc)
            config = plain.model_copy(update={"mqtt": access.login(plain.mqtt, GATEWAY)})
            monitor, operator = (
                access.login(plain.mqtt, "monitor"),
                access.login(plain.mqtt, "operator"),
            )
            topics = Topics(config.mqtt.base_topic, config.gateway.id)
            watcher = StateWatcher(
                monitor, config.mqtt.base_topic, "simbank-demo-view", gateway=config.gateway.id
            )
            dashboard = await stack.enter_async_context(
                Dashboard(plain.mqtt, config.mqtt.base_topic)
            )
            print(
                f"dashboard: {dashboard.url}  log in as operator / {access.password('operator')}"
                f" (acts) or monitor / {access.password('monitor')} (watches)\n"
                f"mosquitto on 127.0.0.1:{broker.port}; try: simbankctl --port {broker.port}"
                f" --username monitor --password-file {access.password_files['monitor']} status"
            )
            daemon = Daemon(config, clock=demo.clock)
            script = CarrierScript(
                bank,
                demo.clock,
                CARRIER_BLOCKS[0],
                demo.day.opens + CARRIER_BLOCKS[1] * 3600,
                seed=seed,
            )
            async with asyncio.TaskGroup() as tg:
                daemon_task = tg.create_task(daemon.run(stop), name="daemon")
                aux = [
                    tg.create_task(_unless_broker_gone(watcher.run()), name="demo-watcher"),
                    tg.create_task(
                        _unless_broker_gone(
                            follow_events(monitor, topics, demo.clock, demo.events)
                        ),
                        name="demo-events",
                    ),
                    tg.create_task(demo.show(watcher, topics, len(ports)), name="demo-view"),
                ]
                async with asyncio.timeout(30):
                    await daemon.bridge.wait_connected()
                async with RequestClient(operator, topics, "simbank-demo-dialer") as client:
                    work: list[asyncio.Task[None]] = []
                    if not until_online:
                        dialer = Dialer(
                            client,
                            demo.clock,
                            demo.tally,
                            US_NUMBERS + UK_NUMBERS,
                            DO_NOT_CALL,
                            seed=seed,
                        )
                        starts: list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]] = [
                            ("demo-dialer", lambda: _open_then(demo, dialer.run)),
                            ("demo-carrier", lambda: script.run(demo.day.closes)),
                            (
                                "demo-operator",
                                lambda: Operator(client, demo.clock, demo.events).run(
                                    demo.day.closes
                                ),
                            ),
                            ("demo-day", demo.day_over),
                        ]
                        work = [tg.create_task(make(), name=name) for name, make in starts]
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(duration):
                            await demo.finish.wait()
                    for task in work:
                        task.cancel()
                    await asyncio.gather(*work, return_exceptions=True)
                demo.print_view(watcher, topics, len(ports), tty=False)
                stop.set()
                await daemon_task
                for task in aux:
                    task.cancel()
            with Ledger.open(state_dir) as ledger:
                print(demo.report(ledger, bank, script))
        print("simbank demo stopped.")
    return 0


async def _unless_broker_gone(follow: Coroutine[Any, Any, None]) -> None:
    """A view's subscription: if the broker goes away, the view stops (the summary still comes)."""
    try:
        await follow
    except aiomqtt.MqttError as exc:
        sys.stderr.write(f"simbank demo: lost the broker ({exc}); the view stops here\n")


async def _open_then(demo: _Demo, run: Callable[[float], Coroutine[Any, Any, None]]) -> None:
    """The dialer logs in when the call centre opens."""
    await demo.clock.sleep(demo.day.opens - demo.clock.now())
    await run(demo.day.closes)
