"""The ledger's disk fills up: every request that books is answered ``storage_unavailable`` at
once, nothing is dialled, a text that arrives stays on the SIM, the modem's session goes on;
once space returns the text is stored and the first call is served.

The daemon's ``state_dir`` is on a real 3 MB tmpfs (root only: skipped with the reason
otherwise), filled by a file as a log or a core dump would fill an SD card."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from atlog import AtLog, at_log  # noqa: F401 -- the fixture
from bankrig import running

from simbank.config.models import PolicyConfig
from simbank.simulator import Scenario
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid

pytestmark = pytest.mark.integration

FAST = Timing(boot_s=0.3, sim_init_s=0.2, ring_s=0.1, talk_s=1.0, rssi_period_s=5)
ICCID = make_iccid(1901)
POLICY = PolicyConfig(quiet_hours=[], min_call_gap_s=0, calls_per_destination_per_day=10)


@contextlib.contextmanager
def small_filesystem(where: Path, size: str = "3m") -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    where.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(where: Path) -> Path:
    filler = where / "filler"
    with filler.open("wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    return filler


async def test_a_full_disk_refuses_at_once_dials_nothing_and_recovers(
    tmp_path: Path,
    mosquitto: object,
    base_topic: str,
    at_log: AtLog,  # noqa: F811 -- the fixture
) -> None:
    scenario = Scenario(
        timing=FAST,
        modems=[
            ModemSpec(
                id="m1",
                dialect="quectel-ec21",
                slots=[SimSpec(iccid=ICCID, registration_delay_s=0.1)],
            )
        ],
    )
    with small_filesystem(tmp_path / "disk") as disk:
        state = disk / "state"
        async with running(
            tmp_path,
            mosquitto,  # type: ignore[arg-type]
            base_topic,
            scenario,
            policy=POLICY,
            state_dir=state,
        ) as rig:
            await rig.until(rig.modems_ready)
            served = await rig.request("call", {"number": "+15550100171", "max_duration_s": 2})
            assert served["status"] == "ok", served
            dials = len(at_log.texts("ATD"))
            filler = fill(disk)
            for payload in (
                {"number": "+15550100172", "max_duration_s": 2},
                {"number": "+15550100173", "max_duration_s": 2, "transaction": "t-full-1"},
            ):
                refused = await rig.request("call", payload, timeout=10)
                assert refused.get("code") == "storage_unavailable", refused
                assert "full" in refused["error"]
            assert len(at_log.texts("ATD")) == dials  # nothing dialled
            # A text arrives meanwhile: it cannot be stored, so it stays on the SIM (never
            # deleted unstored), and the modem's session goes on.
            sup = rig.daemon.supervisors["m1"]
            sessions, card = sup.sessions, rig.bank.sim(ICCID)
            rig.bank.send_sms(ICCID, "+447700900123", "are you there?")
            await rig.until(lambda: at_log.texts("AT+CMGR"))
            await rig.until(lambda: at_log.texts("AT+CMGL"))  # listed again, not taken
            assert card.sms and not rig.events("sms_received")
            assert sup.sessions == sessions and rig.modem("m1")["state"] == "ready"
            filler.unlink()
            await rig.until(lambda: rig.events("sms_received"))
            await rig.until(lambda: not card.sms)  # stored, then deleted from the SIM
            again = await rig.request(
                "call",
                {"number": "+15550100173", "max_duration_s": 2, "transaction": "t-full-1"},
            )
            assert again["status"] == "ok", again  # the refused request left no trace
            assert len(at_log.texts("ATD")) == dials + 1
