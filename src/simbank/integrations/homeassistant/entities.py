"""The gateway's and the modems' entities, and the pieces every entity is built from.

An entity is ``(component, key, config)``: ``key`` becomes the end of its object id and its
unique id. Sensors read the retained simbank topics (docs/mqtt-api.md) through
``value_template``s; buttons publish ordinary simbank requests (``bridge/request/<command>``),
which the broker lets the Home Assistant user send. Nothing here does I/O.

Modem entities show only what belongs to the modem (state, registration, operator, signal,
the active SIM and slot): a SIM's usage is on the SIM's own device (:mod:`.sims`), so it does
not jump from one card's counts to another's when the modem switches SIMs.
"""

from __future__ import annotations

import json
from typing import Any, Final, get_args

from simbank import __version__
from simbank.contract import ModemStateName, Topics
from simbank.integrations.homeassistant.naming import gateway_identifier, modem_identifier

Entity = tuple[str, str, dict[str, Any]]
"""``(component, key, config)`` of one entity, before the device and the ids are added."""

ORIGIN: Final = {"name": "simbank", "sw_version": __version__}
#: A ``degraded`` gateway (its ledger cannot book) is still up: its entities stay available.
BRIDGE_STATE: Final = "{{ 'online' if value_json.state in ['online', 'degraded'] else 'offline' }}"
ONLINE: Final = "online"
OFFLINE: Final = "offline"


def available_when(topic: str, condition: str) -> dict[str, str]:
    """An availability entry: ``online`` while the JSON on ``topic`` meets ``condition``."""
    return {
        "topic": topic,
        "value_template": f"{{{{ '{ONLINE}' if {condition} else '{OFFLINE}' }}}}",
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
    }


def availability(topics: Topics, *more: dict[str, str]) -> dict[str, Any]:
    """Available while the daemon is online and every entry of ``more`` says so."""
    daemon = {
        "topic": topics.bridge_state,
        "value_template": BRIDGE_STATE,
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
    }
    return {"availability": [daemon, *more], "availability_mode": "all"}


def sensor(name: str, state_topic: str, template: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "has_entity_name": True,
        "state_topic": state_topic,
        "value_template": template,
        "qos": 1,
        **extra,
    }


def button(
    name: str, topics: Topics, command: str, payload: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """A button that publishes the request ``command`` with ``payload`` (never retained)."""
    return {
        "name": name,
        "has_entity_name": True,
        "command_topic": topics.request(command),
        "payload_press": json.dumps(payload, separators=(",", ":")),
        "qos": 1,
        "retain": False,
        **extra,
    }


def gateway_device(gateway: str) -> dict[str, Any]:
    return {
        "identifiers": [gateway_identifier(gateway)],
        "name": f"simbank {gateway}",
        "manufacturer": "simbank",
        "model": "SIM bank gateway",
        "sw_version": __version__,
    }


def modem_device(
    gateway: str, modem_id: str, model: str | None, manufacturer: str | None
) -> dict[str, Any]:
    return {
        "identifiers": [modem_identifier(gateway, modem_id)],
        "name": f"simbank {gateway} {modem_id}",
        "manufacturer": manufacturer or "unknown",
        "model": model or "AT modem",
        "via_device": gateway_identifier(gateway),
    }


def gateway_entities(topics: Topics) -> list[Entity]:
    """The daemon's connectivity, and the buttons that pause and resume outbound traffic."""
    daemon = availability(topics)
    bridge = sensor(
        "Bridge",
        topics.bridge_state,
        BRIDGE_STATE,
        device_class="connectivity",
        entity_category="diagnostic",
        payload_on=ONLINE,
        payload_off=OFFLINE,
    )
    pause = button(
        "Pause traffic",
        topics,
        "traffic/pause",
        {"reason": "Home Assistant"},
        icon="mdi:pause-octagon",
        **daemon,
    )
    resume = button("Resume traffic", topics, "traffic/resume", {}, icon="mdi:play", **daemon)
    return [
        ("binary_sensor", "bridge", bridge),
        ("button", "traffic_pause", pause),
        ("button", "traffic_resume", resume),
    ]


def modem_entities(topics: Topics, modem_id: str) -> list[Entity]:
    """State, registration, operator, signal, active SIM and slot; rotate and reset."""
    state_topic = topics.modem(modem_id)
    daemon = availability(topics)
    ready = availability(topics, available_when(state_topic, "value_json.state == 'ready'"))

    def reading(name: str, template: str, **extra: Any) -> dict[str, Any]:
        return sensor(name, state_topic, template, **ready, **extra)

    return [
        # The modem's own state says why the others are unavailable: it needs the daemon only.
        (
            "sensor",
            "state",
            sensor(
                "State",
                state_topic,
                "{{ value_json.state }}",
                device_class="enum",
                options=list(get_args(ModemStateName)),
                entity_category="diagnostic",
                **daemon,
            ),
        ),
        ("sensor", "registration", reading("Registration", "{{ value_json.registration.state }}")),
        ("sensor", "operator", reading("Operator", "{{ value_json.registration.operator }}")),
        (
            "sensor",
            "signal",
            reading(
                "Signal",
                "{{ value_json.signal.rssi_dbm }}",
                device_class="signal_strength",
                unit_of_measurement="dBm",
                state_class="measurement",
            ),
        ),
        ("sensor", "iccid", reading("Active SIM", "{{ value_json.iccid }}", icon="mdi:sim")),
        ("sensor", "slot", reading("Active slot", "{{ value_json.active_slot }}", icon="mdi:tray")),
        (
            "button",
            "rotate",
            button("Rotate SIM", topics, "sim/rotate", {"modem": modem_id}, icon="mdi:sim-alert")
            | ready,
        ),
        # Reset is what an unresponsive modem needs: available whenever the daemon is.
        (
            "button",
            "reset",
            button("Reset", topics, "modem/reset", {"modem": modem_id}, device_class="restart")
            | daemon,
        ),
    ]
