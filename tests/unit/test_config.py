"""Config contract: the shipped example validates; every kind of mistake is one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from simbank.config import EXIT_CONFIG, load_config, parse_config
from simbank.daemon.cli import main
from simbank.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = '[gateway]\nid = "gw1"\n'


def test_example_config_is_valid() -> None:
    config = load_config(ROOT / "config" / "simbank.example.toml")
    assert config.gateway.id == "gw1"
    assert [m.id for m in config.modems] == ["m1", "m2"]
    assert config.policies["default"].quiet_hours == ["21:00-09:00"]


def test_defaults_from_minimal_config() -> None:
    config = parse_config(MINIMAL)
    assert config.mqtt.port == 1883
    assert config.mqtt.base_topic == "simbank"
    assert config.detection.circuit_blocks == 2
    assert "default" in config.policies


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[gateway\nid=1", "f.toml: (syntax): "),
        (MINIMAL + "colour = 1\n", "f.toml: gateway.colour: unknown key"),
        ("colour = 1\n" + MINIMAL, "f.toml: colour: unknown key"),
        (MINIMAL + '[mqtt]\nport = "x"\n', "f.toml: mqtt.port: Input should be a valid integer"),
        (MINIMAL + "[mqtt]\nport = 70000\n", "f.toml: mqtt.port: Input should be less than"),
        ('[gateway]\nid = "GW 1"\n', "f.toml: gateway.id: String should match pattern"),
        (MINIMAL + 'timezone = "Mars/Base"\n', "f.toml: gateway.timezone: unknown time zone"),
        (
            MINIMAL + '[[modems]]\nid="m1"\nport="/dev/a"\n[[modems]]\nid="m1"\nport="/dev/b"\n',
            "duplicate modem id 'm1'",
        ),
        (MINIMAL + '[[modems]]\nid="m1"\nport="ttyUSB0"\n', "f.toml: modems[0].port: port must"),
        (MINIMAL + '[[modems]]\nid="m1"\nport="/dev/a"\nbaudrate=1234\n', "modems[0].baudrate"),
        (MINIMAL + '[policies.default]\nquiet_hours=["9-5"]\n', "policies.default.quiet_hours"),
        (MINIMAL + '[[modems]]\nid="m1"\nport="/dev/a"\nwat=1\n', "modems[0].wat: unknown key"),
        # Wrong TOML types are refused, not coerced (strict models).
        (
            MINIMAL + "[mqtt]\nport = true\n",
            "mqtt.port: Input should be a valid integer, not a boolean (true)",
        ),
        (
            MINIMAL + '[mqtt]\nport = "1883"\n',
            'mqtt.port: Input should be a valid integer, not a string ("1883")',
        ),
        (
            MINIMAL + '[metrics]\nenabled = "yes"\n',
            'metrics.enabled: Input should be a valid boolean, not a string ("yes")',
        ),
        (
            MINIMAL + "[mqtt]\npassword_file = 5\n",
            "mqtt.password_file: Input should be a path, not an integer (5)",
        ),
        (
            MINIMAL + '[policies.default]\nquiet_hours = "21:00-09:00"\n',
            'quiet_hours: Input should be a valid list, not a string ("21:00-09:00")',
        ),
        (
            MINIMAL + '[[modems]]\nid="m1"\nport="/dev/a"\n[[modems]]\nid="m1"\nport="/dev/b"\n',
            "f.toml: modems: duplicate modem id 'm1' (modems[0] and modems[1])",
        ),
        (MINIMAL + "[policies.fast]\n", "f.toml: policies: a [policies.default] table is required"),
    ],
)
def test_each_mistake_is_one_clear_line(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "f.toml")
    assert any(expected in line for line in info.value.lines), info.value.lines
    assert all(line.startswith("f.toml: ") for line in info.value.lines)


def test_all_problems_reported_at_once() -> None:
    text = '[gateway]\nid = "x"\nfoo = 1\n[mqtt]\nport = 0\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, "f.toml")
    assert len(info.value.lines) == 2


def test_numbers_where_floats_are_expected_stay_fine() -> None:
    config = parse_config(MINIMAL.replace('"gw1"\n', '"gw1"\npoll_interval_s = 5\n'))
    assert config.gateway.poll_interval_s == 5.0


def test_check_config_checks_the_password_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "f.toml"
    missing = tmp_path / "no-such-password"
    config.write_text(MINIMAL + f'[mqtt]\nusername = "gw1"\npassword_file = "{missing}"\n')
    assert main(["check-config", str(config)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"{config}: mqtt.password_file: cannot read {missing}: No such file or directory"
    ]
    missing.write_text("s3cret-Pa55\n")
    assert main(["check-config", str(config)]) == 0
    assert "s3cret" not in capsys.readouterr().out


def test_a_serial_port_that_does_not_exist_is_a_note_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "f.toml"
    config.write_text(MINIMAL + '[[modems]]\nid = "m1"\nport = "/dev/simbank-test/none"\n')
    assert main(["check-config", str(config)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{config}: ok (1 modems, 1 policies)",
        f"{config}: note: modems[0].port /dev/simbank-test/none does not exist now; "
        "modem m1 is reported absent until it appears",
    ]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


def test_check_config_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text(MINIMAL)
    assert main(["check-config", str(good)]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text(MINIMAL + "nope = true\n")
    assert main(["check-config", str(bad)]) == EXIT_CONFIG
    assert f"{bad}: gateway.nope: unknown key" in capsys.readouterr().err


def test_run_with_bad_config_exits_78(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[gateway]\nid = "gw1"\n[mqtt]\nport = "many"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "simbank.daemon.cli", "run", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == EXIT_CONFIG
    assert proc.stderr.strip().splitlines() == [
        f'{bad}: mqtt.port: Input should be a valid integer, not a string ("many")'
    ]


def test_configuration_reference_is_current() -> None:
    from simbank.config.reference import render

    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == render(), "run: python -m simbank.config.reference > docs/configuration.md"
