"""The ledger's storage fails under a running gateway: its disk fills up, or its filesystem
turns read-only after an I/O error. Every request that books is answered
``storage_unavailable`` at once, nothing is dialled, the gateway says ``degraded`` (one event
at the start), a text that arrives stays on the SIM and the modem's session goes on. Once the
storage is back, the recovery probe ends the spell by itself (one event), the text is stored
and the next call is served.

Real filesystems (root only: skipped with the reason otherwise): a 3 MB tmpfs filled by a
file, as a log or a core dump fills an SD card; an ext4 image on a loop device mounted
``errors=remount-ro``, whose error the kernel is made to raise (``trigger_fs_error``), so the
kernel itself turns it read-only under the open ledger, as after a failing SD card's I/O error;
the operator then checks the filesystem (``e2fsck``) and mounts it again.

A daemon *started* on a full or read-only state directory cannot open its ledger: it waits,
saying ``degraded`` and refusing every request, and starts by itself once it can."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from atlog import AtLog, at_log  # noqa: F401 -- the fixture
from bankrig import BankRig, config_text, one_modem, outside, running, start_daemon, stop_daemon

from simbank.config.models import PolicyConfig
from simbank.config.storage import StorageConfig
from simbank.simulator import Scenario
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid

pytestmark = pytest.mark.integration

FAST = Timing(boot_s=0.3, sim_init_s=0.2, ring_s=0.1, talk_s=1.0, rssi_period_s=5)
ICCID = make_iccid(1901)
ICCID2 = make_iccid(1902)
POLICY = PolicyConfig(quiet_hours=[], min_call_gap_s=0, calls_per_destination_per_day=10)
STORAGE = StorageConfig(probe_interval_s=0.2, free_space_check_s=0.2, free_space_margin_mb=1)


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")


@contextlib.contextmanager
def small_filesystem(where: Path, size: str = "3m") -> Iterator[Path]:
    _need_root()
    where.mkdir(parents=True)
    mounted = _run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        _run("umount", "-l", str(where))


@contextlib.contextmanager
def ext4_image(where: Path, image: Path) -> Iterator[Path]:
    """An ext4 filesystem in ``image`` on a loop device at ``where``, that the kernel turns
    read-only at its first error (``errors=remount-ro``)."""
    _need_root()
    if shutil.which("mkfs.ext4") is None:
        pytest.skip("mkfs.ext4 (e2fsprogs) is not installed")
    where.mkdir(parents=True)
    with image.open("wb") as f:
        f.truncate(16 * 1024 * 1024)
    made = _run("mkfs.ext4", "-q", "-F", str(image))
    if made.returncode != 0:
        pytest.skip(f"mkfs.ext4 failed: {made.stderr.strip()}")
    mounted = _run("mount", "-o", "loop,errors=remount-ro", str(image), str(where))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a loop device here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        _run("umount", "-l", str(where))


def turn_read_only(where: Path) -> None:
    """Make the kernel meet an ext4 error on ``where``'s filesystem: it aborts the journal and
    remounts the filesystem read-only under every open file (what an SD card's I/O error
    does; ``mount -o remount,ro`` would refuse, the ledger being open for writing)."""
    device = Path(_run("findmnt", "-n", "-o", "SOURCE", str(where)).stdout.strip()).name
    trigger = Path("/sys/fs/ext4") / device / "trigger_fs_error"
    if not trigger.exists():
        pytest.skip(f"this kernel has no {trigger}")
    trigger.write_text("simbank test: turn read-only\n")
    options = _run("findmnt", "-n", "-o", "OPTIONS", str(where)).stdout
    # Newer kernels show it as ``emergency_ro`` beside the mount's own ``rw``.
    assert options.startswith("ro") or "emergency_ro" in options, options


def check_and_remount(where: Path, image: Path, tmp_path: Path) -> None:
    """What the operator does: unmount, check the filesystem, mount it again."""
    _run("umount", "-l", str(where))
    checked = tmp_path / "checked.img"
    shutil.copyfile(image, checked)  # the old device stays busy while the daemon holds it
    fsck = _run("e2fsck", "-f", "-y", str(checked))
    assert fsck.returncode in (0, 1), fsck.stdout + fsck.stderr  # 1: errors corrected
    mounted = _run("mount", "-o", "loop,errors=remount-ro", str(checked), str(where))
    assert mounted.returncode == 0, mounted.stderr


def fill(where: Path) -> Path:
    filler = where / "filler"
    with filler.open("wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    return filler


def _scenario(second: bool = False) -> Scenario:
    modems = [
        ModemSpec(
            id="m1", dialect="quectel-ec21", slots=[SimSpec(iccid=ICCID, registration_delay_s=0.1)]
        )
    ]
    if second:
        modems.append(
            ModemSpec(
                id="m2",
                dialect="simcom-sim7600",
                slots=[SimSpec(iccid=ICCID2, registration_delay_s=0.1)],
            )
        )
    return Scenario(timing=FAST, modems=modems)


def _bridge(rig: BankRig) -> dict[str, object]:
    return rig.watcher.state.get(rig.topics.bridge_state, {})


def _info(rig: BankRig) -> dict[str, object]:
    return rig.watcher.state.get(rig.topics.bridge_info, {})


def _storage(rig: BankRig) -> dict[str, object]:
    storage = _info(rig).get("storage")
    return storage if isinstance(storage, dict) else {}


async def _fails_and_holds(rig: BankRig, atl: AtLog, causes: set[str]) -> int:
    """The storage has just failed: calls are refused untried, the gateway says ``degraded``
    (one event), a text stays on the SIM, the session goes on. Returns the dials so far."""
    dials = len(atl.texts("ATD"))
    took = []
    for payload in (
        {"number": "+15550100172", "max_duration_s": 2},
        {"number": "+15550100173", "max_duration_s": 2, "transaction": "t-full-1"},
        {"number": "+15550100174", "max_duration_s": 2},
    ):
        asked = time.monotonic()
        refused = await rig.request("call", payload, timeout=10)
        took.append(time.monotonic() - asked)
        assert refused.get("code") == "storage_unavailable", refused
        assert refused["detail"]["cause"] in causes, refused
    # A figure for the record (bench/ holds speed targets; no bound asserted here).
    print(f"storage_unavailable answered in {', '.join(f'{t * 1000:.0f} ms' for t in took)}")
    assert len(atl.texts("ATD")) == dials  # nothing dialled
    await rig.until(lambda: _bridge(rig).get("state") == "degraded")
    assert _bridge(rig)["reason"] in causes
    await rig.until(lambda: _info(rig).get("state") == "degraded")
    storage = _info(rig)["storage"]
    assert isinstance(storage, dict) and storage["reason"] in causes and storage["detail"]
    assert len(rig.events("storage_degraded")) == 1
    # Read-only requests still work.
    status = await rig.request("status", {})
    assert status["status"] == "ok", status
    # A text arrives meanwhile: it cannot be stored, so it stays on the SIM (never deleted
    # unstored), and the modem's session goes on.
    sup = rig.daemon.supervisors["m1"]
    sessions, card = sup.sessions, rig.bank.sim(ICCID)
    rig.bank.send_sms(ICCID, "+447700900123", "are you there?")
    await rig.until(lambda: atl.texts("AT+CMGR"))
    await rig.until(lambda: atl.texts("AT+CMGL"))  # listed again, not taken
    assert card.sms and not rig.events("sms_received")
    assert sup.sessions == sessions and rig.modem("m1")["state"] == "ready"
    assert len(rig.events("storage_degraded")) == 1  # one event for the whole spell
    return dials


async def _comes_back(rig: BankRig, atl: AtLog, dials: int) -> None:
    """The storage is back: the probe ends the spell (one event), the text is stored and
    deleted, the refused transaction is served (it left no trace)."""
    await rig.until(lambda: rig.events("storage_recovered"))
    await rig.until(lambda: _bridge(rig).get("state") == "online")
    await rig.until(lambda: _info(rig).get("state") == "online")  # a message of its own
    card = rig.bank.sim(ICCID)
    await rig.until(lambda: rig.events("sms_received"))
    await rig.until(lambda: not card.sms)  # stored, then deleted from the SIM
    again = await rig.request(
        "call", {"number": "+15550100173", "max_duration_s": 2, "transaction": "t-full-1"}
    )
    assert again["status"] == "ok", again
    assert len(atl.texts("ATD")) == dials + 1
    assert len(rig.events("storage_degraded")) == len(rig.events("storage_recovered")) == 1


async def test_a_full_disk_degrades_refuses_at_once_and_recovers(
    tmp_path: Path,
    mosquitto: object,
    base_topic: str,
    at_log: AtLog,  # noqa: F811 -- the fixture
) -> None:
    with small_filesystem(tmp_path / "disk") as disk:
        async with running(
            tmp_path,
            mosquitto,  # type: ignore[arg-type]
            base_topic,
            _scenario(),
            policy=POLICY,
            state_dir=disk / "state",
            storage=STORAGE,
        ) as rig:
            await rig.until(rig.modems_ready)
            served = await rig.request("call", {"number": "+15550100171", "max_duration_s": 2})
            assert served["status"] == "ok", served
            assert _bridge(rig)["state"] == "online" and not rig.events("storage_low")
            # The backup taken at start must be done: one failing on the full disk would free
            # its temporary file, and the call after it could book in the space it left.
            await rig.until(lambda: _storage(rig).get("last_backup"))
            filler = fill(disk)
            # The free-space watch warns (below the 1 MB margin) as the disk fills.
            await rig.until(lambda: rig.events("storage_low"))
            dials = await _fails_and_holds(rig, at_log, {"disk_full"})
            filler.unlink()
            await _comes_back(rig, at_log, dials)
            assert len(rig.events("storage_low")) == 1


async def test_a_filesystem_turned_read_only_degrades_and_recovers_once_remounted(
    tmp_path: Path,
    mosquitto: object,
    base_topic: str,
    at_log: AtLog,  # noqa: F811 -- the fixture
) -> None:
    image = tmp_path / "sd.img"
    with ext4_image(tmp_path / "sd", image) as disk:
        async with running(
            tmp_path,
            mosquitto,  # type: ignore[arg-type]
            base_topic,
            _scenario(second=True),
            policy=POLICY,
            state_dir=disk / "state",
            storage=STORAGE,
        ) as rig:
            await rig.until(rig.modems_ready)
            served = await rig.request(
                "call", {"number": "+15550100171", "max_duration_s": 2, "modem": "m1"}
            )
            assert served["status"] == "ok", served
            turn_read_only(disk)
            dials = await _fails_and_holds(rig, at_log, {"read_only", "io_error"})
            # The carrier blocks m2's SIM meanwhile: the block is reported at once and the
            # SIM quarantined, though the ledger cannot store it yet; m1 goes on.
            sessions = rig.daemon.supervisors["m1"].sessions
            rig.bank.sim(ICCID2).deny(7)
            await rig.until(lambda: rig.events("sim_blocked", iccid=ICCID2))
            await rig.until(lambda: rig.sim(ICCID2).get("state") == "blocked")
            assert rig.daemon.supervisors["m1"].sessions == sessions
            check_and_remount(disk, image, tmp_path)
            await _comes_back(rig, at_log, dials)
            # Stored once the storage was back: a restart would still know it.
            await rig.until(lambda: rig.daemon.ledger.sim_states()[ICCID2].state == "blocked")
            assert len(rig.events("sim_blocked", iccid=ICCID2)) == 1


async def test_a_daemon_started_on_a_full_or_read_only_disk_waits_degraded_then_starts(
    tmp_path: Path, mosquitto: object, base_topic: str
) -> None:
    port = mosquitto.port  # type: ignore[attr-defined]
    with small_filesystem(tmp_path / "disk") as disk:
        async with outside(tmp_path, mosquitto, base_topic, one_modem("quectel", 1960)) as out:  # type: ignore[arg-type]
            config = tmp_path / "simbank.toml"
            paths = {"m1": str(out.bank.modems["m1"].path)}
            config.write_text(
                config_text(disk, port, base_topic, paths, calls_per_hour=10)
                + "[storage]\nprobe_interval_s = 0.3\nfree_space_margin_mb = 0\n"
            )
            log = tmp_path / "daemon.log"
            state = out.topics.bridge_state

            def bridge() -> dict[str, object]:
                return out.watcher.state.get(state, {})

            def modem() -> dict[str, object]:
                return out.watcher.state.get(out.topics.modem("m1"), {})

            def usage() -> dict[str, object]:
                sim = out.watcher.state.get(out.topics.sim(make_iccid(1960)), {})
                return sim.get("usage") or {}

            def limits() -> dict[str, object]:
                sim = out.watcher.state.get(out.topics.sim(make_iccid(1960)), {})
                return sim.get("limits") or {}

            def events(kind: str) -> list[dict[str, object]]:
                return [e for e in out.watcher.events if e.get("type") == kind]

            async def until(predicate: object, timeout: float = 30) -> None:
                async with asyncio.timeout(timeout):
                    while not predicate():  # type: ignore[operator]
                        assert process.poll() is None, log.read_text()[-3000:]
                        await asyncio.sleep(0.05)

            async def served(number: str) -> None:
                await until(
                    lambda: (
                        out.watcher.state.get(out.topics.modem("m1"), {}).get("state") == "ready"
                    )
                )
                answer = await out.client.request("call", {"number": number, "max_duration_s": 2})
                assert answer["status"] == "ok", answer

            async def waits_degraded(causes: set[str]) -> None:
                await until(lambda: bridge().get("state") == "degraded")
                assert bridge()["reason"] in causes, bridge()
                info = out.topics.bridge_info  # a message of its own, after bridge/state
                await until(lambda: out.watcher.state.get(info, {}).get("state") == "degraded")
                assert out.watcher.state[info]["storage"]["reason"] in causes
                for command, payload in (
                    ("call", {"number": "+15550100181", "max_duration_s": 2}),
                    ("status", {}),
                    ("sim/report", {"iccid": make_iccid(1960)}),
                ):
                    refused = await out.client.request(command, payload, timeout=10)
                    assert refused.get("code") == "storage_unavailable", refused
                    assert refused["detail"]["cause"] in causes, refused
                # Nobody but the stand-in: no modem opened, nothing dialled; the modem says so.
                await until(lambda: modem().get("state") == "offline")
                assert "storage" in str(modem()["reason"])

            # A first life books a call, then stops.
            process = start_daemon(config, log)
            await served("+15550100180")
            await asyncio.to_thread(stop_daemon, process)
            calls_before = out.bank.carrier.stats.calls
            out.watcher.state.pop(out.topics.modem("m1"), None)

            # The disk is full when the daemon starts.
            filler = fill(disk)
            process = start_daemon(config, log)
            await waits_degraded({"disk_full"})
            assert len(events("storage_degraded")) == 1
            # `systemctl reload` meanwhile, after an edit: the daemon starts with the new file.
            config.write_text(
                config.read_text().replace("calls_per_hour = 10", "calls_per_hour = 11")
            )
            process.send_signal(signal.SIGHUP)
            assert out.bank.carrier.stats.calls == calls_before
            filler.unlink()
            await until(lambda: events("storage_recovered"))
            await until(lambda: bridge().get("state") == "online")
            await served("+15550100182")
            await until(lambda: limits().get("calls_per_hour") == 11)
            await asyncio.to_thread(stop_daemon, process)
            assert process.returncode == 0, log.read_text()[-3000:]
            out.watcher.state.pop(out.topics.modem("m1"), None)

            # Read-only when it starts (the filesystem is not in use: a plain remount does).
            remounted = _run("mount", "-o", "remount,ro", str(disk))
            assert remounted.returncode == 0, remounted.stderr
            process = start_daemon(config, log)
            await waits_degraded({"read_only"})
            remounted = _run("mount", "-o", "remount,rw", str(disk))
            assert remounted.returncode == 0, remounted.stderr
            await until(lambda: len(events("storage_recovered")) == 2)
            await served("+15550100183")
            # The same ledger all along: its three calls (one per life) are all there.
            await until(lambda: usage().get("calls_hour") == 3)
            await asyncio.to_thread(stop_daemon, process)
            assert process.returncode == 0, log.read_text()[-3000:]
            assert len(events("storage_degraded")) == 2
