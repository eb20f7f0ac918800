"""The dashboard's event-to-screen latency, and its screenshots from a realistic gateway.

Runs in one process: a private mosquitto with users (``gw1``, ``operator``, ``monitor``) and
the shipped ``config/mosquitto/acl``, the simulated bank (four modems, six SIMs), ``simbankd``
on it, ``simbank-web`` (``Dashboard``) and headless Chromium (``/usr/bin/chromium``) logged in
as ``monitor``. The operator's client makes a few calls so the quota bars fill. Then, for
each sample, the carrier denies one SIM and the page's MutationObserver notes when that SIM's
card turns ``blocked``; the figure is that moment minus the ``ts`` of the daemon's
``sim_blocked`` event (same machine, same clock), and minus the moment this process's MQTT
client received the event. Between samples the carrier lifts the denial and the operator
releases the SIM.

    .venv/bin/python bench/bench_dashboard.py [--quick] [--samples 5] [--screenshots docs/img]

Prints one JSON object per figure, then a table. ``--screenshots DIR`` ends with the SIM
blocked and writes ``dashboard-desktop.png`` and ``dashboard-phone.png`` there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from playwright.async_api import async_playwright

from simbank.clock import ScaledClock
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
from simbank.mosquitto import PrivateMosquitto, make_password_file
from simbank.mqtt import RequestClient, StateWatcher
from simbank.simulator import Scenario, SimulatedBank
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid
from simbank.web.screenshots import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    PHONE,
    log_in,
    shoot_desktop,
    shoot_phone,
)
from simbank.web.server import Dashboard

ROOT = Path(__file__).resolve().parents[1]
ACL = ROOT / "config" / "mosquitto" / "acl"
USERS = {"gw1": "gw1-bench-pw", "operator": "op-bench-pw", "monitor": "mon-bench-pw"}
TIMING = Timing(boot_s=0.5, sim_init_s=0.3, ring_s=0.3, talk_s=2.0, ussd_s=0.2, rssi_period_s=5)
TARGET = make_iccid(2031)


def scenario() -> Scenario:
    def sim(serial: int) -> SimSpec:
        return SimSpec(iccid=make_iccid(serial), registration_delay_s=0.3)

    return Scenario(
        timing=TIMING,
        modems=[
            ModemSpec(id="m1", dialect="quectel-eg25g", slots=[sim(2011), sim(2012)]),
            ModemSpec(id="m2", dialect="simcom-sim7600", signal=17, slots=[sim(2021), sim(2022)]),
            ModemSpec(id="m3", dialect="huawei-e3372", signal=12, slots=[sim(2031)]),
            ModemSpec(id="m4", dialect="quectel-ec21", signal=25, slots=[sim(2041)]),
        ],
    )


def config(tmp: Path, broker: PrivateMosquitto, bank: SimulatedBank) -> Config:
    secret = tmp / "gw1.pw"
    secret.write_text(USERS["gw1"], encoding="utf-8")
    return Config(
        gateway=GatewayConfig(id="gw1", state_dir=tmp / "state", poll_interval_s=1.0),
        mqtt=MqttConfig(port=broker.port, username="gw1", password_file=secret),
        modems=[
            ModemConfig(id=mid, port=str(m.path), slots=len(m.slots))
            for mid, m in bank.modems.items()
        ],
        policies={
            "default": PolicyConfig(
                calls_per_hour=6,
                calls_per_day=40,
                call_seconds_per_day=1800,
                sms_per_day=20,
                calls_per_month=400,
                min_call_gap_s=0,
                calls_per_destination_per_day=20,
                quiet_hours=[],
            )
        },
        detection=DetectionConfig(),
        rotation=RotationConfig(min_dwell_s=0, sim_ready_timeout_s=10, registration_timeout_s=10),
    )


@dataclass
class Stack:
    bank: SimulatedBank
    watcher: StateWatcher
    operator: RequestClient
    url: str
    topics: Topics
    received: dict[str, float]


@contextlib.asynccontextmanager
async def stack(tmp: Path) -> AsyncIterator[Stack]:
    passwd = make_password_file(tmp / "passwd", USERS)
    (tmp / "operator.pw").write_text(USERS["operator"], encoding="utf-8")
    async with (
        PrivateMosquitto(tmp / "broker", password_file=passwd, acl_file=ACL) as broker,
        SimulatedBank(scenario(), directory=tmp / "ports") as bank,
    ):
        cfg = config(tmp, broker, bank)
        daemon = Daemon(cfg, clock=ScaledClock(1.0))
        stop = asyncio.Event()
        op_cfg = MqttConfig(
            port=broker.port, username="operator", password_file=tmp / "operator.pw"
        )
        watcher = StateWatcher(op_cfg, "simbank", "bench-watch", gateway="gw1")
        received: dict[str, float] = {}
        original = watcher._take

        def noting(topic: str, payload: object) -> None:
            if topic.endswith("/bridge/event") and isinstance(payload, bytes | bytearray):
                with contextlib.suppress(ValueError):
                    event = json.loads(payload)
                    if event.get("type") == "sim_blocked":
                        received[str(event.get("ts"))] = time.time()
            original(topic, payload)

        watcher._take = noting  # type: ignore[method-assign]
        async with asyncio.TaskGroup() as tg:
            run = tg.create_task(daemon.run(stop), name="bench-daemon")
            watch = tg.create_task(watcher.run(), name="bench-watcher")
            try:
                await asyncio.wait_for(daemon.bridge.wait_connected(), 30)
                topics = Topics("simbank", "gw1")
                async with (
                    RequestClient(op_cfg, topics, "bench-operator") as operator,
                    Dashboard(MqttConfig(port=broker.port), "simbank") as dashboard,
                ):
                    yield Stack(bank, watcher, operator, dashboard.url, topics, received)
            finally:
                stop.set()
                watch.cancel()
                await run


async def until(predicate: Any, timeout: float = 60.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


def sim_state(s: Stack, iccid: str) -> str | None:
    value = s.watcher.state.get(s.topics.sim(iccid), {}).get("state")
    return None if value is None else str(value)


async def ready(s: Stack) -> None:
    """Every modem ready and every SIM known (the dual-slot modems toured their slots)."""

    def done() -> bool:
        modems = [s.watcher.state.get(s.topics.modem(m), {}) for m in s.bank.modems]
        sims = [c.iccid for m in s.bank.modems.values() for c in m.slots if c is not None]
        return all(m.get("state") == "ready" and m.get("iccid") for m in modems) and all(
            sim_state(s, i) in {"active", "available"} for i in sims
        )

    await until(done, 90)


async def traffic(s: Stack) -> None:
    """A few calls per modem, so quota bars are partly full."""
    plan = {"m1": 8, "m2": 3, "m4": 2, "m3": 1}  # m1: its first SIM rests after 6

    async def calls(modem: str, count: int) -> None:
        for n in range(count):
            number = f"+1555010{len(modem) * 10 + n:04d}"
            await s.operator.request(
                "call", {"number": number, "max_duration_s": 2, "modem": modem}, timeout=30
            )

    async with asyncio.TaskGroup() as tg:
        for modem, count in plan.items():
            tg.create_task(calls(modem, count), name=f"bench-calls-{modem}")


WATCH_JS = """iccid => new Promise(resolve => {
  const seen = () => document.querySelector(`article.sim[data-iccid="${iccid}"][data-state="blocked"]`);
  if (seen()) { resolve(Date.now()); return; }
  const observer = new MutationObserver(() => {
    if (seen()) { observer.disconnect(); resolve(Date.now()); }
  });
  observer.observe(document.body, {subtree: true, childList: true, attributes: true});
})"""


async def samples(s: Stack, count: int, page: Any) -> list[tuple[float, float]]:
    """(event ts → DOM, MQTT receipt → DOM) in ms, ``count`` times."""
    figures = []
    for n in range(count):
        if n:
            s.bank.sim(TARGET).set_behaviour("home")
            answer = await s.operator.request(
                "sim/release", {"iccid": TARGET, "note": f"bench {n}"}, timeout=30
            )
            assert answer["status"] == "ok", answer
            await until(lambda: sim_state(s, TARGET) in {"active", "available"})
            await page.wait_for_selector(
                f'article.sim[data-iccid="{TARGET}"]:not([data-state="blocked"])'
            )
        before = set(s.received)
        dom = asyncio.ensure_future(page.evaluate(WATCH_JS, TARGET))
        await asyncio.sleep(0.2)
        s.bank.sim(TARGET).deny(7)
        dom_ms = await asyncio.wait_for(dom, 60)
        await until(lambda before=before: set(s.received) - before, 10)
        ts = (set(s.received) - before).pop()
        event_ms = datetime.fromisoformat(ts).timestamp() * 1000
        figures.append((dom_ms - event_ms, dom_ms - s.received[ts] * 1000))
    return figures


async def main_async(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as name:
        tmp = Path(name)
        started = time.monotonic()
        async with stack(tmp) as s, async_playwright() as pw:
            await ready(s)
            setup_s = time.monotonic() - started
            browser = await pw.chromium.launch(
                executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS)
            )
            try:
                desktop = await browser.new_page(viewport=DESKTOP)
                phone = await browser.new_page(viewport=PHONE, device_scale_factor=2)
                for page in (desktop, phone):
                    await log_in(page, s.url, "monitor", USERS["monitor"])
                await traffic(s)
                figures = await samples(s, args.samples, desktop)
                if args.screenshots:
                    await asyncio.sleep(1.0)
                    await shoot_desktop(desktop, args.screenshots / "dashboard-desktop.png")
                    await shoot_phone(phone, args.screenshots / "dashboard-phone.png")
                    print(f"wrote {args.screenshots}/dashboard-*.png", file=sys.stderr)
            finally:
                await browser.close()
    from_event = [f[0] for f in figures]
    from_mqtt = [f[1] for f in figures]
    rows = [
        ("event ts -> DOM", "ms", from_event),
        ("MQTT receipt -> DOM", "ms", from_mqtt),
    ]
    for name, unit, values in rows:
        print(
            json.dumps(
                {
                    "figure": f"dashboard latency: {name}",
                    "unit": unit,
                    "samples": len(values),
                    "median": round(statistics.median(values), 1),
                    "max": round(max(values), 1),
                }
            )
        )
    print(json.dumps({"figure": "dashboard bench setup", "unit": "s", "value": round(setup_s, 1)}))
    print()
    print(f"{'latency':24} {'median':>9} {'max':>9}  (n={len(from_event)})")
    for name, _, values in rows:
        print(f"{name:24} {statistics.median(values):7.1f}ms {max(values):7.1f}ms")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=5, help="block events measured (default 5)")
    p.add_argument("--quick", action="store_true", help="2 samples")
    p.add_argument("--screenshots", type=Path, help="write the dashboard's screenshots here")
    args = p.parse_args()
    if args.quick:
        args.samples = 2
    if not CHROMIUM.exists():
        print("no /usr/bin/chromium: sudo apt-get install -y chromium", file=sys.stderr)
        return 69
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)
    # The daemon logs to stdout at debug level by default: keep the figures readable.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
