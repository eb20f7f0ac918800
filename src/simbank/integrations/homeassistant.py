"""Home Assistant MQTT discovery: one HA device per modem, under one device per gateway.

:func:`discovery_messages` returns ``(topic, payload)`` pairs to publish **retained** on
``<prefix>/<component>/simbank_<gw>/<object_id>/config``. The entities read the retained
``<base>/<gw>/modem/<id>`` and ``sim/<iccid>`` payloads (docs/mqtt-api.md) through
``value_template``s, and the buttons publish ordinary simbank requests. Nothing here does I/O.

The payloads depend only on a modem's id, model, manufacturer and active ICCID (the usage
sensors follow the active SIM's topic), so calling :func:`discovery_messages` on every modem
update and handing each pair to ``MqttBridge.set_retained`` publishes only what changed.

See https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery for the keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, get_args

from simbank import __version__
from simbank.contract import ModemState, ModemStateName, SimState, Topics
from simbank.mqtt import Inbound, Publisher

DEFAULT_PREFIX: Final = "homeassistant"
BIRTH_TOPIC: Final = f"{DEFAULT_PREFIX}/status"
"""Home Assistant publishes ``online`` here when it starts (its MQTT birth message)."""

ModemInfo = ModemState | tuple[str, str | None, str | None]
"""A modem's retained state, or ``(id, model, manufacturer)`` before one exists."""

_ID = re.compile(r"[a-zA-Z0-9_-]+")
_ORIGIN: Final = {"name": "simbank", "sw_version": __version__}
_BRIDGE_AVAILABLE: Final = "{{ value_json.state }}"
_MODEM_READY: Final = "{{ 'online' if value_json.state == 'ready' else 'offline' }}"


def birth_topic(prefix: str = DEFAULT_PREFIX) -> str:
    """The topic Home Assistant announces itself on, for a discovery ``prefix``."""
    return f"{prefix}/status"


def is_birth(message: Inbound, prefix: str = DEFAULT_PREFIX) -> bool:
    """Whether ``message`` is Home Assistant announcing it is online (re-send discovery)."""
    return message.topic == birth_topic(prefix) and message.payload.strip() == b"online"


def gateway_identifier(gateway: str) -> str:
    return f"simbank_{gateway}"


def modem_identifier(gateway: str, modem_id: str) -> str:
    return f"simbank_{gateway}_{modem_id}"


def discovery_messages(
    base: str,
    gateway: str,
    modems: Sequence[ModemInfo],
    prefix: str = DEFAULT_PREFIX,
) -> list[tuple[str, bytes]]:
    """Retained discovery configs: the gateway device (a connectivity sensor on
    ``bridge/state``) and, per modem, its sensors and its rotate / reset buttons."""
    _check_id("gateway", gateway)
    topics = Topics(base, gateway)
    node = gateway_identifier(gateway)
    messages = [_message(prefix, "binary_sensor", node, "bridge", _gateway_entity(topics, gateway))]
    for modem in modems:
        modem_id, model, manufacturer, iccid = _unpack(modem)
        _check_id("modem", modem_id)
        device = {
            "identifiers": [modem_identifier(gateway, modem_id)],
            "name": f"simbank {gateway} {modem_id}",
            "manufacturer": manufacturer or "unknown",
            "model": model or "AT modem",
            "via_device": node,
        }
        for component, key, config in _modem_entities(topics, modem_id, iccid):
            unique_id = f"{modem_identifier(gateway, modem_id)}_{key}"
            payload = {"unique_id": unique_id, "device": device, "origin": _ORIGIN, **config}
            messages.append(_message(prefix, component, node, f"{modem_id}_{key}", payload))
    return messages


def _check_id(what: str, value: str) -> None:
    if not _ID.fullmatch(value):
        raise ValueError(f"{what} id {value!r} is not usable in a discovery topic")


def _unpack(modem: ModemInfo) -> tuple[str, str | None, str | None, str | None]:
    if isinstance(modem, ModemState):
        return modem.id, modem.model, modem.manufacturer, modem.iccid
    modem_id, model, manufacturer = modem
    return modem_id, model, manufacturer, None


def _message(
    prefix: str, component: str, node: str, object_id: str, payload: dict[str, Any]
) -> tuple[str, bytes]:
    topic = f"{prefix}/{component}/{node}/{object_id}/config"
    return topic, json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def _gateway_entity(topics: Topics, gateway: str) -> dict[str, Any]:
    return {
        "unique_id": f"{gateway_identifier(gateway)}_bridge",
        "name": "Bridge",
        "has_entity_name": True,
        "device_class": "connectivity",
        "entity_category": "diagnostic",
        "state_topic": topics.bridge_state,
        "value_template": _BRIDGE_AVAILABLE,
        "payload_on": "online",
        "payload_off": "offline",
        "qos": 1,
        "device": {
            "identifiers": [gateway_identifier(gateway)],
            "name": f"simbank {gateway}",
            "manufacturer": "simbank",
            "model": "SIM bank gateway",
            "sw_version": __version__,
        },
        "origin": _ORIGIN,
    }


def _availability(topics: Topics, modem_id: str | None) -> dict[str, Any]:
    """Available while the daemon is online and (with ``modem_id``) the modem is ready."""
    entries = [
        {
            "topic": topics.bridge_state,
            "value_template": _BRIDGE_AVAILABLE,
            "payload_available": "online",
            "payload_not_available": "offline",
        }
    ]
    if modem_id is not None:
        entries.append(
            {
                "topic": topics.modem(modem_id),
                "value_template": _MODEM_READY,
                "payload_available": "online",
                "payload_not_available": "offline",
            }
        )
    return {"availability": entries, "availability_mode": "all"}


def _modem_entities(
    topics: Topics, modem_id: str, iccid: str | None
) -> list[tuple[str, str, dict[str, Any]]]:
    """``(component, key, config)`` per entity of one modem."""
    state_topic = topics.modem(modem_id)
    ready = _availability(topics, modem_id)
    daemon_only = _availability(topics, None)

    def sensor(name: str, template: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "has_entity_name": True,
            "state_topic": state_topic,
            "value_template": template,
            "qos": 1,
            **ready,
            **extra,
        }

    def button(name: str, command: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "has_entity_name": True,
            "command_topic": topics.request(command),
            "payload_press": json.dumps({"modem": modem_id}),
            "qos": 1,
            "retain": False,
            **extra,
        }

    entities: list[tuple[str, str, dict[str, Any]]] = [
        (
            "sensor",
            "state",
            # The modem's own state shows why the others are unavailable: daemon-only.
            sensor(
                "State",
                "{{ value_json.state }}",
                device_class="enum",
                options=list(get_args(ModemStateName)),
                entity_category="diagnostic",
                **daemon_only,
            ),
        ),
        ("sensor", "registration", sensor("Registration", "{{ value_json.registration.state }}")),
        ("sensor", "operator", sensor("Operator", "{{ value_json.registration.operator }}")),
        (
            "sensor",
            "signal",
            sensor(
                "Signal",
                "{{ value_json.signal.rssi_dbm }}",
                device_class="signal_strength",
                unit_of_measurement="dBm",
                state_class="measurement",
            ),
        ),
        ("sensor", "iccid", sensor("Active SIM", "{{ value_json.iccid }}", icon="mdi:sim")),
    ]
    for key, name in (("calls_hour", "Calls this hour"), ("calls_day", "Calls today")):
        if iccid is None:
            # No SIM: read the modem topic and render None (HA shows "unknown").
            usage = sensor(name, "{{ None }}")
        else:
            usage = sensor(name, f"{{{{ value_json.usage.{key} }}}}")
            usage["state_topic"] = topics.sim(iccid)
        usage.update(state_class="measurement", icon="mdi:phone-outgoing")
        entities.append(("sensor", key, usage))
    entities += [
        ("button", "rotate", button("Rotate SIM", "sim/rotate", icon="mdi:sim-alert", **ready)),
        # Reset is what an unresponsive modem needs: available whenever the daemon is.
        ("button", "reset", button("Reset", "modem/reset", device_class="restart", **daemon_only)),
    ]
    return entities


class DiscoveryPublisher:
    """Keeps Home Assistant's discovery configs in step with the modems (a StatusBoard
    watcher) and sends them all again when Home Assistant announces itself online."""

    def __init__(self, out: Publisher, base: str, gateway: str, prefix: str) -> None:
        self._out = out
        self._base = base
        self._gateway = gateway
        self.prefix = prefix
        self._modems: dict[str, tuple[str, str | None, str | None, str | None]] = {}

    def _messages(self) -> list[tuple[str, bytes]]:
        return discovery_messages(
            self._base,
            self._gateway,
            [
                ModemState(id=m, port="", state="ready", model=mo, manufacturer=ma, iccid=ic)
                for m, (_, mo, ma, ic) in sorted(self._modems.items())
            ],
            prefix=self.prefix,
        )

    def observe_modem(self, state: ModemState) -> None:
        old = self._modems.get(state.id)
        # Keep the last known model and maker while a modem is offline: no flip-flopping.
        model = state.model or (old[1] if old else None)
        maker = state.manufacturer or (old[2] if old else None)
        new = (state.id, model, maker, state.iccid)
        if new == old:
            return
        self._modems[state.id] = new
        for topic, payload in self._messages():
            self._out.set_retained(topic, payload)

    def observe_sim(self, state: SimState) -> None:
        del state

    def observe_event(self, event_type: str, fields: Mapping[str, object]) -> None:
        del event_type, fields

    def resend(self) -> None:
        """Home Assistant restarted: publish every config again (retained ones are deduped),
        in the events lane: configs are not answers, and are kept like events."""
        for topic, payload in self._messages():
            self._out.publish(topic, payload, lane="events")
