"""A running gateway for end-to-end tests: simulator + real mosquitto + daemon + MQTT clients."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from simbank.clock import Clock, ScaledClock
from simbank.config.models import (
    Config,
    DetectionConfig,
    GatewayConfig,
    ModemConfig,
    MqttConfig,
    PolicyConfig,
    RotationConfig,
)
from simbank.contract import Topics
from simbank.daemon.app import Daemon
from simbank.mosquitto import PrivateMosquitto
from simbank.mqtt import RequestClient, StateWatcher
from simbank.simulator import Scenario, SimulatedBank
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid


@dataclass
class BankRig:
    bank: SimulatedBank
    daemon: Daemon
    watcher: StateWatcher
    client: RequestClient
    topics: Topics

    def modem(self, modem_id: str) -> dict[str, Any]:
        return self.watcher.state.get(self.topics.modem(modem_id), {})

    def sim(self, iccid: str) -> dict[str, Any]:
        return self.watcher.state.get(self.topics.sim(iccid), {})

    def events(self, event_type: str, **match: Any) -> list[dict[str, Any]]:
        return [
            e
            for e in self.watcher.events
            if e.get("type") == event_type and all(e.get(k) == v for k, v in match.items())
        ]

    async def request(self, command: str, payload: Any = None, **kw: Any) -> dict[str, Any]:
        return await self.client.request(command, payload, **kw)

    async def until(self, predicate: Callable[[], Any], timeout: float = 20.0) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    await asyncio.sleep(0.05)
        except TimeoutError:
            modems = {
                k.rsplit("/", 1)[-1]: (v.get("state"), v.get("iccid"))
                for k, v in self.watcher.state.items()
                if "/modem/" in k
            }
            sims = {
                k.rsplit("/", 1)[-1]: v.get("state")
                for k, v in self.watcher.state.items()
                if "/sim/" in k
            }
            pytest.fail(f"condition not met in {timeout}s; modems {modems}; sims {sims}")

    def modems_ready(self) -> bool:
        return all(
            self.modem(m).get("state") == "ready"
            and (self.modem(m).get("registration") or {}).get("state")
            in {"registered_home", "registered_roaming"}
            for m in self.bank.modems
        ) and all(
            m in self.daemon.runtime.inventoried
            for m in self.bank.modems
            if len(self.bank.modems[m].slots) > 1
        )

    async def inventory_done(self, timeout: float = 30.0) -> None:
        gw = self.daemon.runtime

        def done() -> bool:
            for mid, modem in self.bank.modems.items():
                for slot in range(1, len(modem.slots) + 1):
                    if (mid, slot) not in gw.slots:
                        return False
            return not any(t.get_name().startswith("inventory-") for t in gw._background)

        await self.until(done, timeout)


def make_config(
    tmp_path: Path,
    broker: PrivateMosquitto,
    base_topic: str,
    bank: SimulatedBank,
    *,
    policy: PolicyConfig | None = None,
    detection: DetectionConfig | None = None,
    mqtt: MqttConfig | None = None,
    slots: dict[str, int] | None = None,
    state_dir: Path | None = None,
    **extra: Any,
) -> Config:
    state = state_dir if state_dir is not None else tmp_path / "state"
    return Config(
        gateway=GatewayConfig(id="gw1", state_dir=state, poll_interval_s=1.0),
        mqtt=mqtt or MqttConfig(port=broker.port, base_topic=base_topic),
        modems=[
            ModemConfig(id=mid, port=str(m.path), slots=(slots or {}).get(mid, len(m.slots)))
            for mid, m in bank.modems.items()
        ],
        policies={"default": policy or PolicyConfig(quiet_hours=[])},
        detection=detection or DetectionConfig(),
        rotation=RotationConfig(min_dwell_s=0, sim_ready_timeout_s=10, registration_timeout_s=10),
        **extra,
    )


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path,
    broker: PrivateMosquitto,
    base_topic: str,
    scenario: Scenario,
    *,
    time_scale: float = 1.0,
    start: float | None = None,
    devices: Mapping[str, str] | None = None,
    before: Callable[[SimulatedBank], Awaitable[None]] | None = None,
    tune: Callable[[Daemon], None] | None = None,
    clock: Clock | None = None,
    **config: Any,
) -> AsyncIterator[BankRig]:
    """The daemon over ``scenario``'s simulated bank. ``devices``: PBX device names by modem
    id (``[[modems]] device``); ``before`` runs on the bank before the daemon starts; ``tune``
    on the daemon before it runs (faster timings); ``clock`` instead of ``time_scale`` and
    ``start``."""
    async with SimulatedBank(scenario, directory=tmp_path / "ports") as bank:
        if before is not None:
            await before(bank)
        cfg = make_config(tmp_path, broker, base_topic, bank, **config)
        if devices:
            modems = [m.model_copy(update={"device": devices.get(m.id)}) for m in cfg.modems]
            cfg = cfg.model_copy(update={"modems": modems})
        daemon = Daemon(cfg, clock=clock or ScaledClock(time_scale, start))
        if tune is not None:
            tune(daemon)
        topics = Topics(base_topic, "gw1")
        watcher = StateWatcher(cfg.mqtt, base_topic, f"watch-{base_topic}", gateway="gw1")
        stop = asyncio.Event()
        watch_task = asyncio.create_task(watcher.run(), name="test-watcher")
        daemon_task = asyncio.create_task(daemon.run(stop), name="test-daemon")
        try:
            # Requests sent before the daemon subscribed would be lost: wait for it.
            await asyncio.wait_for(daemon.bridge.wait_connected(), 20)
            async with RequestClient(cfg.mqtt, topics, f"client-{base_topic}") as client:
                yield BankRig(bank, daemon, watcher, client, topics)
        finally:
            stop.set()
            await asyncio.wait_for(daemon_task, 30)
            watch_task.cancel()
            await asyncio.gather(watch_task, return_exceptions=True)


async def simbankctl(*args: str, env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    """``simbankctl`` as a dialplan runs it (no SIMBANK_* from the test's environment, only
    ``env``'s): its exit status, stdout and stderr."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SIMBANK_")}
    clean.update(env or {})
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simbank.ctl.main",
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def config_text(
    tmp_path: Path, port: int, base: str, paths: dict[str, str], calls_per_hour: int = 3
) -> str:
    """A simbank.toml for a daemon run as a subprocess (modems with 2 slots each)."""
    modems = "".join(f'[[modems]]\nid = "{m}"\nport = "{p}"\nslots = 2\n' for m, p in paths.items())
    return (
        f'[gateway]\nid = "gw1"\nstate_dir = "{tmp_path / "state"}"\npoll_interval_s = 1\n'
        f'[mqtt]\nport = {port}\nbase_topic = "{base}"\n'
        "[rotation]\nmin_dwell_s = 0\nsim_ready_timeout_s = 10\nregistration_timeout_s = 10\n"
        "[policies.default]\n"
        f"calls_per_hour = {calls_per_hour}\nmin_call_gap_s = 0\n"
        "calls_per_destination_per_day = 50\nquiet_hours = []\n"
        '[logging]\nformat = "json"\n' + modems
    )


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "simbank.daemon.cli", "run", "--config", str(config)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def stop_daemon(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM (as systemd stops it), SIGKILL if it has not ended 20 s later."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def wait_ready(watcher: StateWatcher, topics: Topics, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while True:
            state = watcher.state.get(topics.modem("m1"), {})
            if (
                state.get("state") == "ready"
                and (state.get("registration") or {}).get("state") == "registered_home"
            ):
                return
            await asyncio.sleep(0.05)


def one_modem(dialect: str, first_serial: int, talk_s: float = 60) -> Scenario:
    """One dual-SIM modem, fast timings: the scenario of the subprocess tests."""
    return Scenario(
        timing=Timing(boot_s=0.5, sim_init_s=0.3, ring_s=0.2, talk_s=talk_s),
        modems=[
            ModemSpec(
                id="m1",
                dialect=dialect,  # type: ignore[arg-type]
                slots=[
                    SimSpec(iccid=make_iccid(first_serial + n), registration_delay_s=0.2)
                    for n in (0, 1)
                ],
            )
        ],
    )


@dataclass
class ProcessRig:
    """``simbankd run`` as a subprocess (as systemd runs it) against an in-process simulator."""

    tmp_path: Path
    port: int
    base: str
    bank: SimulatedBank
    watcher: StateWatcher
    client: RequestClient
    topics: Topics
    config: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def slots(self) -> tuple[str, str]:
        first, second = (c.iccid for c in self.bank.modems["m1"].slots if c is not None)
        return first, second

    def write_config(self, calls_per_hour: int = 3) -> None:
        paths = {m: str(modem.path) for m, modem in self.bank.modems.items()}
        self.config.write_text(
            config_text(self.tmp_path, self.port, self.base, paths, calls_per_hour)
        )

    def start(self) -> None:
        self.process = start_daemon(self.config, self.log)

    async def ready(self) -> None:
        """m1 ready on slot 1 with its slot inventory done (both SIMs known)."""
        await wait_ready(self.watcher, self.topics)
        slot1, slot2 = self.slots
        modem = self.topics.modem("m1")
        async with asyncio.timeout(20):
            while not (
                self.topics.sim(slot2) in self.watcher.state
                and self.watcher.state[modem].get("iccid") == slot1
                and self.watcher.state[modem].get("state") == "ready"
            ):
                await asyncio.sleep(0.05)

    async def call_in_progress(self) -> None:
        async with asyncio.timeout(20):
            while self.bank.modems["m1"].call is None:
                await asyncio.sleep(0.02)

    def stop(self) -> None:
        stop_daemon(self.process)


@dataclass
class Outside:
    """What a subprocess daemon's test holds: the simulator, a watcher of the retained state
    and a request client."""

    bank: SimulatedBank
    watcher: StateWatcher
    client: RequestClient
    topics: Topics


@contextlib.asynccontextmanager
async def outside(
    tmp_path: Path, broker: PrivateMosquitto, base_topic: str, scenario: Scenario
) -> AsyncIterator[Outside]:
    """The simulator, a state watcher and a request client in this process (for a daemon
    that runs as a subprocess)."""
    async with SimulatedBank(scenario, directory=tmp_path / "ports") as bank:
        topics = Topics(base_topic, "gw1")
        mqtt = MqttConfig(port=broker.port, base_topic=base_topic)
        watcher = StateWatcher(mqtt, base_topic, f"w-{base_topic}", gateway="gw1")
        watch_task = asyncio.create_task(watcher.run(), name="outside-watcher")
        try:
            async with RequestClient(mqtt, topics, f"c-{base_topic}") as client:
                yield Outside(bank, watcher, client, topics)
        finally:
            watch_task.cancel()
            await asyncio.gather(watch_task, return_exceptions=True)


@contextlib.asynccontextmanager
async def daemon_process(
    tmp_path: Path, broker: PrivateMosquitto, base_topic: str, scenario: Scenario
) -> AsyncIterator[ProcessRig]:
    async with outside(tmp_path, broker, base_topic, scenario) as out:
        rig = ProcessRig(
            tmp_path,
            broker.port,
            base_topic,
            out.bank,
            out.watcher,
            out.client,
            out.topics,
            tmp_path / "simbank.toml",
            tmp_path / "daemon.log",
        )
        try:
            rig.write_config()
            rig.start()
            yield rig
        finally:
            rig.stop()
