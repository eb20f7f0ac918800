"""UUCP lock files: a port minicom, cu or gammu has locked is never probed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from simbank.scan.ports import uucp_locks

DEVICE = "/dev/ttyUSB2"


def _lock(directory: Path, content: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "LCK..ttyUSB2"
    path.write_bytes(content)
    return path


def test_a_live_process_lock_in_text_holds_the_port(tmp_path: Path) -> None:
    lock = _lock(tmp_path / "lock", b"         1\n")  # pid 1 is always alive
    assert uucp_locks([DEVICE, "/dev/ttyUSB3"], [tmp_path / "lock"]) == {
        DEVICE: [f"pid 1 (lock file {lock})"]
    }


def test_the_old_binary_form_is_read_too(tmp_path: Path) -> None:
    _lock(tmp_path / "lock", (1).to_bytes(4, sys.byteorder))
    assert DEVICE in uucp_locks([DEVICE], [tmp_path / "lock"])


def test_a_stale_an_unreadable_or_our_own_lock_does_not(tmp_path: Path) -> None:
    _lock(tmp_path / "stale", b"2147483646\n")  # no such process
    _lock(tmp_path / "junk", b"not a pid\n")
    _lock(tmp_path / "ours", f"{os.getpid()}\n".encode())
    dirs = [tmp_path / "stale", tmp_path / "junk", tmp_path / "ours", tmp_path / "missing"]
    assert uucp_locks([DEVICE], dirs) == {}
