"""``simbankd scan`` never opens a port it cannot prove free: without root it cannot see other
users' open files, so real serial ports are left alone (``unchecked``) unless the operator says
``--assume-free``; as root it probes them. A real character device (a copy of /dev/null's
node) stands for a serial port; privileges are dropped in a child process."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: mknod and dropping privileges"),
]

CHILD = """
import asyncio, json, os, sys
from pathlib import Path
from simbank.scan.ports import sees_every_holder
from simbank.scan.probe import scan
node, drop, assume_free = sys.argv[1], sys.argv[2] == "drop", sys.argv[3] == "free"
# Import everything the probe loads lazily while still root: this interpreter may live
# where an unprivileged user cannot read (/root/.pyenv).
asyncio.run(scan([node], timeout=0.3, lock_dirs=[], assume_free=True))
if drop:
    os.setgid(65534)
    os.setuid(65534)
found = asyncio.run(scan([node], timeout=0.3, lock_dirs=[], assume_free=assume_free))
print(json.dumps({"sees": sees_every_holder(), "status": [f.status.value for f in found]}))
"""


def _scan(node: Path, *, drop: bool, assume_free: bool = False) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(node), "drop" if drop else "root",
         "free" if assume_free else "checked"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture
def node() -> Iterator[Path]:
    # Not under pytest's tmp_path: its parents are 0700, so the unprivileged child could not
    # even see the node.
    directory = Path(tempfile.mkdtemp(prefix="simbank-scan-"))
    directory.chmod(0o755)
    path = directory / "ttyFAKE0"
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a character device: /dev/null's
    path.chmod(0o666)
    yield path
    shutil.rmtree(directory)


def test_without_root_a_real_port_is_left_unchecked(node: Path) -> None:
    result = _scan(node, drop=True)
    assert result == {"sees": False, "status": ["unchecked"]}


def test_assume_free_probes_it_anyway(node: Path) -> None:
    result = _scan(node, drop=True, assume_free=True)
    assert result["status"] != ["unchecked"], result


def test_as_root_every_holder_is_seen_and_the_port_probed(node: Path) -> None:
    result = _scan(node, drop=False)
    assert result["sees"] is True
    assert result["status"] != ["unchecked"], result
