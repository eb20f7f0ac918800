"""Home Assistant discovery payloads: topics, keys, stable ids, devices, state classes, buttons,
and the templates rendered (by Jinja, as Home Assistant does) against real retained payloads."""

from __future__ import annotations

import json
import re
from typing import Any

import aiomqtt
import pytest
from ha_samples import ICCID, modem_state

from simbank.contract import (
    COMMANDS,
    SimState,
    Topics,
    Usage,
)
from simbank.integrations.homeassistant import (
    BIRTH_TOPIC,
    ModemDevice,
    SimDevice,
    birth_topic,
    discovery_messages,
    is_birth,
    is_own_config,
    modem_identifier,
    own_configs,
    sim_identifier,
)
from simbank.integrations.homeassistant.entities import BRIDGE_STATE
from simbank.mqtt import Inbound

OTHER = "89990100000000016021"
TOPIC = re.compile(
    r"^(?P<prefix>[^/]+)/(?P<component>sensor|binary_sensor|button)/simbank_gw1/"
    r"(?P<object_id>[A-Za-z0-9_-]+)/config$"
)
M1 = ModemDevice("m1", "EC25", "Quectel")


def _configs(messages: list[tuple[str, bytes]]) -> dict[str, dict[str, Any]]:
    """object_id → decoded config (with its platform as ``_component``)."""
    out: dict[str, dict[str, Any]] = {}
    for topic, payload in messages:
        match = TOPIC.match(topic)
        assert match, topic
        config = json.loads(payload)
        assert isinstance(config, dict)
        config["_component"] = match["component"]
        out[match["object_id"]] = config
    return out


def _all(month: bool = False) -> dict[str, dict[str, Any]]:
    sims = [SimDevice(ICCID, month=month), SimDevice(OTHER)]
    return _configs(discovery_messages("simbank", "gw1", [M1, ModemDevice("m2")], sims))


def _sim(**changes: Any) -> SimState:
    data: dict[str, Any] = {
        "iccid": ICCID,
        "modem": "m1",
        "slot": 1,
        "state": "active",
        "usage": Usage(calls_hour=2, calls_day=7, call_seconds_day=431, sms_day=1),
    }
    data.update(changes)
    return SimState.model_validate(data)


def test_topics_and_required_keys() -> None:
    messages = discovery_messages(
        "simbank", "gw1", [M1, ModemDevice("m2")], [SimDevice(ICCID, month=True)]
    )
    configs = _configs(messages)
    assert len(configs) == len(messages)  # no topic twice
    assert {t.split("/")[0] for t, _ in messages} == {"homeassistant"}
    sensors = {k for k, c in configs.items() if c["_component"] == "sensor"}
    buttons = {k for k, c in configs.items() if c["_component"] == "button"}
    for modem in ("m1", "m2"):
        keys = ("state", "registration", "operator", "signal", "iccid", "slot")
        assert {f"modem-{modem}-{k}" for k in keys} <= sensors
        assert {f"modem-{modem}-rotate", f"modem-{modem}-reset"} <= buttons
    sim = f"sim-{ICCID}"
    usage = ("calls_hour", "calls_day", "call_seconds_day", "sms_day", "calls_month")
    assert {f"{sim}-{k}" for k in ("state", "block_reason", "sms_unread", *usage)} <= sensors
    assert f"{sim}-quarantined" in configs
    assert {f"{sim}-release", f"{sim}-disable", f"{sim}-enable"} <= buttons
    assert {"gateway-traffic_pause", "gateway-traffic_resume"} <= buttons
    for object_id, config in configs.items():
        key = object_id.rsplit("-", 1)[1]
        assert config["unique_id"] == f"{config['device']['identifiers'][0]}:{key}"
        assert config["name"]
        assert config["has_entity_name"] is True
        assert config["device"]["identifiers"]
        assert config["origin"]["name"] == "simbank"
        if config["_component"] in {"sensor", "binary_sensor"}:
            assert config["state_topic"].startswith("simbank/gw1/")
            assert config["value_template"].startswith("{{")
        else:
            assert config["command_topic"].startswith("simbank/gw1/bridge/request/")
            assert config["retain"] is False


def test_devices_gateway_modem_and_sim() -> None:
    configs = _all()
    assert configs["modem-m1-signal"]["device"] == {
        "identifiers": ["simbank:gw1:modem:m1"],
        "name": "simbank gw1 m1",
        "manufacturer": "Quectel",
        "model": "EC25",
        "via_device": "simbank:gw1",
    }
    assert configs["modem-m2-signal"]["device"]["model"] == "AT modem"  # not probed yet
    sim = configs[f"sim-{ICCID}-state"]["device"]
    assert sim["identifiers"] == [sim_identifier("gw1", ICCID)]
    # Under the gateway, not the modem: a SIM moved to another modem keeps its device.
    assert sim["via_device"] == "simbank:gw1"
    bridge = configs["gateway-bridge"]
    assert bridge["_component"] == "binary_sensor"
    assert bridge["device"]["identifiers"] == ["simbank:gw1"]  # what via_device points at
    assert bridge["state_topic"] == "simbank/gw1/bridge/state"
    assert (bridge["payload_on"], bridge["payload_off"]) == ("online", "offline")
    assert bridge["device_class"] == "connectivity"
    assert "availability" not in bridge


def test_unique_ids_are_stable_and_unique() -> None:
    first = discovery_messages("simbank", "gw1", [M1], [SimDevice(ICCID)])
    ids = [json.loads(p)["unique_id"] for _, p in first]
    assert len(set(ids)) == len(ids)
    assert "simbank:gw1:modem:m1:signal" in ids
    # Another state, signal, registration, SIM or timestamp: the same bytes.
    moved = modem_state(state="switching", signal={"rssi_dbm": -71}, active_slot=2, iccid=OTHER)
    used = _sim(usage=Usage(calls_day=9), state="resting", reason="calls_per_day")
    again = discovery_messages("simbank", "gw1", [ModemDevice.of(moved)], [SimDevice.of(used)])
    assert again == first
    other = discovery_messages("simbank", "gw2", [M1], [SimDevice(ICCID)])
    assert not {json.loads(p)["unique_id"] for _, p in other} & set(ids)


def test_modem_entities_show_only_themodem_state() -> None:
    """Usage lives on the SIM's device: a modem's sensors never switch to another card."""
    configs = _all()
    modem_keys = {k.removeprefix("modem-m1-") for k in configs if k.startswith("modem-m1-")}
    assert modem_keys == {
        "state",
        "registration",
        "operator",
        "signal",
        "iccid",
        "slot",
        "rotate",
        "reset",
    }
    for key in modem_keys:
        config = configs[f"modem-m1-{key}"]
        assert config.get("state_topic", "simbank/gw1/modem/m1") == "simbank/gw1/modem/m1"


@pytest.mark.parametrize(
    ("key", "state_class", "unit", "device_class"),
    [
        ("calls_hour", "measurement", "calls", None),  # a rolling hour: it falls
        ("calls_day", "total_increasing", "calls", None),  # back to 0 at midnight
        ("call_seconds_day", "measurement", "s", "duration"),  # reservation, then real
        ("sms_day", "total_increasing", "SMS", None),
        ("calls_month", "total_increasing", "calls", None),
        ("call_seconds_month", "measurement", "s", "duration"),
        ("sms_month", "total_increasing", "SMS", None),
        ("sms_unread", "measurement", None, None),
    ],
)
def test_sim_usage_sensors(
    key: str, state_class: str, unit: str | None, device_class: str | None
) -> None:
    config = _all(month=True)[f"sim-{ICCID}-{key}"]
    assert config["state_topic"] == Topics("simbank", "gw1").sim(ICCID)
    assert config["state_class"] == state_class
    assert config.get("unit_of_measurement") == unit
    assert config.get("device_class") == device_class


def test_month_sensors_only_when_the_policy_counts_a_month() -> None:
    configs = _all(month=False)
    assert not any(k.startswith(f"sim-{ICCID}-") and "month" in k for k in configs)
    assert SimDevice.of(_sim()).month is False
    monthly = _sim(usage=Usage(calls_month=3, call_seconds_month=100, sms_month=0))
    assert SimDevice.of(monthly) == SimDevice(ICCID, month=True)


def test_availability_needs_the_daemon_and_a_readymodem_state() -> None:
    configs = _all()
    for key in ("registration", "operator", "signal", "iccid", "slot", "rotate"):
        config = configs[f"modem-m1-{key}"]
        assert config["availability_mode"] == "all"
        bridge, modem = config["availability"]
        assert bridge["topic"] == "simbank/gw1/bridge/state"
        assert bridge["value_template"] == BRIDGE_STATE
        assert modem["topic"] == "simbank/gw1/modem/m1"
        for entry in (bridge, modem):
            assert entry["payload_available"] == "online"
            assert entry["payload_not_available"] == "offline"
    # The reset button, the modem's state and every SIM sensor need the daemon only.
    for key in ("modem-m1-reset", "modem-m1-state", f"sim-{ICCID}-state", f"sim-{ICCID}-calls_day"):
        (only,) = configs[key]["availability"]
        assert only["topic"] == "simbank/gw1/bridge/state"


def _buttons() -> list[tuple[str, dict[str, Any]]]:
    return [(k, c) for k, c in _all().items() if c["_component"] == "button"]


@pytest.mark.parametrize(("key", "button"), _buttons(), ids=[k for k, _ in _buttons()])
def test_every_button_sends_a_request_the_daemon_accepts(key: str, button: dict[str, Any]) -> None:
    command = button["command_topic"].removeprefix("simbank/gw1/bridge/request/")
    request = COMMANDS[command].model_validate_json(button["payload_press"])
    assert request.transaction is None
    fields = request.model_dump(exclude={"transaction"})
    if key.startswith("modem-m1-"):
        assert fields == {"modem": "m1"}
    elif key.startswith(f"sim-{ICCID}-"):
        assert fields["iccid"] == ICCID


def test_custom_prefix_and_base() -> None:
    modem = ModemDevice("m1", "SIM7600", "SIMCOM")
    messages = discovery_messages("acme", "gw1", [modem], [SimDevice(ICCID)], prefix="ha_test")
    assert all(t.startswith("ha_test/") for t, _ in messages)
    configs = _configs(messages)
    assert configs["modem-m1-signal"]["state_topic"] == "acme/gw1/modem/m1"
    assert configs["modem-m1-signal"]["device"]["model"] == "SIM7600"
    assert configs["modem-m1-rotate"]["command_topic"] == "acme/gw1/bridge/request/sim/rotate"
    assert configs[f"sim-{ICCID}-state"]["state_topic"] == f"acme/gw1/sim/{ICCID}"


def test_unusable_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="modem"):
        discovery_messages("simbank", "gw1", [ModemDevice("m/1")])
    with pytest.raises(ValueError, match="gateway"):
        discovery_messages("simbank", "gw 1", [])
    with pytest.raises(ValueError, match="SIM"):
        discovery_messages("simbank", "gw1", [], [SimDevice("8999+")])


def test_identifiers_and_own_topics() -> None:
    assert modem_identifier("gw1", "m1") == "simbank:gw1:modem:m1"
    assert sim_identifier("gw1", ICCID) == f"simbank:gw1:sim:{ICCID}"
    subscription = own_configs("homeassistant", "gw1")
    for topic, _ in discovery_messages("simbank", "gw1", [M1], [SimDevice(ICCID)]):
        assert aiomqtt.Topic(topic).matches(subscription)
        assert is_own_config(topic, "homeassistant", "gw1")
        assert not is_own_config(topic, "homeassistant", "gw2")
        assert not is_own_config(topic, "ha", "gw1")
    # Another gateway whose id starts like ours is another node.
    assert not aiomqtt.Topic("homeassistant/sensor/simbank_gw10/x/config").matches(subscription)
    assert not is_own_config("homeassistant/sensor/simbank_gw1/x/y/config", "homeassistant", "gw1")
    assert not is_own_config("homeassistant/light/simbank_gw1/x/config", "homeassistant", "gw1")
    assert is_own_config("ha/x/sensor/simbank_gw1/modem-m1-state/config", "ha/x", "gw1")


def test_birth_message() -> None:
    assert BIRTH_TOPIC == "homeassistant/status"
    assert birth_topic("ha_x") == "ha_x/status"
    assert is_birth(Inbound(BIRTH_TOPIC, b"online"))
    assert is_birth(Inbound(BIRTH_TOPIC, b"online\n"))
    assert not is_birth(Inbound(BIRTH_TOPIC, b"offline"))
    assert not is_birth(Inbound("simbank/gw1/bridge/request/status", b"online"))
    assert is_birth(Inbound("ha_x/status", b"online"), prefix="ha_x")
    assert not is_birth(Inbound(BIRTH_TOPIC, b"online"), prefix="ha_x")
