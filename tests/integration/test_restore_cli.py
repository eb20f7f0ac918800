"""``simbankd backup`` and ``simbankd restore`` as the operator runs them (real subprocesses,
a real config file, real ledger files): a corrupt ledger is moved aside and the backup put
back with its quotas; a running simbankd (the ledger open) is refused; every failure is one
line on stderr and a clear exit status."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from simbank.bank.usage import UsageKind
from simbank.store.ledger import LEDGER_FILE, Ledger
from simbank.store.recovery import CORRUPT_DIR, RECOVERY_KEY, check_ledger, recovery_pending

pytestmark = pytest.mark.integration

SIMBANKD = Path(sys.executable).parent / "simbankd"
COMMAND = [str(SIMBANKD)] if SIMBANKD.exists() else [sys.executable, "-m", "simbank.daemon.cli"]
ICCID = "89440000000000000017"
T0 = 1_780_000_000.0


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "simbank.toml"
    path.write_text(
        f'[gateway]\nid = "gw1"\nstate_dir = "{tmp_path / "state"}"\n\n'
        f'[storage]\nbackup_dir = "{tmp_path / "backups"}"\nbackup_keep = 2\n',
        encoding="utf-8",
    )
    return path


def _simbankd(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        input=stdin if stdin is not None else "",
    )


def _book(state_dir: Path, first: int, count: int) -> None:
    with Ledger.open(state_dir, durable=False) as ledger:
        for n in range(first, first + count):
            ledger.book(ICCID, UsageKind.CALL, T0 + n, reserved_s=60, destination="+15550102")


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_a_corrupt_ledger_is_restored_from_the_backup(config: Path, tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    _book(state_dir, 0, 12)
    made = _simbankd("backup", "--config", str(config))
    assert made.returncode == 0, made.stderr
    backup = Path(made.stdout.strip())
    assert backup.parent == tmp_path / "backups"
    assert backup.name.startswith("ledger-")
    assert backup.is_file()

    _book(state_dir, 100, 3)  # after the backup; then the header is destroyed
    with (state_dir / LEDGER_FILE).open("r+b") as f:
        f.write(b"\x00garbage" * 12)
    assert check_ledger(state_dir / LEDGER_FILE).corrupt

    listed = _simbankd("restore", "--config", str(config), "--list")
    assert listed.returncode == 0, listed.stderr
    assert backup.name in listed.stdout
    assert "ok, schema" in listed.stdout
    assert "12 usage rows" in listed.stdout

    done = _simbankd("restore", "--config", str(config), "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "moved the ledger aside (check: corrupt)" in done.stdout
    assert f"restored {backup}" in done.stdout
    assert "12 usage rows" in done.stdout
    assert "start simbankd" in done.stdout
    assert "note: nothing salvaged: file is not a database" in done.stdout
    moved = list((state_dir / CORRUPT_DIR).glob(f"*/{LEDGER_FILE}"))
    assert len(moved) == 1  # moved aside, never deleted
    assert check_ledger(moved[0]).corrupt
    with Ledger.open(state_dir) as ledger:
        assert len(ledger.usage_records(ICCID, 0)) == 12  # the backup's quotas
        assert recovery_pending(ledger) is None  # the operator restored on purpose
        record = ledger.get_setting(RECOVERY_KEY)
        assert record is not None
        assert record["restored_from"] == str(backup)
        assert record["confirmed"] is True
        assert ledger.destination_calls(ledger.hasher.hash("+15550102"), 0) == 12


def test_restore_from_a_named_backup_salvages_newer_rows(config: Path, tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    _book(state_dir, 0, 4)
    first = Path(_simbankd("backup", "--config", str(config)).stdout.strip())
    _book(state_dir, 10, 2)
    assert _simbankd("backup", "--config", str(config)).returncode == 0
    _book(state_dir, 20, 3)

    done = _simbankd("restore", "--config", str(config), "--from", first.name, "--yes")
    assert done.returncode == 0, done.stderr
    assert "moved the ledger aside (check: ok)" in done.stdout
    assert "salvaged from the old ledger: " in done.stdout
    assert "usage 5" in done.stdout
    with Ledger.open(state_dir) as ledger:
        assert len(ledger.usage_records(ICCID, 0)) == 9


def test_restore_is_refused_while_the_ledger_is_open(config: Path, tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    _book(state_dir, 0, 2)
    assert _simbankd("backup", "--config", str(config)).returncode == 0  # online: allowed
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from simbank.store.ledger import Ledger
        ledger = Ledger.open(Path({str(state_dir)!r}))
        print("open", flush=True)
        sys.stdin.read()
        """
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "open"
        refused = _simbankd("restore", "--config", str(config), "--yes")
        online = _simbankd("backup", "--config", str(config))
    finally:
        holder.communicate("")
    assert refused.returncode == 75
    line = _one_line(refused.stderr)
    assert f"open in process {holder.pid}" in line
    assert line.endswith("stop simbankd first")
    assert not (state_dir / CORRUPT_DIR).exists()
    assert online.returncode == 0, online.stderr
    assert len(list((tmp_path / "backups").glob("ledger-*.sqlite3"))) == 2


def test_restore_asks_first(config: Path, tmp_path: Path) -> None:
    _book(tmp_path / "state", 0, 2)
    assert _simbankd("backup", "--config", str(config)).returncode == 0
    unasked = _simbankd("restore", "--config", str(config))  # stdin is not a terminal
    assert unasked.returncode == 2
    assert "--yes" in _one_line(unasked.stderr)
    assert not (tmp_path / "state" / CORRUPT_DIR).exists()


def test_failures_are_one_line(config: Path, tmp_path: Path) -> None:
    no_ledger = _simbankd("backup", "--config", str(config))
    assert no_ledger.returncode == 1
    assert _one_line(no_ledger.stderr).startswith("simbankd: no ledger at ")

    _book(tmp_path / "state", 0, 1)
    no_backup = _simbankd("restore", "--config", str(config), "--yes")
    assert no_backup.returncode == 3
    assert _one_line(no_backup.stderr) == f"simbankd: no good backup in {tmp_path / 'backups'}"

    (tmp_path / "backups").mkdir()
    bad = tmp_path / "backups" / "ledger-20260101T000000000000Z.sqlite3"
    bad.write_bytes(b"not a database" * 100)
    named = _simbankd("restore", "--config", str(config), "--from", str(bad), "--yes")
    assert named.returncode == 1
    assert str(bad) in _one_line(named.stderr)

    broken = tmp_path / "broken.toml"
    broken.write_text("[gateway\n", encoding="utf-8")
    assert _simbankd("backup", "--config", str(broken)).returncode == 78
