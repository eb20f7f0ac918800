"""`simbankd demo` as a newcomer runs it: simulated bank, private mosquitto, daemon, table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_demo_shows_all_eight_modems_with_their_sims(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "simbank.daemon.cli",
            "demo",
            "--until-online",
            "--duration",
            "30",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "all 8 modems online with their SIMs after" in out
    final_table = out.rsplit("modems ready:", 1)[1]
    assert final_table.startswith(" 8/8")
    for n in range(1, 9):
        assert f"\nm{n}     ready" in final_table
    assert "simbank demo stopped." in out
    # The daemon logged JSON lines, with no phone number or IMSI in clear.
    log = (tmp_path / "simbankd.log").read_text()
    assert '"event": "modem_online"' in log or '"type": "modem_online"' in log
    assert "00101" not in log
