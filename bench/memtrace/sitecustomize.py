"""Where does a long-running daemon's memory go? A diagnostic, never part of the daemon.

Put this directory first on ``PYTHONPATH`` of a process that runs ``simbank.daemon.cli run``
(the fault soak inherits its environment) and set ``SIMBANK_MEMTRACE`` to a directory. Every
``SIMBANK_MEMTRACE_EVERY_S`` (default 120) the process appends one JSON line to
``<dir>/<pid>.jsonl``: its RSS, SQLite's own heap (``sqlite3_memory_used``), the Python heap
(``sys.getallocatedblocks``), glibc's malloc totals (``mallinfo2``: bytes in use, bytes free
inside the heap, mmapped) and the gc object count. With ``SIMBANK_MEMTRACE_TRACEMALLOC=1`` it
also records tracemalloc's traced total and the ten source lines whose memory grew most since
the first sample (tracemalloc starts at ``SIMBANK_MEMTRACE_START_S``, default 60, so start-up
allocations are not counted as growth). Tracemalloc's own snapshots cost memory: leave it off
when the RSS itself is what is measured.

A leak shows as Python memory that keeps climbing at the same lines; a cache filling up shows
as growth in SQLite's heap that levels off at its limit (``PRAGMA cache_size``); allocator
fragmentation shows as RSS growing while what is in use stays flat and the free bytes grow.

It runs in a daemon thread: sampling must not depend on the event loop it is watching.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path


def _sqlite_memory() -> Callable[[], int | None]:
    """``sqlite3_memory_used`` of the libsqlite3 the ``sqlite3`` module is linked against."""
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        return lambda: None
    lib = ctypes.CDLL(name)
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    used: Callable[[], int] = lib.sqlite3_memory_used
    return used


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _mallinfo() -> Callable[[], dict[str, int]]:
    """glibc's heap totals over every arena (``mallinfo2``, glibc 2.33+), or nothing."""
    try:
        libc = ctypes.CDLL(None)
        call = libc.mallinfo2
    except (OSError, AttributeError):
        return dict
    call.restype = _MallInfo2

    def read() -> dict[str, int]:
        info = call()
        return {
            "malloc_in_use": info.uordblks + info.hblkhd,
            "malloc_free": info.fordblks,
            "malloc_mmapped": info.hblkhd,
        }

    return read


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _watch(out: Path, every_s: float, start_s: float, trace: bool) -> None:
    sqlite_used = _sqlite_memory()
    malloc_totals = _mallinfo()
    began = time.monotonic()
    time.sleep(start_s)
    first = None
    if trace:
        tracemalloc.start(1)
        first = tracemalloc.take_snapshot()
    while True:
        record: dict[str, object] = {
            "age_s": round(time.monotonic() - began),
            "rss_kb": _rss_kb(),
            "sqlite_bytes": sqlite_used(),
            "py_blocks": sys.getallocatedblocks(),
            "gc_objects": len(gc.get_objects()),
            **malloc_totals(),
        }
        if first is not None:
            grown = tracemalloc.take_snapshot().compare_to(first, "lineno")[:10]
            record["traced_bytes"] = tracemalloc.get_traced_memory()[0]
            record["grown"] = [
                {"at": str(s.traceback), "size_diff": s.size_diff, "count_diff": s.count_diff}
                for s in grown
            ]
        with out.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        time.sleep(every_s)


def _install() -> None:
    directory = os.environ.get("SIMBANK_MEMTRACE")
    # Only the daemon: the soak's own interpreter and the simulator share the environment.
    if not directory or "simbank.daemon.cli" not in " ".join(sys.orig_argv):
        return
    out = Path(directory) / f"{os.getpid()}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    every = float(os.environ.get("SIMBANK_MEMTRACE_EVERY_S", "120"))
    start = float(os.environ.get("SIMBANK_MEMTRACE_START_S", "60"))
    trace = os.environ.get("SIMBANK_MEMTRACE_TRACEMALLOC") == "1"
    threading.Thread(target=_watch, args=(out, every, start, trace), daemon=True).start()


_install()
