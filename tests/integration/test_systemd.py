"""The shipped systemd files: the unit verifies, its exposure stays ≤ 1.5, sysusers and
tmpfiles apply cleanly, and ``simbankd run`` speaks sd_notify to a socket we bind."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simbank.mosquitto import PrivateMosquitto

pytestmark = pytest.mark.integration

SYSTEMD_DIR = Path(__file__).resolve().parents[2] / "systemd"
UNIT = SYSTEMD_DIR / "simbankd.service"
MAX_EXPOSURE = 1.5
#: the unit's TimeoutStopSec=: systemd SIGKILLs a daemon that takes longer to stop
TIMEOUT_STOP_S = 30.0


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin")
    if not found:
        pytest.skip(f"{name} is not installed (systemd tools are needed for this test)")
    return found


def _unit_setting(key: str) -> list[str]:
    values = []
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == key:
            values.append(value.strip())
    return values


def _fake_root(tmp_path: Path) -> Path:
    """A root directory in which the real unit, unchanged, finds what it refers to.

    ``systemd-analyze verify --root`` resolves the unit's dependencies (sysinit.target,
    modprobe@.service …) and its ExecStart=/ExecReload= binaries inside the root, so the
    root gets the host's system units and stand-ins at the unit's binary paths: the venv's
    simbankd entry point at /opt/simbank/bin/simbankd and the host's kill at /bin/kill
    (test_install.py checks that a real install puts simbankd at that path).
    """
    root = tmp_path / "root"
    units = root / "usr/lib/systemd/system"
    shutil.copytree("/usr/lib/systemd/system", units, symlinks=True)
    for exec_line in _unit_setting("ExecStart") + _unit_setting("ExecReload"):
        binary = exec_line.split()[0].lstrip("-@:+!")
        target = root / binary.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        source = Path(sys.executable).with_name("simbankd")
        if Path(binary).name != "simbankd":
            source = Path(shutil.which(Path(binary).name) or binary)
        shutil.copy(source, target)
    system = root / "etc/systemd/system"
    system.mkdir(parents=True)
    shutil.copy(UNIT, system / UNIT.name)
    return root


def test_unit_verifies_without_a_single_warning(tmp_path: Path) -> None:
    analyze = _tool("systemd-analyze")
    root = _fake_root(tmp_path)
    result = subprocess.run(
        [analyze, "verify", f"--root={root}", UNIT.name],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Unknown keys and unparsable values are only warnings (exit 0): any output fails.
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, output
    assert output == ""


def test_verify_would_catch_a_typo(tmp_path: Path) -> None:
    """The check above has teeth: a misspelt directive is reported."""
    analyze = _tool("systemd-analyze")
    root = _fake_root(tmp_path)
    unit = root / "etc/systemd/system" / UNIT.name
    unit.write_text(unit.read_text().replace("ProtectProc=", "ProtectProcs="))
    result = subprocess.run(
        [analyze, "verify", f"--root={root}", UNIT.name],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "ProtectProcs" in result.stderr


def test_exposure_is_at_most_1_5() -> None:
    analyze = _tool("systemd-analyze")
    result = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    exposure = float(match.group(1))
    assert exposure <= MAX_EXPOSURE, result.stdout


def test_unit_declares_the_contract_the_daemon_relies_on() -> None:
    assert _unit_setting("Type") == ["notify"]
    assert _unit_setting("NotifyAccess") == ["main"]
    assert _unit_setting("WatchdogSec") == ["30"]
    assert _unit_setting("TimeoutStopSec") == [f"{TIMEOUT_STOP_S:.0f}"]
    assert _unit_setting("ExecReload") == ["/bin/kill -HUP $MAINPID"]
    assert "AF_UNIX" in _unit_setting("RestrictAddressFamilies")[0].split()  # sd_notify


def _entries(path: Path) -> dict[str, list[str]]:
    """/etc/passwd or /etc/group as name → fields."""
    return {line.split(":")[0]: line.split(":") for line in path.read_text().splitlines()}


def test_sysusers_creates_simbank_in_dialout(tmp_path: Path) -> None:
    sysusers = _tool("systemd-sysusers")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/group").write_text("root:x:0:\ndialout:x:20:\n")  # as on Debian
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    result = subprocess.run(
        [sysusers, f"--root={root}", "-"],
        input=(SYSTEMD_DIR / "simbank.sysusers").read_text(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    passwd = _entries(root / "etc/passwd")
    groups = _entries(root / "etc/group")
    assert int(passwd["simbank"][2]) < 1000  # a system user
    assert passwd["simbank"][3] == groups["simbank"][2]  # primary group simbank
    assert passwd["simbank"][6] in {"/usr/sbin/nologin", "/sbin/nologin"}
    assert groups["dialout"][2] == "20"
    assert "simbank" in groups["dialout"][3].split(",")


def test_tmpfiles_makes_the_config_directory_group_readable(tmp_path: Path) -> None:
    sysusers = _tool("systemd-sysusers")
    tmpfiles = _tool("systemd-tmpfiles")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    subprocess.run(
        [sysusers, f"--root={root}", "-"],
        input=(SYSTEMD_DIR / "simbank.sysusers").read_text(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = subprocess.run(
        [tmpfiles, f"--root={root}", "--create", "-"],
        input=(SYSTEMD_DIR / "simbank.tmpfiles").read_text(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    groups = _entries(root / "etc/group")
    stat = (root / "etc/simbank").stat()
    assert stat.st_mode & 0o777 == 0o750
    assert stat.st_uid == 0
    assert stat.st_gid == int(groups["simbank"][2])


# -- sd_notify from the real daemon -------------------------------------------------------


class NotifySocket:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[str] = []

    def wait_for(self, field: str, timeout: float) -> list[str]:
        """Collect datagrams until one has ``field`` among its lines; all of them so far."""
        deadline = time.monotonic() + timeout
        while not any(field in m.split("\n") for m in self.messages):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {field} within {timeout}s; got {self.messages}")
            self.sock.settimeout(remaining)
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
        return self.messages


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    ns = NotifySocket(tmp_path / "notify")
    yield ns
    ns.sock.close()


def test_daemon_notifies_ready_and_stopping(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str, notify_socket: NotifySocket
) -> None:
    config = tmp_path / "simbank.toml"
    config.write_text(
        f"""
[gateway]
id = "gw1"
state_dir = "{tmp_path / "state"}"

[mqtt]
host = "{mosquitto.host}"
port = {mosquitto.port}
base_topic = "{base_topic}"

[logging]
level = "debug"
format = "json"
""",
        encoding="utf-8",
    )
    simbankd = Path(sys.executable).with_name("simbankd")
    env = {"NOTIFY_SOCKET": str(notify_socket.path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(
        [str(simbankd), "run", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        messages = notify_socket.wait_for("READY=1", timeout=15)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        messages = notify_socket.wait_for("STOPPING=1", timeout=60)
        # Exits by itself (a hang guard, not a speed figure: bench/ times the stop).
        returncode = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        out = proc.communicate(timeout=10)[0].decode(errors="replace")
    assert returncode == 0, out
    ready_at = next(i for i, m in enumerate(messages) if "READY=1" in m.split("\n"))
    stopping_at = next(i for i, m in enumerate(messages) if "STOPPING=1" in m.split("\n"))
    assert ready_at < stopping_at
