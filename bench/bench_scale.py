"""Scale figures: startup time, steady CPU and peak RSS of ``simbankd run`` for N modems.

For each N (16, 64, 256) the benchmark writes a scenario (mixed dialects, 2 SIMs per modem,
time_scale 1, registration delays of 2-4 s), runs ``simbank-sim`` in its own process, a
private mosquitto and ``simbankd run`` as another subprocess (poll_interval_s 30, log level
warning), and measures:

* startup: from starting the daemon until every modem's retained ``modem/<id>`` state is
  ``ready`` with an ICCID *and* the slot inventory is done (every SIM's ``sim/<iccid>`` names
  its modem and slot, every modem is back on slot 1) — watched with StateWatcher;
* steady CPU of the daemon over a window of normal polling and URCs (utime+stime from
  /proc/<pid>/stat), as a share of one core;
* peak RSS of the daemon (VmHWM from /proc/<pid>/status).

    .venv/bin/python bench/bench_scale.py [--quick] [--sizes 16,64,256] [--cpu-window 60]

Prints one JSON object per figure, then a table. ``--quick``: N=16, a 10 s CPU window.
Targets at 256 modems: startup <= 20 s, CPU <= 10 % of one core, peak RSS <= 250 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simbank.config.models import MqttConfig
from simbank.daemon.broker import PrivateMosquitto
from simbank.daemon.contract import Topics
from simbank.daemon.mqtt import StateWatcher
from simbank.simulator.scenario import make_iccid, make_imei

DIALECTS = ("quectel", "simcom", "huawei", "fibocom")
SLOTS = 2
BASE = "benchscale"
GATEWAY = "gw1"
STARTUP_TIMEOUT_S = 60.0
SIM_START_TIMEOUT_S = 60.0
SETTLE_S = 3.0
TARGETS = {"startup_s": 20.0, "cpu_pct": 10.0, "peak_rss_mb": 250.0}
CLK_TCK = os.sysconf("SC_CLK_TCK")
VENV_BIN = Path(sys.executable).parent


# -- limits -----------------------------------------------------------------------------------
def raise_fd_limit() -> tuple[int, int]:
    """Raise the soft open-file limit to the hard one (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def pty_room() -> int:
    """PTYs still available system-wide."""
    try:
        limit = int(Path("/proc/sys/kernel/pty/max").read_text())
        used = int(Path("/proc/sys/kernel/pty/nr").read_text())
    except OSError:
        return 1 << 30
    return limit - used


def check_limits(n: int) -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    # simulator: master + symlink bookkeeping; daemon: the slave plus sockets; margin for Python.
    if soft < 4 * n + 256:
        raise SystemExit(f"open-file limit {soft} too low for {n} modems; raise `ulimit -Hn`")
    if pty_room() < n + 16:
        raise SystemExit(f"only {pty_room()} PTYs free (/proc/sys/kernel/pty/max) for {n} modems")


# -- /proc ------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


# -- scenario and config ----------------------------------------------------------------------
def scenario_text(n: int) -> tuple[str, dict[str, list[str]]]:
    """A scenario TOML of ``n`` modems and the ICCIDs per modem (slot order)."""
    lines = ["time_scale = 1.0", "[timing]", "boot_s = 5", "sim_init_s = 2", ""]
    iccids: dict[str, list[str]] = {}
    for index in range(n):
        mid = f"m{index + 1:03d}"
        lines += [
            "[[modems]]",
            f'id = "{mid}"',
            f'dialect = "{DIALECTS[index % len(DIALECTS)]}"',
            f"signal = {14 + index % 12}",
            f'imei = "{make_imei(index + 1)}"',
        ]
        iccids[mid] = []
        for slot in range(SLOTS):
            iccid = make_iccid(10_000 + index * SLOTS + slot)
            iccids[mid].append(iccid)
            delay = 2.0 + (index * SLOTS + slot) % 5 * 0.5  # 2.0 .. 4.0 s
            lines += [
                "[[modems.slots]]",
                f'iccid = "{iccid}"',
                f"registration_delay_s = {delay}",
            ]
        lines.append("")
    return "\n".join(lines), iccids


def config_text(work: Path, port: int, paths: dict[str, str]) -> str:
    modems = "".join(
        f'[[modems]]\nid = "{mid}"\nport = "{path}"\ndriver = "auto"\nslots = {SLOTS}\n'
        for mid, path in paths.items()
    )
    return (
        f'[gateway]\nid = "{GATEWAY}"\nstate_dir = "{work / "state"}"\npoll_interval_s = 30\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nbase_topic = "{BASE}"\n'
        '[logging]\nlevel = "warning"\nformat = "json"\n' + modems
    )


# -- children ---------------------------------------------------------------------------------
def stop_child(proc: subprocess.Popen[bytes] | None, timeout: float = 20.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def start_simulator(
    scenario: Path, ports: Path, n: int, log: Path
) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    proc = subprocess.Popen(
        [str(VENV_BIN / "simbank-sim"), "--scenario", str(scenario), "--dir", str(ports)],
        stdout=subprocess.PIPE,
        stderr=log.open("ab"),
    )
    assert proc.stdout is not None
    paths: dict[str, str] = {}

    def read_lines() -> None:
        assert proc.stdout is not None
        while len(paths) < n:
            line = proc.stdout.readline().decode()
            if not line:
                raise RuntimeError(f"simbank-sim exited ({proc.poll()}); see {log}")
            mid, _dialect, path = line.split()
            paths[mid] = path

    try:
        async with asyncio.timeout(SIM_START_TIMEOUT_S):
            await asyncio.to_thread(read_lines)
    except BaseException:
        stop_child(proc)
        raise
    return proc, paths


# -- the startup condition --------------------------------------------------------------------
class Progress:
    """Milestones of the startup, read from the retained state."""

    def __init__(self, topics: Topics, iccids: dict[str, list[str]]) -> None:
        self.topics = topics
        self.iccids = iccids
        self.ready_all: float | None = None
        self.registered_all: float | None = None
        self.inventory_all: float | None = None

    def check(self, state: dict[str, dict[str, object]], elapsed: float) -> None:
        modems = [state.get(self.topics.modem(mid)) for mid in self.iccids]
        ready = all(m and m.get("state") == "ready" and m.get("iccid") for m in modems)
        if ready and self.ready_all is None:
            self.ready_all = elapsed
        if not ready:
            return
        registered = all(
            str((m.get("registration") or {}).get("state", "")).startswith("registered")  # type: ignore[union-attr]
            for m in modems
            if m
        )
        if registered and self.registered_all is None:
            self.registered_all = elapsed
        if self.inventory_all is None and self._inventory_done(state, modems):
            self.inventory_all = elapsed

    def _inventory_done(
        self, state: dict[str, dict[str, object]], modems: list[dict[str, object] | None]
    ) -> bool:
        for (mid, iccids), modem in zip(self.iccids.items(), modems, strict=True):
            if not modem or modem.get("active_slot") != 1 or modem.get("iccid") != iccids[0]:
                return False
            for slot, iccid in enumerate(iccids, start=1):
                sim = state.get(self.topics.sim(iccid))
                if not sim or sim.get("modem") != mid or sim.get("slot") != slot:
                    return False
        return True

    def counts(self, state: dict[str, dict[str, object]]) -> dict[str, int]:
        """How many modems are ready with an ICCID / registered / inventoried right now."""
        ready = registered = inventoried = 0
        for mid, iccids in self.iccids.items():
            modem = state.get(self.topics.modem(mid)) or {}
            if modem.get("state") != "ready" or not modem.get("iccid"):
                continue
            ready += 1
            reg = modem.get("registration") or {}
            registered += str(reg.get("state", "")).startswith("registered")  # type: ignore[union-attr]
            inventoried += all(
                (state.get(self.topics.sim(i)) or {}).get("modem") == mid for i in iccids
            )
        return {"ready": ready, "registered": registered, "inventoried": inventoried}

    @property
    def done(self) -> bool:
        return self.inventory_all is not None and self.registered_all is not None


async def wait_startup(
    progress: Progress,
    watcher: StateWatcher,
    watch_task: asyncio.Task[None],
    daemon: subprocess.Popen[bytes],
    started: float,
    work: Path,
) -> None:
    async with asyncio.timeout(STARTUP_TIMEOUT_S):
        while True:
            watcher.changed.clear()
            progress.check(watcher.state, time.monotonic() - started)
            if progress.done:
                return
            if daemon.poll() is not None:
                raise RuntimeError(f"simbankd exited {daemon.returncode}; see {work}")
            if watch_task.done():
                watch_task.result()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):
                    await watcher.changed.wait()


async def run_size(
    n: int, cpu_window_s: float, keep: Path | None, daemon_cmd: list[str]
) -> dict[str, object]:
    check_limits(n)
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"bench-scale-{n}-", dir=keep))
    sim_proc: subprocess.Popen[bytes] | None = None
    daemon: subprocess.Popen[bytes] | None = None
    broker = PrivateMosquitto(work / "mosquitto")
    watch_task: asyncio.Task[None] | None = None
    try:
        text, iccids = scenario_text(n)
        scenario = work / "scenario.toml"
        scenario.write_text(text)
        sim_started = time.monotonic()
        sim_proc, paths = await start_simulator(scenario, work / "ports", n, work / "sim.log")
        sim_start_s = time.monotonic() - sim_started
        await broker.astart()
        config = work / "simbank.toml"
        config.write_text(config_text(work, broker.port, paths))
        topics = Topics(BASE, GATEWAY)
        mqtt = MqttConfig(host="127.0.0.1", port=broker.port, base_topic=BASE)
        watcher = StateWatcher(mqtt, BASE, f"bench-watch-{n}", gateway=GATEWAY)
        watch_task = asyncio.create_task(watcher.run(), name="watcher")
        await asyncio.sleep(0.3)  # subscribed before the daemon publishes anything
        progress = Progress(topics, iccids)
        started = time.monotonic()
        daemon = subprocess.Popen(
            [*daemon_cmd, "run", "--config", str(config)],
            stdout=(work / "daemon.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        timed_out: dict[str, int] | None = None
        try:
            await wait_startup(progress, watcher, watch_task, daemon, started, work)
        except TimeoutError:
            timed_out = progress.counts(watcher.state)
        startup_rss_kb = status_kb(daemon.pid, "VmHWM")
        startup_cpu_s = cpu_seconds(daemon.pid)
        await asyncio.sleep(SETTLE_S)
        cpu0, sim0, t0 = cpu_seconds(daemon.pid), cpu_seconds(sim_proc.pid), time.monotonic()
        await asyncio.sleep(cpu_window_s)
        cpu1, sim1, t1 = cpu_seconds(daemon.pid), cpu_seconds(sim_proc.pid), time.monotonic()
        if daemon.poll() is not None:
            raise RuntimeError(f"simbankd exited {daemon.returncode} during the CPU window")
        hwm_kb = status_kb(daemon.pid, "VmHWM")
        rss_kb = status_kb(daemon.pid, "VmRSS")
        warnings = sum(
            1 for line in (work / "daemon.log").read_text(errors="replace").splitlines() if line
        )
        return {
            "figure": "scale",
            "modems": n,
            "sims": n * SLOTS,
            "simulator_start_s": round(sim_start_s, 2),
            "all_ready_with_iccid_s": None
            if progress.ready_all is None
            else round(progress.ready_all, 2),
            "all_registered_s": None
            if progress.registered_all is None
            else round(progress.registered_all, 2),
            "startup_s": None
            if progress.inventory_all is None
            else round(progress.inventory_all, 2),
            "startup_cpu_s": round(startup_cpu_s, 2),
            "startup_peak_rss_mb": round(startup_rss_kb / 1024, 1),
            "cpu_window_s": round(t1 - t0, 1),
            "cpu_pct": round((cpu1 - cpu0) / (t1 - t0) * 100, 2),
            "simulator_cpu_pct": round((sim1 - sim0) / (t1 - t0) * 100, 2),
            "peak_rss_mb": round(hwm_kb / 1024, 1),
            "rss_mb": round(rss_kb / 1024, 1),
            "daemon_log_lines": warnings,
            "startup_timed_out_at": timed_out,
        }
    finally:
        stop_child(daemon)
        if watch_task is not None:
            watch_task.cancel()
            await asyncio.gather(watch_task, return_exceptions=True)
        stop_child(sim_proc)
        broker.stop()
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)


def slope(figures: list[dict[str, object]], key: str) -> list[dict[str, object]]:
    """Growth per added modem between consecutive sizes, and whether it is linear or better
    (the per-modem cost of the last step no more than 1.25x that of the first)."""
    out: list[dict[str, object]] = []
    for low, high in itertools.pairwise(figures):
        if low[key] is None or high[key] is None:
            out.append({"from": low["modems"], "to": high["modems"], "per_modem": None})
            continue
        lo, hi = float(low[key]), float(high[key])  # type: ignore[arg-type]
        dn = int(high["modems"]) - int(low["modems"])  # type: ignore[call-overload]
        out.append(
            {
                "from": low["modems"],
                "to": high["modems"],
                "per_modem": round((hi - lo) / dn, 4),
                "ratio": round(hi / max(lo, 1e-9), 2),
            }
        )
    steps = [o["per_modem"] for o in out]
    if len(steps) >= 2 and None not in steps:
        first, last = float(steps[0]), float(steps[-1])  # type: ignore[arg-type]
        verdict = "linear or better" if last <= max(first, 0.0) * 1.25 + 1e-6 else "super-linear"
        out.append({"growth": verdict})
    elif len(steps) >= 2:
        out.append({"growth": "unknown (a size did not finish starting)"})
    return out


async def main_async(args: argparse.Namespace) -> None:
    figures: list[dict[str, object]] = []
    for n in args.sizes:
        started = time.monotonic()
        figure = await run_size(n, args.cpu_window, args.keep, shlex.split(args.daemon_cmd))
        figure["run_s"] = round(time.monotonic() - started, 1)
        print(json.dumps(figure), flush=True)
        figures.append(figure)
    growth: dict[str, object] = {}
    if len(figures) > 1:
        growth = {
            "figure": "scale_growth",
            "startup_s": slope(figures, "startup_s"),
            "cpu_pct": slope(figures, "cpu_pct"),
            "peak_rss_mb": slope(figures, "peak_rss_mb"),
        }
        print(json.dumps(growth), flush=True)
    print()
    print(
        f"{'modems':>6} {'ready s':>8} {'startup s':>9} {'CPU %':>7} {'sim CPU %':>9}"
        f" {'peak RSS MB':>11} {'RSS MB':>7}"
    )
    for f in figures:
        print(
            f"{f['modems']!s:>6} {f['all_ready_with_iccid_s']!s:>8} {f['startup_s']!s:>9}"
            f" {f['cpu_pct']!s:>7} {f['simulator_cpu_pct']!s:>9} {f['peak_rss_mb']!s:>11}"
            f" {f['rss_mb']!s:>7}"
        )
    last = figures[-1]
    if last["modems"] == 256:
        print()
        for key, limit in TARGETS.items():
            value = last[key]
            verdict = "met" if value is not None and float(value) <= limit else "MISSED"  # type: ignore[arg-type]
            if value is None:
                value = f"not reached in {STARTUP_TIMEOUT_S:g} s ({last['startup_timed_out_at']})"
            print(f"target {key} <= {limit} at 256: {value} {verdict}")
    for key in ("startup_s", "cpu_pct", "peak_rss_mb"):
        steps = growth.get(key) if growth else None
        if steps:
            text = ", ".join(
                f"{s['from']}->{s['to']}: {s['per_modem']}/modem" for s in steps if "from" in s
            )
            print(f"growth {key}: {text} ({steps[-1].get('growth', '')})")  # type: ignore[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=16 and a 10 s CPU window")
    parser.add_argument("--sizes", default="16,64,256", help="comma-separated modem counts")
    parser.add_argument("--cpu-window", type=float, default=60.0, help="seconds of steady CPU")
    parser.add_argument("--keep", type=Path, default=None, help="keep work dirs under here")
    parser.add_argument(
        "--daemon-cmd",
        default=f"{sys.executable} -m simbank.daemon.cli",
        help="command that runs simbankd (to measure another build or interpreter)",
    )
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    if args.quick:
        args.sizes, args.cpu_window = [16], 10.0
    raise_fd_limit()
    # SIGTERM ends the run like Ctrl-C: the finally blocks stop every child.
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        asyncio.run(main_async(args))
    except KeyboardInterrupt:
        print("interrupted; children stopped", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
