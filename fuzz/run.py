"""Run every fuzz target with atheris (libFuzzer) and print one line of figures per target.

    .venv/bin/python fuzz/run.py                      # 1,000,000 inputs per target
    .venv/bin/python fuzz/run.py --runs 20000 at_codec

Each target runs in its own process, seeded from fuzz/corpus/<target>/ (copied to a scratch
folder, so the inputs libFuzzer keeps do not land in the repository). A crash or hang writes the
input to fuzz/regressions/<target>/ (where the default test suite replays it forever), and the
run goes on with the inputs still due, up to ``--max-crashes`` times. Memory is sampled from
/proc while the target runs: RSS once the corpus is loaded, at the end and the peak (VmHWM);
growth past ``--max-growth-mb`` between the first and the last sample fails the run.

Exit status: 0 when every target ran all its inputs without a crash and within the memory bound.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
TARGETS: tuple[str, ...] = ("at_codec", "parsers", "requests")  # fuzz/fuzz_<target>.py
# Longest input per target: modem lines are short (the codec's cap logic is the same at any
# cap, and its small caps are fuzzed), requests must reach past MAX_REQUEST_BYTES (16 KiB).
MAX_LEN: dict[str, int] = {"at_codec": 1024, "parsers": 1024, "requests": 20_000}
_STATUS = re.compile(r"^#(\d+)\s+(\w+)")
_DONE = re.compile(r"^Done (\d+) runs in (\d+) second")
_ARTIFACT = re.compile(r"Test unit written to (\S+)")
_EXECUTED = re.compile(r"^stat::number_of_executed_units:\s+(\d+)")


@dataclass
class Figures:
    target: str
    inputs: int = 0
    seconds: float = 0.0
    rss_start_mb: float | None = None
    rss_end_mb: float | None = None
    rss_peak_mb: float = 0.0
    crashes: list[str] = field(default_factory=list)
    corpus: int = 0

    @property
    def rate(self) -> float:
        return self.inputs / self.seconds if self.seconds else 0.0

    @property
    def growth_mb(self) -> float:
        if self.rss_start_mb is None or self.rss_end_mb is None:
            return 0.0
        return self.rss_end_mb - self.rss_start_mb


def _proc_mb(pid: int, key: str) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{key}:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None


class Sampler(threading.Thread):
    """Samples a process's RSS every ``interval`` seconds once ``started`` is set."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.started = threading.Event()
        self.first: float | None = None
        self.last: float | None = None
        self.peak = 0.0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            peak = _proc_mb(self.pid, "VmHWM")
            if peak is not None:
                self.peak = max(self.peak, peak)
            if not self.started.is_set():
                continue
            rss = _proc_mb(self.pid, "VmRSS")
            if rss is None:
                continue
            if self.first is None:
                self.first = rss
            self.last = rss


def run_once(target: str, runs: int, args: argparse.Namespace, work: Path, log: Path) -> Figures:
    """One libFuzzer process: until ``runs`` inputs are done or the first crash."""
    regressions = FUZZ / "regressions" / target
    regressions.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        str(FUZZ / "libfuzzer.py"),
        target,
        f"-runs={runs}",
        f"-max_len={args.max_len or MAX_LEN[target]}",
        f"-timeout={args.timeout}",
        f"-rss_limit_mb={args.rss_limit_mb}",
        f"-artifact_prefix={regressions}/",
        f"-seed={args.seed}",
        "-print_final_stats=1",
        str(work),
        str(FUZZ / "corpus" / target),
    ]
    figures = Figures(target)
    began = time.monotonic()
    with log.open("a") as out:
        out.write(f"$ {' '.join(command)}\n")
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.PIPE, text=True, errors="replace", cwd=FUZZ
        )
        sampler = Sampler(process.pid)
        sampler.start()
        assert process.stderr is not None
        for line in process.stderr:
            out.write(line)
            if match := _STATUS.match(line):
                figures.inputs = int(match.group(1))
                if match.group(2) == "INITED":
                    sampler.started.set()
            elif match := _DONE.match(line) or _EXECUTED.match(line):
                figures.inputs = int(match.group(1))
            elif match := _ARTIFACT.search(line):
                figures.crashes.append(match.group(1))
        process.wait()
        sampler.stopped.set()
        sampler.join()
    figures.seconds = time.monotonic() - began
    figures.rss_start_mb, figures.rss_end_mb, figures.rss_peak_mb = (
        sampler.first,
        sampler.last,
        sampler.peak,
    )
    if process.returncode != 0 and not figures.crashes:
        figures.crashes.append(f"exit status {process.returncode} (see {log})")
    figures.corpus = sum(1 for _ in work.iterdir())
    return figures


def run_target(target: str, args: argparse.Namespace, logs: Path) -> Figures:
    """All of a target's inputs, restarting after each crash (up to ``--max-crashes``)."""
    total = Figures(target)
    log = logs / f"{target}.log"
    log.write_text("")
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{target}-") as scratch:
        work = Path(scratch)
        while total.inputs < args.runs:
            part = run_once(target, args.runs - total.inputs, args, work, log)
            total.inputs += part.inputs
            total.seconds += part.seconds
            total.crashes += part.crashes
            total.corpus = part.corpus
            if total.rss_start_mb is None:
                total.rss_start_mb = part.rss_start_mb
            total.rss_end_mb = part.rss_end_mb
            total.rss_peak_mb = max(total.rss_peak_mb, part.rss_peak_mb)
            if not part.crashes or len(total.crashes) >= args.max_crashes or part.inputs == 0:
                break
    return total


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table(rows: list[Figures]) -> str:
    head = ("target", "inputs", "seconds", "inputs/s", "RSS start MB", "RSS end MB", "RSS peak MB", "corpus", "crashes")  # fmt: skip
    body = [
        (
            f.target,
            f"{f.inputs:,}",
            f"{f.seconds:.1f}",
            f"{f.rate:,.0f}",
            _mb(f.rss_start_mb),
            _mb(f.rss_end_mb),
            _mb(f.rss_peak_mb),
            f"{f.corpus:,}",
            str(len(f.crashes)),
        )
        for f in rows
    ]
    widths = [max(len(row[i]) for row in (head, *body)) for i in range(len(head))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))) for row in (head, *body)]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help=f"some of {', '.join(TARGETS)} (default: all)")
    parser.add_argument("--runs", type=int, default=1_000_000, help="inputs per target")
    parser.add_argument("--max-len", type=int, help="longest input, bytes (default: per target)")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take")
    parser.add_argument("--rss-limit-mb", type=int, default=2048, help="libFuzzer's OOM limit")
    parser.add_argument("--max-growth-mb", type=float, default=64.0, help="RSS growth allowed")
    parser.add_argument("--max-crashes", type=int, default=5, help="restarts per target")
    parser.add_argument("--seed", type=int, default=1, help="libFuzzer's random seed")
    parser.add_argument("--logs", type=Path, help="where the libFuzzer logs go (default: temp)")
    args = parser.parse_args(argv)
    targets: list[str] = args.targets or list(TARGETS)
    if unknown := set(targets) - set(TARGETS):
        parser.error(f"unknown target(s): {', '.join(sorted(unknown))}")

    logs = args.logs or Path(tempfile.mkdtemp(prefix="simbank-fuzz-logs-"))
    logs.mkdir(parents=True, exist_ok=True)
    print(f"fuzzing {', '.join(targets)}: {args.runs:,} inputs each; logs in {logs}", flush=True)
    rows: list[Figures] = []
    for target in targets:
        figures = run_target(target, args, logs)
        rows.append(figures)
        print(
            f"  {target}: {figures.inputs:,} inputs in {figures.seconds:.0f} s, "
            f"{len(figures.crashes)} crash(es)",
            flush=True,
        )
    print()
    print(table(rows))
    failed = False
    for f in rows:
        for crash in f.crashes:
            print(f"CRASH {f.target}: {crash}")
            failed = True
        if f.inputs < args.runs:
            print(f"SHORT {f.target}: {f.inputs:,} of {args.runs:,} inputs ran")
            failed = True
        if f.growth_mb > args.max_growth_mb:
            print(f"MEMORY {f.target}: RSS grew {f.growth_mb:.1f} MB (> {args.max_growth_mb})")
            failed = True
    if failed:
        print(f"libFuzzer logs: {logs}")
        return 1
    print("no crash, no hang, memory bounded")
    if args.logs is None:
        shutil.rmtree(logs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
