"""Which serial ports to probe, and which of them another process has open.

``candidates`` expands the globs (``/dev/ttyUSB*``, ``/dev/ttyACM*``, ``/dev/serial/by-id/*``
by default), resolves symlinks and keeps one entry per device node, remembering its
``/dev/serial/by-id/`` name. ``holders`` reads ``/proc/<pid>/fd`` for processes that have a
device open: a port open elsewhere (ModemManager, a terminal program, a daemon that locks
with ``flock`` or not) is never probed. A PTY is left out of that check, since the program at
its far end holds its slave by design; the lock is checked for every port when it is opened.
"""

from __future__ import annotations

import contextlib
import glob
import os
import stat
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from simbank.scan.grouping import natural_key

DEFAULT_PATTERNS: tuple[str, ...] = ("/dev/ttyUSB*", "/dev/ttyACM*", "/dev/serial/by-id/*")
BY_ID = "/dev/serial/by-id/"
PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A port to probe: the path it was found as, its device node, its by-id name."""

    path: str
    device: str
    by_id: str | None = None


def candidates(patterns: Sequence[str], by_id_dir: str = BY_ID) -> list[Candidate]:
    """Every port the patterns match, once per device node, in natural order; a match under
    ``by_id_dir`` is the stable name of the device it points to."""
    found: dict[str, Candidate] = {}
    for pattern in patterns:
        for match in sorted(glob.glob(pattern), key=natural_key):
            device = os.path.realpath(match)
            by_id = match if match.startswith(by_id_dir) else None
            known = found.get(device)
            if known is None:
                found[device] = Candidate(device if by_id else match, device, by_id)
            elif by_id and known.by_id is None:
                found[device] = Candidate(known.path, device, by_id)
    return sorted(found.values(), key=lambda c: natural_key(c.path))


def is_char_device(path: str) -> bool:
    """True for a character device (a tty), False for anything else or nothing."""
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


def is_pty(device: str) -> bool:
    """A pseudo-terminal's slave (``/dev/pts/3``)."""
    return device.startswith("/dev/pts/")


#: Where UUCP-style lock files live (minicom, cu, ppp, gammu take ``LCK..ttyUSB2`` there).
LOCK_DIRS: Final = (Path("/run/lock"), Path("/var/lock"))


def uucp_locks(
    devices: Iterable[str], lock_dirs: Iterable[Path] = LOCK_DIRS
) -> dict[str, list[str]]:
    """Device node → ``"pid N (lock file …)"`` for each device a live process has locked the
    UUCP way (``LCK..<name>`` holding its pid, as text or a binary int). A stale lock (its
    process gone) or one that cannot be read does not count."""
    found: dict[str, list[str]] = {}
    for device in devices:
        for directory in lock_dirs:
            lock = directory / f"LCK..{Path(device).name}"
            try:
                raw = lock.read_bytes()[:64]
            except OSError:
                continue
            pid = _lock_pid(raw)
            if pid is not None and pid != os.getpid() and Path(f"/proc/{pid}").exists():
                found.setdefault(device, []).append(f"pid {pid} (lock file {lock})")
                break
    return found


def _lock_pid(raw: bytes) -> int | None:
    text = raw.strip(b" \n\0")
    if text.isdigit():
        return int(text)
    if len(raw) == 4:  # the old binary form: a native int
        return int.from_bytes(raw, sys.byteorder) or None
    return None


def sees_every_holder(proc: Path = PROC) -> bool:
    """Whether every process's open files can be read here (as root: yes). If not, a port
    held open by another user's program (ModemManager, minicom) cannot be seen."""
    try:
        processes = [p for p in proc.iterdir() if p.name.isdigit()]
    except OSError:
        return False
    for process in processes:
        try:
            next(iter((process / "fd").iterdir()), None)
        except PermissionError:
            return False
        except OSError:  # gone meanwhile
            continue
    return True


def holders(
    devices: Iterable[str], proc: Path = PROC, own_pid: int | None = None
) -> dict[str, list[str]]:
    """Device node → ``"<command> (pid N)"`` of every other process that has it open.

    Only processes whose ``fd`` directory we may read are seen (all of them as root).
    """
    wanted = set(devices)
    own = os.getpid() if own_pid is None else own_pid
    found: dict[str, list[str]] = {}
    if not wanted:
        return found
    try:
        processes = [p for p in proc.iterdir() if p.name.isdigit() and int(p.name) != own]
    except OSError:
        return found
    for process in processes:
        try:
            fds = list((process / "fd").iterdir())
        except OSError:  # gone meanwhile, or not ours to read
            continue
        targets: set[str] = set()
        for fd in fds:
            with contextlib.suppress(OSError):  # closed meanwhile
                targets.add(os.readlink(fd))
        for device in sorted(targets & wanted):
            try:
                command = (process / "comm").read_text(encoding="utf-8").strip()
            except OSError:
                command = "?"
            found.setdefault(device, []).append(f"{command} (pid {process.name})")
    return found
