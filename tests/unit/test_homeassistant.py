"""Home Assistant discovery payloads: topics, keys, stable ids, availability, buttons."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from simbank.contract import COMMANDS, ModemState, Topics
from simbank.integrations.homeassistant import (
    BIRTH_TOPIC,
    birth_topic,
    discovery_messages,
    is_birth,
    modem_identifier,
)
from simbank.mqtt import Inbound

ICCID = "8986001234567890123"
TOPIC = re.compile(
    r"^(?P<prefix>[^/]+)/(?P<component>sensor|binary_sensor|button)/simbank_gw1/"
    r"(?P<object_id>[A-Za-z0-9_-]+)/config$"
)


def _modem(**changes: Any) -> ModemState:
    data: dict[str, Any] = {
        "id": "m1",
        "port": "/dev/ttyUSB2",
        "state": "ready",
        "model": "EC25",
        "manufacturer": "Quectel",
        "iccid": ICCID,
        "active_slot": 1,
    }
    data.update(changes)
    return ModemState.model_validate(data)


def _configs(messages: list[tuple[str, bytes]]) -> dict[str, dict[str, Any]]:
    """object_id → decoded config."""
    out: dict[str, dict[str, Any]] = {}
    for topic, payload in messages:
        match = TOPIC.match(topic)
        assert match, topic
        config = json.loads(payload)
        assert isinstance(config, dict)
        config["_component"] = match["component"]
        out[match["object_id"]] = config
    return out


def test_topics_and_required_keys() -> None:
    messages = discovery_messages("simbank", "gw1", [_modem(), ("m2", None, None)])
    configs = _configs(messages)
    assert len(configs) == len(messages)  # no topic twice
    assert {t.split("/")[0] for t, _ in messages} == {"homeassistant"}
    expected = {"state", "registration", "operator", "signal", "iccid", "calls_hour", "calls_day"}
    for modem in ("m1", "m2"):
        assert {f"{modem}_{k}" for k in expected} <= {
            k for k, c in configs.items() if c["_component"] == "sensor"
        }
        assert {f"{modem}_rotate", f"{modem}_reset"} <= {
            k for k, c in configs.items() if c["_component"] == "button"
        }
    for object_id, config in configs.items():
        assert config["unique_id"], object_id
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


def test_modem_device_and_gateway_device() -> None:
    configs = _configs(discovery_messages("simbank", "gw1", [_modem()]))
    device = configs["m1_signal"]["device"]
    assert device == {
        "identifiers": ["simbank_gw1_m1"],
        "name": "simbank gw1 m1",
        "manufacturer": "Quectel",
        "model": "EC25",
        "via_device": "simbank_gw1",
    }
    bridge = configs["bridge"]
    assert bridge["_component"] == "binary_sensor"
    assert bridge["device"]["identifiers"] == ["simbank_gw1"]  # what via_device points at
    assert bridge["state_topic"] == "simbank/gw1/bridge/state"
    assert (bridge["payload_on"], bridge["payload_off"]) == ("online", "offline")
    assert bridge["device_class"] == "connectivity"
    assert "availability" not in bridge


def test_unique_ids_are_stable_and_unique() -> None:
    first = discovery_messages("simbank", "gw1", [_modem(), ("m2", None, None)])
    ids = [json.loads(p)["unique_id"] for _, p in first]
    assert len(set(ids)) == len(ids)
    assert "simbank_gw1_m1_signal" in ids
    # Another state, signal, registration or timestamp: the same bytes (nothing re-published).
    moved = _modem(state="switching", signal={"rssi_dbm": -71, "quality": 60}, active_slot=2)
    again = discovery_messages("simbank", "gw1", [moved, ("m2", None, None)])
    assert again == first
    # Another gateway: other ids, nothing shared.
    other = discovery_messages("simbank", "gw2", [_modem()])
    assert not {json.loads(p)["unique_id"] for _, p in other} & set(ids)


def test_usage_sensors_follow_the_active_sim() -> None:
    configs = _configs(discovery_messages("simbank", "gw1", [_modem()]))
    for key in ("calls_hour", "calls_day"):
        config = configs[f"m1_{key}"]
        assert config["state_topic"] == Topics("simbank", "gw1").sim(ICCID)
        assert config["value_template"] == f"{{{{ value_json.usage.{key} }}}}"
        assert config["state_class"] == "measurement"
    rotated = _configs(discovery_messages("simbank", "gw1", [_modem(iccid="89860099999999999999")]))
    assert rotated["m1_calls_hour"]["state_topic"] == "simbank/gw1/sim/89860099999999999999"
    assert rotated["m1_signal"] == configs["m1_signal"]  # the rest stays as it was
    empty = _configs(discovery_messages("simbank", "gw1", [_modem(iccid=None)]))
    assert empty["m1_calls_day"]["state_topic"] == "simbank/gw1/modem/m1"
    assert empty["m1_calls_day"]["value_template"] == "{{ None }}"


def test_sensor_templates_read_the_retained_modem_payload() -> None:
    configs = _configs(discovery_messages("simbank", "gw1", [_modem()]))
    signal = configs["m1_signal"]
    assert signal["device_class"] == "signal_strength"
    assert signal["unit_of_measurement"] == "dBm"
    assert signal["value_template"] == "{{ value_json.signal.rssi_dbm }}"
    assert configs["m1_registration"]["value_template"] == "{{ value_json.registration.state }}"
    assert configs["m1_operator"]["value_template"] == "{{ value_json.registration.operator }}"
    assert configs["m1_iccid"]["value_template"] == "{{ value_json.iccid }}"
    state = configs["m1_state"]
    assert state["device_class"] == "enum"
    assert "ready" in state["options"]
    assert "unresponsive" in state["options"]
    # Every field a template names exists in the retained payload.
    payload = json.loads(_modem().to_json())
    assert payload["signal"].keys() >= {"rssi_dbm"}
    assert payload["registration"].keys() >= {"state", "operator"}
    assert "iccid" in payload


def test_availability_needs_the_daemon_and_a_ready_modem() -> None:
    configs = _configs(discovery_messages("simbank", "gw1", [_modem()]))
    for key in ("registration", "operator", "signal", "iccid", "calls_hour", "rotate"):
        config = configs[f"m1_{key}"]
        assert config["availability_mode"] == "all"
        bridge, modem = config["availability"]
        assert bridge["topic"] == "simbank/gw1/bridge/state"
        assert bridge["value_template"] == "{{ value_json.state }}"
        assert modem["topic"] == "simbank/gw1/modem/m1"
        assert "value_json.state == 'ready'" in modem["value_template"]
        for entry in (bridge, modem):
            assert entry["payload_available"] == "online"
            assert entry["payload_not_available"] == "offline"
    # The reset button and the modem state stay usable while the modem is not ready.
    for key in ("reset", "state"):
        (only,) = configs[f"m1_{key}"]["availability"]
        assert only["topic"] == "simbank/gw1/bridge/state"


@pytest.mark.parametrize(("key", "command"), [("rotate", "sim/rotate"), ("reset", "modem/reset")])
def test_buttons_send_requests_the_daemon_accepts(key: str, command: str) -> None:
    configs = _configs(discovery_messages("simbank", "gw1", [_modem(id="modem_2")]))
    button = configs[f"modem_2_{key}"]
    assert button["command_topic"] == f"simbank/gw1/bridge/request/{command}"
    assert json.loads(button["payload_press"]) == {"modem": "modem_2"}
    request = COMMANDS[command].model_validate_json(button["payload_press"])
    assert request.transaction is None
    assert getattr(request, "modem") == "modem_2"  # noqa: B009 - the base model has no modem


def test_custom_prefix_and_base() -> None:
    messages = discovery_messages("acme", "gw1", [("m1", "SIM7600", "SIMCOM")], prefix="ha_test")
    assert all(t.startswith("ha_test/") for t, _ in messages)
    configs = _configs(messages)
    assert configs["m1_signal"]["state_topic"] == "acme/gw1/modem/m1"
    assert configs["m1_signal"]["device"]["model"] == "SIM7600"
    assert configs["m1_rotate"]["command_topic"] == "acme/gw1/bridge/request/sim/rotate"


def test_unusable_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="modem"):
        discovery_messages("simbank", "gw1", [("m/1", None, None)])
    with pytest.raises(ValueError, match="gateway"):
        discovery_messages("simbank", "gw 1", [])


def test_identifiers() -> None:
    assert modem_identifier("gw1", "m1") == "simbank_gw1_m1"


def test_birth_message() -> None:
    assert BIRTH_TOPIC == "homeassistant/status"
    assert birth_topic("ha_x") == "ha_x/status"
    assert is_birth(Inbound(BIRTH_TOPIC, b"online"))
    assert is_birth(Inbound(BIRTH_TOPIC, b"online\n"))
    assert not is_birth(Inbound(BIRTH_TOPIC, b"offline"))
    assert not is_birth(Inbound("simbank/gw1/bridge/request/status", b"online"))
    assert is_birth(Inbound("ha_x/status", b"online"), prefix="ha_x")
    assert not is_birth(Inbound(BIRTH_TOPIC, b"online"), prefix="ha_x")
