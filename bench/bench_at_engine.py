"""AT engine overhead: ``AT+CSQ`` round trips through ``AtChannel`` (opened with ``open_port``
on a real PTY) versus a minimal blocking pyserial write/read loop on the same kind of PTY,
both against the same minimal responder running in its own process.

    .venv/bin/python bench/bench_at_engine.py [--requests N] [--rounds N] [--quick]

Rounds alternate (raw, simbank, raw, simbank, ...), each on a fresh PTY with a fresh
responder, after a warm-up. Per round: the p50 and p99 request and the mean (wall time /
requests); the result is the median over rounds of each, and the ratio simbank / raw of the
p50 (target <= 1.3; the mean is printed too, it suffers from stalls on a busy host). Client
CPU time per request (``time.process_time``; the responder's CPU is in another process) is
reported too.
Logging is configured as the daemon does it in production (level ``info``, JSON), so the
channel's per-command ``debug`` calls are filtered, not rendered.
``--profile FILE`` writes a pyinstrument HTML profile of one extra simbank round.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import subprocess
import sys
import time
import tty
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import serial

from simbank.at.results import Command
from simbank.daemon.logs import configure_logging
from simbank.drivers.port import open_port

REQUEST = b"AT+CSQ\r"
REPLY = b"+CSQ: 20,99\r\n\r\nOK\r\n"
WARMUP = 200
TARGET_RATIO = 1.3

# The responder: a blocking read/write loop on the PTY master, in its own interpreter. It
# answers every complete "AT+CSQ\r" it has seen and exits when the master reports EIO/EOF.
RESPONDER = f"""
import os, sys
fd = int(sys.argv[1])
request, reply = {REQUEST!r}, {REPLY!r}
buf = b""
while True:
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    buf += data
    n = buf.count(request)
    if n:
        os.write(fd, reply * n)
        buf = buf[buf.rindex(request) + len(request):]
"""


@dataclass(frozen=True, slots=True)
class Round:
    client: str
    requests: int
    wall_s: float
    cpu_s: float
    p50_us: float
    p99_us: float

    @property
    def per_request_us(self) -> float:
        return self.wall_s / self.requests * 1e6

    @property
    def cpu_per_request_us(self) -> float:
        return self.cpu_s / self.requests * 1e6


@contextmanager
def responder_pty() -> Iterator[str]:
    """A raw PTY whose master is served by a responder process; yields the slave's path."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    proc = subprocess.Popen(
        [sys.executable, "-c", RESPONDER, str(master)], pass_fds=(master,), close_fds=True
    )
    os.close(master)
    try:
        yield path
    finally:
        os.close(slave)  # with the client gone too, the master reads EIO: the responder exits
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarise_round(client: str, laps: list[float], wall: float, cpu: float) -> Round:
    return Round(
        client=client,
        requests=len(laps),
        wall_s=wall,
        cpu_s=cpu,
        p50_us=statistics.median(laps) * 1e6,
        p99_us=percentile(laps, 0.99) * 1e6,
    )


def raw_round(path: str, requests: int) -> Round:
    """Minimal pyserial client: write the request, read until ``OK\\r\\n``."""
    with serial.Serial(path, 115200, timeout=3) as port:

        def once() -> None:
            port.write(REQUEST)
            buf = port.read(1)
            while not buf.endswith(b"OK\r\n"):
                chunk = port.read(max(1, port.in_waiting))
                if not chunk:
                    raise TimeoutError("raw: no reply")
                buf += chunk

        for _ in range(WARMUP):
            once()
        laps: list[float] = []
        clock = time.perf_counter
        cpu0, wall0 = time.process_time(), clock()
        for _ in range(requests):
            started = clock()
            once()
            laps.append(clock() - started)
        wall, cpu = clock() - wall0, time.process_time() - cpu0
    return summarise_round("raw", laps, wall, cpu)


async def simbank_requests(path: str, requests: int) -> Round:
    channel = await open_port(path, 115200, "bench")
    try:
        command = Command("AT+CSQ")
        for _ in range(WARMUP):
            await channel.request(command)
        laps: list[float] = []
        clock = time.perf_counter
        cpu0, wall0 = time.process_time(), clock()
        for _ in range(requests):
            started = clock()
            response = await channel.request(command)
            laps.append(clock() - started)
        wall, cpu = clock() - wall0, time.process_time() - cpu0
        assert response.values() == ["20,99"], response
    finally:
        channel.close()
        await channel.wait_closed()
    return summarise_round("simbank", laps, wall, cpu)


def simbank_round(path: str, requests: int) -> Round:
    return asyncio.run(simbank_requests(path, requests))


def run_rounds(requests: int, rounds: int) -> list[Round]:
    clients: list[Callable[[str, int], Round]] = [raw_round, simbank_round]
    results: list[Round] = []
    for n in range(rounds):
        for client in clients if n % 2 == 0 else reversed(clients):
            with responder_pty() as path:
                results.append(client(path, requests))
    return results


def profile_simbank(requests: int, out: Path) -> None:
    from pyinstrument import Profiler  # noqa: PLC0415 - optional, only for --profile

    with responder_pty() as path:
        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
        simbank_round(path, requests)
        profiler.stop()
    out.write_text(profiler.output_html())
    print(profiler.output_text(unicode=False, color=False, show_all=False), file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="round trips per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per client")
    parser.add_argument("--quick", action="store_true", help="500 requests x 2 rounds")
    parser.add_argument("--profile", type=Path, default=None, help="pyinstrument HTML output")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.rounds = 500, 2
    configure_logging("info", "json", stream=io.StringIO())
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    results = run_rounds(args.requests, args.rounds)
    load_after = os.getloadavg()[0]
    for r in results:
        print(
            json.dumps(
                {
                    "figure": "at_round", "client": r.client, "requests": r.requests,
                    "per_request_us": round(r.per_request_us, 1),
                    "cpu_per_request_us": round(r.cpu_per_request_us, 1),
                    "p50_us": round(r.p50_us, 1), "p99_us": round(r.p99_us, 1),
                }
            )
        )  # fmt: skip
    summary: dict[str, dict[str, float]] = {}
    for client in ("raw", "simbank"):
        mine = [r for r in results if r.client == client]
        summary[client] = {
            "per_request_us": statistics.median(r.per_request_us for r in mine),
            "cpu_per_request_us": statistics.median(r.cpu_per_request_us for r in mine),
            "p50_us": statistics.median(r.p50_us for r in mine),
            "p99_us": statistics.median(r.p99_us for r in mine),
        }
    raw, sim = summary["raw"], summary["simbank"]
    ratio = sim["p50_us"] / raw["p50_us"]  # robust to the odd multi-ms stall of a busy host
    cpu_ratio = sim["cpu_per_request_us"] / raw["cpu_per_request_us"]
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "figure": "at_engine_overhead", "requests_per_round": args.requests,
                "rounds_per_client": args.rounds,
                "raw": {k: round(v, 1) for k, v in raw.items()},
                "simbank": {k: round(v, 1) for k, v in sim.items()},
                "ratio": round(ratio, 3), "cpu_ratio": round(cpu_ratio, 3),
                "target_ratio": TARGET_RATIO, "met": ratio <= TARGET_RATIO,
                "seconds": round(elapsed, 1), "cpus": os.cpu_count(),
                "loadavg_1m": [round(load_before, 2), round(load_after, 2)],
            }
        )
    )  # fmt: skip
    print()
    print(f"{'median over rounds (us/request)':<34} {'raw':>9} {'simbank':>9} {'ratio':>7}")
    for key, label in (
        ("p50_us", "wall, p50 request (the target)"),
        ("per_request_us", "wall, mean per request"),
        ("p99_us", "wall, p99 request"),
        ("cpu_per_request_us", "client CPU per request"),
    ):
        print(f"{label:<34} {raw[key]:>9.1f} {sim[key]:>9.1f} {sim[key] / raw[key]:>7.2f}")
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    print(f"target simbank/raw <= {TARGET_RATIO}: {verdict} ({ratio:.2f}); {elapsed:.1f} s")
    print(f"1-min load average before/after: {load_before:.2f} / {load_after:.2f}", end="")
    busy = max(load_before, load_after) > 0.5
    print(" - other work was running: wall figures are unreliable, rerun" if busy else "")
    if args.profile is not None:
        profile_simbank(args.requests, args.profile)


if __name__ == "__main__":
    main()
