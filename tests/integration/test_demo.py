"""`simbankd demo` as a newcomer runs it: simulated bank, private mosquitto, daemon, table."""

from __future__ import annotations

import re
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
    # The dashboard and the broker's logins are printed (the broker refuses anonymous clients).
    assert re.search(r"^dashboard: http://127\.0\.0\.1:\d+/  log in as operator / \S+", out, re.M)
    assert (tmp_path / "mqtt-users" / "monitor.password").stat().st_mode & 0o077 == 0
    final_table = out.rsplit("modems ready:", 1)[1]
    assert final_table.startswith(" 8/8")
    for n in range(1, 9):
        assert f"\nm{n}     ready" in final_table
    assert "simbank demo stopped." in out
    # The daemon logged JSON lines, with no phone number or IMSI in clear.
    log = (tmp_path / "simbankd.log").read_text()
    assert '"event": "modem_online"' in log or '"type": "modem_online"' in log
    # No IMSI (15 digits on the 001/01 test network) in clear; "00101" alone may be a time.
    assert not re.search(r"(?<!\d)00101\d{10}(?!\d)", log)


def test_demo_runs_a_call_centre_day(tmp_path: Path) -> None:
    """The day at ×600 for 15 s (07:50 to 10:20): calls served, SIMs rotated as their quotas fill, the block
    the carrier makes mid-morning found, and no quota broken (policy nor carrier)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "simbank.daemon.cli",
            "demo",
            "--duration",
            "15",
            "--time-scale",
            "600",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    summary = out.rsplit("=== simbank demo: summary ===", 1)[1]
    served = re.search(r"^calls served: (\d+) ", summary, re.M)
    assert served and int(served[1]) > 0, summary
    rotated = re.search(r"^sim switches: \d+ \(.*rotated for traffic (\d+)", summary, re.M)
    assert rotated and int(rotated[1]) >= 1, summary
    blocks = re.search(r"^blocks found: (\d+)$", summary, re.M)
    assert blocks and int(blocks[1]) >= 1, summary
    # The SIM the carrier blocked at 09:00 was found, with the time it took.
    assert re.search(r"reject_cause, \d+ evidence item\(s\): the carrier blocked it at 09:00; "
                     r"found .* later", summary), summary  # fmt: skip
    assert "carrier blocks not found" not in summary
    assert "locked SIMs quarantined: 1" in summary  # m3's PUK-locked first SIM
    assert re.search(r"^quota violations: 0 \(.*: 13 SIMs\)$", summary, re.M), summary
    assert "do_not_call" in summary  # the dialer's list held numbers on the do-not-call list
    assert "simbank demo stopped." in out
    log = (tmp_path / "simbankd.log").read_text()
    # No IMSI (15 digits on the 001/01 test network) in clear; "00101" alone may be a time.
    assert not re.search(r"(?<!\d)00101\d{10}(?!\d)", log)
