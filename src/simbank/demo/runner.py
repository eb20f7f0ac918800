"""``simbankd demo``: a simulated bank, a private mosquitto and the daemon, with a live table.

Zero setup: everything lives in a temporary directory (or ``--workdir``); the daemon's JSON
logs go to ``simbankd.log`` there so the terminal shows only the table read back from MQTT.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import tempfile
import time
from pathlib import Path

from simbank.config.models import Config, GatewayConfig, ModemConfig, MqttConfig
from simbank.contract import Topics
from simbank.ctl.table import modem_rows, render_status
from simbank.daemon.app import Daemon
from simbank.daemon.logs import configure_logging
from simbank.mosquitto import PrivateMosquitto
from simbank.mqtt import StateWatcher
from simbank.simulator import SimulatedBank, demo_scenario

CLEAR = "\x1b[H\x1b[2J"


def demo_config(ports: dict[str, tuple[str, int]], mqtt_port: int, state_dir: Path) -> Config:
    """The daemon's config for the simulated bank: one modem per simulated port."""
    return Config(
        gateway=GatewayConfig(id="demo", state_dir=state_dir, poll_interval_s=5.0),
        mqtt=MqttConfig(host="127.0.0.1", port=mqtt_port),
        modems=[
            ModemConfig(id=mid, port=path, slots=slots, driver="auto")
            for mid, (path, slots) in ports.items()
        ],
    )


async def _show(
    watcher: StateWatcher,
    topics: Topics,
    expected: int,
    started: float,
    until_online: asyncio.Event | None,
) -> None:
    tty = sys.stdout.isatty()
    all_online_at: float | None = None
    last_print = 0.0
    while True:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await watcher.changed.wait()
        watcher.changed.clear()
        rows = modem_rows(watcher.state, topics)
        ready = sum(1 for r in rows if r[1] == "ready" and r[4] != "-" and r[5] != "-")
        just_online = all_online_at is None and ready >= expected
        if just_online:
            all_online_at = time.monotonic() - started
        now = time.monotonic()
        if not tty and now - last_print < 5.0 and not just_online:
            continue
        last_print = now
        text = render_status(watcher.state, topics, watcher.events)
        footer = (
            f"\nall {expected} modems online with their SIMs after {all_online_at:.1f} s"
            if all_online_at is not None
            else f"\nwaiting for modems… {ready}/{expected} ({now - started:.0f} s)"
        )
        sys.stdout.write((CLEAR if tty else "\n") + text + footer + "\n(Ctrl-C to stop)\n")
        sys.stdout.flush()
        if just_online and until_online is not None:
            until_online.set()


async def run_demo(
    duration: float | None = None, workdir: str | None = None, until_online: bool = False
) -> int:
    with contextlib.ExitStack() as stack:
        base = (
            Path(workdir)
            if workdir
            else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="simbank-demo-")))
        )
        base.mkdir(parents=True, exist_ok=True)
        log_file = stack.enter_context((base / "simbankd.log").open("a", encoding="utf-8"))
        configure_logging("info", "json", stream=log_file)
        started = time.monotonic()
        print(f"simbank demo: working in {base} (daemon log: {base / 'simbankd.log'})")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with (
            PrivateMosquitto(base / "mqtt") as broker,
            SimulatedBank(demo_scenario(), directory=base / "ports") as bank,
        ):
            ports = {mid: (str(m.path), len(m.slots)) for mid, m in bank.modems.items()}
            config = demo_config(ports, broker.port, base / "state")
            topics = Topics(config.mqtt.base_topic, config.gateway.id)
            watcher = StateWatcher(
                config.mqtt, config.mqtt.base_topic, "simbank-demo-view", gateway=config.gateway.id
            )
            print(
                f"mosquitto on 127.0.0.1:{broker.port}; try: simbankctl --port {broker.port} status"
            )
            async with asyncio.TaskGroup() as tg:
                daemon = tg.create_task(Daemon(config).run(stop), name="daemon")
                viewer = tg.create_task(watcher.run(), name="demo-watcher")
                shower = tg.create_task(
                    _show(watcher, topics, len(ports), started, stop if until_online else None),
                    name="show",
                )
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(duration):
                        await stop.wait()
                stop.set()
                await daemon
                viewer.cancel()
                shower.cancel()
        print("simbank demo stopped.")
    return 0
