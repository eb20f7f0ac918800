"""A ledger found corrupt at start is moved aside (never deleted), the last good backup put in
its place, and the gateway held ``degraded`` (``ledger_restored``) until an operator confirms:
meanwhile nothing is booked. The quotas go on from the restored bookings, never from zero.

Real files throughout: the daemon's own ``storage/backup`` writes the backup (SQLite's online
backup API, while it runs), the ledger's header is then overwritten as a failing card or a
power cut mid-write leaves it, and the daemon is started again on the same state directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from atlog import AtLog, at_log  # noqa: F401 -- the fixture
from bankrig import BankRig, running

from simbank.config.models import PolicyConfig
from simbank.config.storage import StorageConfig
from simbank.errors import StorageUnavailable
from simbank.simulator import Scenario
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid
from simbank.store.ledger import LEDGER_FILE

pytestmark = pytest.mark.integration

FAST = Timing(boot_s=0.3, sim_init_s=0.2, ring_s=0.1, talk_s=0.5, rssi_period_s=5)
ICCID = make_iccid(1951)
#: Three calls an hour: two before the corruption, so one is left after the restore.
POLICY = PolicyConfig(
    quiet_hours=[], min_call_gap_s=0, calls_per_hour=3, calls_per_destination_per_day=10
)
STORAGE = StorageConfig(probe_interval_s=0.2, backup_interval_h=0)


def _scenario() -> Scenario:
    return Scenario(
        timing=FAST,
        modems=[
            ModemSpec(
                id="m1",
                dialect="quectel-ec21",
                slots=[SimSpec(iccid=ICCID, registration_delay_s=0.1)],
            )
        ],
    )


def _bridge(rig: BankRig) -> dict[str, object]:
    return rig.watcher.state.get(rig.topics.bridge_state, {})


async def _call(rig: BankRig, n: int) -> dict[str, object]:
    return await rig.request("call", {"number": f"+1555010{n:04d}"[:12], "max_duration_s": 2})


async def _two_calls_and_a_backup(rig: BankRig, first: int) -> dict[str, Any]:
    """Two calls of the hour's three, then a verified backup (the ``storage/backup`` answer)."""
    await rig.until(rig.modems_ready)
    for n in (first, first + 1):
        served = await _call(rig, n)
        assert served["status"] == "ok", served
    backup = await rig.request("storage/backup", {})
    assert backup["status"] == "ok", backup
    return backup


async def test_a_corrupt_ledger_is_restored_from_backup_and_held_until_confirmed(
    tmp_path: Path,
    mosquitto: object,
    base_topic: str,
    at_log: AtLog,  # noqa: F811 -- the fixture
) -> None:
    state = tmp_path / "state"
    options = {"policy": POLICY, "state_dir": state, "storage": STORAGE}
    async with running(tmp_path, mosquitto, base_topic, _scenario(), **options) as rig:  # type: ignore[arg-type]
        backup = await _two_calls_and_a_backup(rig, 161)
        backup_path = Path(backup["data"]["path"])
        assert backup_path.is_file() and backup["data"]["usage_rows"] == 2
        await rig.until(lambda: rig.watcher.state.get(rig.topics.bridge_info, {}).get(
            "storage", {}).get("last_backup") == str(backup_path))  # fmt: skip

    # The header is overwritten: SQLite no longer knows the file.
    ledger = state / LEDGER_FILE
    with ledger.open("r+b") as f:
        f.write(b"\xde\xad\xbe\xef" * 64)

    dials = len(at_log.texts("ATD"))
    async with running(tmp_path, mosquitto, base_topic, _scenario(), **options) as rig:  # type: ignore[arg-type]
        await rig.until(rig.modems_ready)
        await rig.until(lambda: _bridge(rig).get("state") == "degraded")
        assert _bridge(rig)["reason"] == "ledger_restored"
        await rig.until(lambda: rig.events("storage_degraded"))
        (event,) = rig.events("storage_degraded")
        recovery = event["recovery"]
        assert recovery["restored_from"] == str(backup_path)
        moved = Path(recovery["moved_to"])
        assert moved.is_file() and moved.read_bytes()[:4] == b"\xde\xad\xbe\xef"  # kept
        # Held: nothing is booked until an operator has looked.
        refused = await _call(rig, 163)
        assert refused.get("code") == "storage_unavailable", refused
        assert refused["detail"]["cause"] == "ledger_restored"
        assert len(at_log.texts("ATD")) == dials
        # The restored ledger has the two calls: the SIM's quota is not back to zero.
        report = await rig.request("sim/report", {"iccid": ICCID})
        assert report["status"] == "ok", report
        assert len([u for u in report["data"]["usage"] if u["kind"] == "call"]) == 2

        confirmed = await rig.request("storage/confirm", {"note": "checked the backup"})
        assert confirmed["status"] == "ok", confirmed
        assert confirmed["data"]["confirmed"] is True
        await rig.until(lambda: _bridge(rig).get("state") == "online")
        await rig.until(lambda: rig.events("storage_recovered"))
        served = await _call(rig, 164)
        assert served["status"] == "ok", served  # the third call of the hour
        over = await _call(rig, 165)
        assert over.get("code") in {"quota_exhausted", "no_eligible_sim"}, over
        assert len(at_log.texts("ATD")) == dials + 1


def _storage_info(rig: BankRig) -> dict[str, Any]:
    storage = rig.watcher.state.get(rig.topics.bridge_info, {}).get("storage")
    return storage if isinstance(storage, dict) else {}


async def test_corruption_met_while_running_is_recovered_in_place(
    tmp_path: Path,
    mosquitto: object,
    base_topic: str,
    at_log: AtLog,  # noqa: F811 -- the fixture
) -> None:
    """The file is damaged under the running daemon (its page cache hides that until a page
    is read from disk, so the read that meets it is played by reporting the corrupt error
    SQLite would raise). The daemon checks the file, finds it corrupt, swaps in the backup
    without a restart, and holds bookings (only those) until the operator confirms."""
    state = tmp_path / "state"
    options = {"policy": POLICY, "state_dir": state, "storage": STORAGE}
    async with running(tmp_path, mosquitto, base_topic, _scenario(), **options) as rig:  # type: ignore[arg-type]
        backup = await _two_calls_and_a_backup(rig, 171)
        # Every page, in the main file and in the WAL (a young ledger lives in its WAL).
        ledger = state / LEDGER_FILE
        for damaged in (ledger, ledger.with_name(f"{LEDGER_FILE}-wal")):
            with damaged.open("r+b") as f:
                f.write(b"\xde\xad\xbe\xef" * (damaged.stat().st_size // 4))
        rig.daemon.storage.fault(
            StorageUnavailable("ledger read failed: file is not a database", cause="corrupt")
        )
        await rig.until(lambda: _bridge(rig).get("reason") == "ledger_restored")
        (event,) = rig.events("storage_degraded")
        assert event["reason"] == "corrupt"  # the spell started as a corrupt file ...
        # bridge/info is a message of its own, after bridge/state: wait for it too.
        await rig.until(lambda: _storage_info(rig).get("recovery"))
        info = _storage_info(rig)
        assert info["recovery"]["restored_from"] == backup["data"]["path"]  # ... restored
        assert Path(info["recovery"]["moved_to"]).read_bytes()[:4] == b"\xde\xad\xbe\xef"
        dials = len(at_log.texts("ATD"))
        refused = await _call(rig, 173)
        assert refused.get("code") == "storage_unavailable", refused
        # Held for bookings only: the operator can still rest a SIM before confirming.
        disabled = await rig.request("sim/disable", {"iccid": ICCID})
        assert disabled["status"] == "ok", disabled
        enabled = await rig.request("sim/enable", {"iccid": ICCID})
        assert enabled["status"] == "ok", enabled
        confirmed = await rig.request("storage/confirm", {})
        assert confirmed["data"]["confirmed"] is True, confirmed
        await rig.until(lambda: _bridge(rig).get("state") == "online")
        served = await _call(rig, 174)  # the third of the hour: the two before were kept
        assert served["status"] == "ok", served
        over = await _call(rig, 175)
        assert over.get("code") in {"quota_exhausted", "no_eligible_sim"}, over
        assert len(at_log.texts("ATD")) == dials + 1
