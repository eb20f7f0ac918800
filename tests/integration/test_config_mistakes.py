"""Each kind of config mistake, through the real command line: ``simbankd check-config FILE``
and ``simbankd run --config FILE`` (subprocesses) exit 78 (EX_CONFIG) with one line on stderr,
``file: key.path: reason``, and start nothing.

"Bad port" is both an MQTT port outside 1-65535 and a serial port that is not an absolute
path. A serial port that does not exist is not a mistake: modems are plugged in later, so
``check-config`` notes it and ``run`` starts and reports the modem ``absent``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from simbank.config import EXIT_CONFIG
from simbank.config.models import MqttConfig
from simbank.contract import Topics
from simbank.mosquitto import PrivateMosquitto
from simbank.mqtt import StateWatcher

pytestmark = pytest.mark.integration

SIMBANKD = Path(sys.executable).parent / "simbankd"
COMMAND = [str(SIMBANKD)] if SIMBANKD.exists() else [sys.executable, "-m", "simbank.daemon.cli"]
HEAD = '[gateway]\nid = "gw1"\nstate_dir = "{state}"\n'
MODEM = '[[modems]]\nid = "{id}"\nport = "{port}"\n'


@dataclass(frozen=True)
class Mistake:
    text: str
    expected: str  # the stderr line after "<file>: "


def _mistakes(tmp: Path) -> dict[str, Mistake]:
    password_dir = tmp / "password-dir"
    password_dir.mkdir()
    empty = tmp / "empty-password"
    empty.write_text("\n")
    missing = tmp / "no-such-password"
    auth = '[mqtt]\nusername = "gw1"\npassword_file = "{}"\n'
    return {
        "syntax": Mistake(
            HEAD + "[mqtt\nport = 1883\n",
            "(syntax): Expected ']' at the end of a table declaration (at line 4, column 6)",
        ),
        "unknown key": Mistake(HEAD + '[mqtt]\nhots = "broker"\n', "mqtt.hots: unknown key"),
        "wrong type": Mistake(
            HEAD + MODEM.format(id="m1", port="/dev/ttyUSB2") + 'slots = "two"\n',
            'modems[0].slots: Input should be a valid integer, not a string ("two")',
        ),
        "wrong type (boolean as number)": Mistake(
            HEAD + "[mqtt]\nport = true\n",
            "mqtt.port: Input should be a valid integer, not a boolean (true)",
        ),
        "bad MQTT port": Mistake(
            HEAD + "[mqtt]\nport = 70000\n",
            "mqtt.port: Input should be less than or equal to 65535",
        ),
        "bad MQTT port (zero)": Mistake(
            HEAD + "[mqtt]\nport = 0\n", "mqtt.port: Input should be greater than or equal to 1"
        ),
        "bad serial port": Mistake(
            HEAD + MODEM.format(id="m1", port="COM3"),
            "modems[0].port: port must be an absolute device path",
        ),
        "duplicate modem id": Mistake(
            HEAD
            + MODEM.format(id="m1", port="/dev/ttyUSB2")
            + MODEM.format(id="m1", port="/dev/ttyUSB6"),
            "modems: duplicate modem id 'm1' (modems[0] and modems[1])",
        ),
        "password file missing": Mistake(
            HEAD + auth.format(missing),
            f"mqtt.password_file: cannot read {missing}: No such file or directory",
        ),
        "password file a directory": Mistake(
            HEAD + auth.format(password_dir),
            f"mqtt.password_file: cannot read {password_dir}: Is a directory",
        ),
        "password file empty": Mistake(
            HEAD + auth.format(empty),
            f"mqtt.password_file: {empty} is empty (the password goes on its first line)",
        ),
    }


KINDS = [
    "syntax",
    "unknown key",
    "wrong type",
    "wrong type (boolean as number)",
    "bad MQTT port",
    "bad MQTT port (zero)",
    "bad serial port",
    "duplicate modem id",
    "password file missing",
    "password file a directory",
    "password file empty",
]


def test_every_kind_of_mistake_is_run(tmp_path: Path) -> None:
    assert list(_mistakes(tmp_path)) == KINDS


async def _simbankd(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *COMMAND, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("kind", KINDS)
async def test_each_mistake_exits_78_with_one_line(tmp_path: Path, kind: str) -> None:
    mistake = _mistakes(tmp_path)[kind]
    config = tmp_path / "simbank.toml"
    config.write_text(mistake.text.format(state=tmp_path / "state"), encoding="utf-8")
    expected = f"{config}: {mistake.expected}"
    (check, check_out, check_err), (run, _, run_err) = await asyncio.gather(
        _simbankd("check-config", str(config)), _simbankd("run", "--config", str(config))
    )
    assert (check, check_err.splitlines()) == (EXIT_CONFIG, [expected]), check_out
    assert (run, run_err.splitlines()) == (EXIT_CONFIG, [expected])
    assert not (tmp_path / "state").exists(), "run started before it refused the config"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 file anyway")
async def test_an_unreadable_password_file_exits_78(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret-Pa55\n")
    secret.chmod(0)
    config = tmp_path / "simbank.toml"
    config.write_text(
        HEAD.format(state=tmp_path / "state")
        + f'[mqtt]\nusername = "gw1"\npassword_file = "{secret}"\n'
    )
    code, _, err = await _simbankd("check-config", str(config))
    assert (code, err.splitlines()) == (
        EXIT_CONFIG,
        [f"{config}: mqtt.password_file: cannot read {secret}: Permission denied"],
    )


async def test_a_config_file_that_cannot_be_read_exits_78(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    code, _, err = await _simbankd("run", "--config", str(missing))
    assert (code, err.splitlines()) == (
        EXIT_CONFIG,
        [f"{missing}: (file): cannot read: No such file or directory"],
    )


async def test_a_serial_port_that_does_not_exist_yet_is_not_a_mistake(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    port = tmp_path / "dev" / "ttyUSB9"
    config = tmp_path / "simbank.toml"
    config.write_text(
        HEAD.format(state=tmp_path / "state")
        + f'[mqtt]\nport = {mosquitto.port}\nbase_topic = "{base_topic}"\n'
        + '[logging]\nformat = "json"\n'
        + MODEM.format(id="m1", port=port)
    )
    code, out, err = await _simbankd("check-config", str(config))
    assert (code, err) == (0, "")
    assert out.splitlines()[1] == (
        f"{config}: note: modems[0].port {port} does not exist now; "
        "modem m1 is reported absent until it appears"
    )
    topics = Topics(base_topic, "gw1")
    watcher = StateWatcher(MqttConfig(port=mosquitto.port), base_topic, f"w-{base_topic}", "gw1")
    watching = asyncio.create_task(watcher.run(), name="absent-port-watcher")
    daemon = subprocess.Popen(
        [*COMMAND, "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(20):
            while watcher.state.get(topics.modem("m1"), {}).get("state") != "absent":
                assert daemon.poll() is None, daemon.stderr.read() if daemon.stderr else ""
                await asyncio.sleep(0.05)
        assert watcher.state[topics.bridge_state] == {"state": "online"}
    finally:
        daemon.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(daemon.wait, 20)
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
    assert code == 0
