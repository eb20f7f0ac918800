"""``simbankctl`` as an operator runs it: a subprocess talking to a simulated gateway through a
real mosquitto; exit codes checked as scripts would."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest
from bankrig import BankRig, running, simbankctl

from simbank.config.models import DetectionConfig
from simbank.ctl.main import _parser
from simbank.ctl.settings import Settings, settings
from simbank.mosquitto import PrivateMosquitto, free_port
from simbank.simulator import Scenario
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid

pytestmark = pytest.mark.integration

FAST = Timing(boot_s=1.0, sim_init_s=0.5, ring_s=0.2, talk_s=30.0, ussd_s=0.2, rssi_period_s=5)
NUMBER = "+15550100001"


@dataclass
class Run:
    code: int
    out: str
    err: str


async def ctl(*args: str, env: Mapping[str, str] | None = None) -> Run:
    """Run ``simbankctl`` with ``args``; the environment holds no SIMBANK_* unless given."""
    return Run(*await simbankctl(*args, env=env))


def scenario() -> Scenario:
    modems = [
        ModemSpec(
            id=f"m{n}",
            dialect="generic",
            slots=[SimSpec(iccid=make_iccid(200 + n), registration_delay_s=0.3)],
        )
        for n in (1, 2)
    ]
    return Scenario(time_scale=1.0, timing=FAST, modems=modems)


def flags(rig: BankRig, mosquitto: PrivateMosquitto) -> list[str]:
    return ["--port", str(mosquitto.port), "--base", rig.topics.root.split("/")[0]]


async def test_an_operator_session(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    detection = DetectionConfig(denied_confirm_s=0.5)
    async with running(tmp_path, mosquitto, base_topic, scenario(), detection=detection) as rig:
        await rig.until(rig.modems_ready)
        m1_sim, m2_sim = rig.modem("m1")["iccid"], rig.modem("m2")["iccid"]
        await rig.until(lambda: rig.sim(m1_sim).get("state") == "active")
        found = flags(rig, mosquitto)  # the only gateway on this base topic is found
        base = [*found, "-g", "gw1"]

        status = await ctl(*found, "status")
        assert status.code == 0, status.err
        assert "bridge: online" in status.out and "traffic: running" in status.out
        assert "modems ready: 2/2" in status.out
        assert "\nm1 " in status.out
        assert "ICCID" in status.out and "POLICY" in status.out and "USAGE" in status.out
        assert f"{m1_sim}  m1     1     active" in status.out
        assert "calls/h 0/20" in status.out

        call = await ctl(*found, "call", NUMBER, "--max-duration", "1", "--modem", "m1")
        assert call.code == 0, call.err
        assert "completed" in call.out and "via m1" in call.out
        assert NUMBER not in call.out + call.err
        assert NUMBER[2:] not in call.out + call.err

        await rig.until(lambda: rig.sim(m1_sim)["usage"]["calls_hour"] == 1)
        frame = await ctl(*base, "watch", "--once")
        assert frame.code == 0, frame.err
        assert "CALLS/H" in frame.out and "SIGNAL" in frame.out
        assert "[#-------] 1/20" in frame.out  # the SIM's hourly quota bar
        assert " dBm" in frame.out and "\x1b[" not in frame.out  # no colours into a pipe

        report = await ctl(*base, "report", m1_sim)
        assert report.code == 0, report.err
        assert "usage, last 30 days (1 record(s))" in report.out
        assert "calls/h 1/20" in report.out
        assert "completed" in report.out and "audit trail" in report.out
        raw = await ctl(*base, "report", m1_sim, "--json")
        assert raw.code == 0
        data = json.loads(raw.out)["data"]
        assert data["iccid"] == m1_sim and len(data["usage"]) == 1
        assert NUMBER[2:] not in report.out + raw.out

        refused = await ctl(*base, "release", m1_sim, "--note", "just checking")
        assert refused.code == 1
        assert refused.err.startswith("simbankctl: not_permitted: ")
        unknown = await ctl(*base, "rotate", "m9")
        assert unknown.code == 1
        assert "simbankctl: unknown_modem: " in unknown.err

        rig.bank.sim(m2_sim).deny(7)
        await rig.until(lambda: rig.sim(m2_sim).get("state") == "blocked")
        blocked = await ctl(*base, "report", m2_sim)
        assert blocked.code == 0, blocked.err
        assert "state   blocked" in blocked.out
        assert "block evidence (0)" not in blocked.out
        assert "reject_cause" in blocked.out
        watch = await ctl(*base, "watch", "--once")
        assert f"!  {m2_sim}" in watch.out  # blocked SIMs are marked even without colour
        released = await ctl(*base, "release", m2_sim, "--note", "carrier ticket 42")
        assert released.code == 0, released.err
        assert "was blocked" in released.out

        disabled = await ctl(*base, "disable", m1_sim)
        assert disabled.code == 0 and f"SIM {m1_sim} is now disabled" in disabled.out
        enabled = await ctl(*base, "enable", m1_sim)
        assert enabled.code == 0 and "is now" in enabled.out, enabled.err
        ussd = await ctl(*base, "ussd", "m1", "*100#")
        assert ussd.code == 0 and ussd.out.startswith(f"m1 (SIM {m1_sim}): "), ussd.err
        sms = await ctl(*base, "--json", "sms", NUMBER, "hello", "--modem", "m1")
        assert sms.code == 0, sms.err
        assert json.loads(sms.out)["data"]["modem"] == "m1" and NUMBER[2:] not in sms.out
        selected = await ctl(*base, "select", "m1", "1")
        assert selected.code == 0 and "m1 on slot 1" in selected.out, selected.err

        paused = await ctl(*base, "pause", "--reason", "maintenance")
        assert paused.code == 0 and "traffic paused: maintenance" in paused.out
        held = await ctl(*base, "status", "--wait", "0.3")
        assert "traffic: PAUSED (maintenance)" in held.out
        no_call = await ctl(*base, "call", NUMBER, "--max-duration", "1")
        assert no_call.code == 1
        assert no_call.err.startswith("simbankctl: circuit_open: ")
        assert NUMBER[2:] not in no_call.out + no_call.err
        resumed = await ctl(*base, "resume", "--json")
        assert resumed.code == 0
        assert json.loads(resumed.out)["data"]["paused"] is False

        tail = asyncio.create_task(ctl(*base, "events", "--count", "1"))
        while not tail.done():  # events are not retained: trigger until the tail has one
            await rig.request("traffic/pause", {"reason": "tail"})
            await rig.request("traffic/resume", {})
            await asyncio.wait({tail}, timeout=0.3)
        events = await tail
        assert events.code == 0, events.err
        lines = events.out.splitlines()
        assert len(lines) == 1 and "circuit_" in lines[0]

        env = {
            "SIMBANK_MQTT_PORT": str(mosquitto.port),
            "SIMBANK_BASE_TOPIC": base_topic,
            "SIMBANK_GATEWAY": "gw1",
        }
        by_env = await ctl("status", env=env)
        assert by_env.code == 0, by_env.err
        assert "modems ready: 2/2" in by_env.out
        closed = {**env, "SIMBANK_MQTT_PORT": str(free_port())}
        flag_wins = await ctl("--port", str(mosquitto.port), "status", env=closed)
        assert flag_wins.code == 0, flag_wins.err

        config = tmp_path / "simbank.toml"
        config.write_text(
            f'[gateway]\nid = "gw1"\n[mqtt]\nport = {mosquitto.port}\n'
            f'base_topic = "{base_topic}"\nprotocol = "3.1.1"\n'
        )
        by_config = await ctl("--config", str(config), "rotate", "m1")
        assert by_config.code == 0, by_config.err
        assert "m1 " in by_config.out


async def test_gateway_discovery_and_timeouts(mosquitto: PrivateMosquitto, base_topic: str) -> None:
    base = ["--port", str(mosquitto.port), "--base", base_topic]
    nothing = await ctl(*base, "rotate", "m1")
    assert nothing.code == 3
    assert "no simbank gateway" in nothing.err
    assert (await ctl(*base, "status")).code == 3
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
        state = f"{base_topic}/gwa/bridge/state"
        await client.publish(state, b'{"state": "online"}', qos=1, retain=True)
        silent = await ctl(*base, "--timeout", "0.5", "rotate", "m1")
        assert silent.code == 75, silent.err
        assert "no answer to sim/rotate from gateway gwa" in silent.err
        await _watch_until_ctrl_c(base, "gwa")
        other = f"{base_topic}/gwb/bridge/state"
        await client.publish(other, b'{"state": "online"}', qos=1, retain=True)
        several = await ctl(*base, "rotate", "m1")
        assert several.code == 2
        assert "--gateway" in several.err and "gwa" in several.err and "gwb" in several.err
        for topic in (state, other):
            await client.publish(topic, b"", qos=1, retain=True)


def _terminal_sigint() -> None:
    """In the child: SIGINT as in a terminal. A run started in the background by a
    non-interactive shell (as CI may be) ignores SIGINT, and children inherit that; Python
    then installs no KeyboardInterrupt handler and Ctrl-C would never arrive."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def _watch_until_ctrl_c(base: list[str], gateway: str) -> None:
    """The live view draws its first frame, then Ctrl-C ends it quietly with exit 0."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simbank.ctl.main",
        *base,
        "watch",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_terminal_sigint,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(60):
            wanted = f"gateway {base[-1]}/{gateway}  bridge: online"
            while wanted not in (line := (await proc.stdout.readline()).decode()):
                assert line, "watch ended before its first frame"
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err


async def test_broker_unreachable_and_bad_config(tmp_path: Path) -> None:
    port = str(free_port())
    for command in (["status"], ["call", NUMBER, "--max-duration", "5"], ["watch", "--once"]):
        run = await ctl("--port", port, "-g", "gw1", *command)
        assert run.code == 69, (command, run.err)
        assert "cannot reach the broker" in run.err
    bad = tmp_path / "bad.toml"
    bad.write_text("[gateway\n")
    assert (await ctl("--config", str(bad), "status")).code == 78
    assert (await ctl("--config", str(tmp_path / "missing.toml"), "status")).code == 78
    assert (await ctl("status", env={"SIMBANK_MQTT_PORT": "http"})).code == 78
    assert (await ctl("--tls-cert", "c.pem", "status")).code == 78
    usage = await ctl("call", NUMBER)
    assert usage.code == 2


def test_settings_precedence_flags_env_config_defaults(tmp_path: Path) -> None:
    config = tmp_path / "simbank.toml"
    config.write_text(
        '[gateway]\nid = "gwc"\n[mqtt]\nhost = "cfg.example"\nport = 1111\nbase_topic = "cfgbase"\n'
    )
    env = {"SIMBANK_MQTT_PORT": "2222", "SIMBANK_GATEWAY": "gwe", "SIMBANK_MQTT_USERNAME": "ops"}

    def resolve(*argv: str, environ: Mapping[str, str] = env) -> Settings:
        return settings(_parser().parse_args([*argv, "status"]), environ)

    s = resolve("--config", str(config), "--port", "3333")
    assert (s.cfg.host, s.cfg.port, s.base, s.gateway) == ("cfg.example", 3333, "cfgbase", "gwe")
    assert s.cfg.username == "ops"
    s = resolve("--config", str(config))
    assert (s.cfg.port, s.gateway) == (2222, "gwe")
    s = resolve("--config", str(config), environ={})
    assert (s.cfg.port, s.gateway) == (1111, "gwc")
    s = resolve("-g", "gwf", "--base", "b", environ={})
    assert (s.cfg.host, s.cfg.port, s.base, s.gateway) == ("127.0.0.1", 1883, "b", "gwf")
    assert s.cfg.protocol == "5" and s.timeout == 60.0
