"""One Home Assistant device per SIM: its state, quarantine, usage and the buttons that act on it.

Every entity reads the SIM's retained ``sim/<iccid>`` topic, so a blocked SIM shows as blocked
whichever modem (if any) holds it, and its counts are its own. The device hangs off the
gateway (``via_device``), not off a modem: a SIM's modem changes when cards are moved, its
gateway does not, so the device layout stays put.

State classes follow what the numbers do (Home Assistant's long-term statistics depend on it):

* ``calls_day``, ``sms_day`` and the month's counts only grow until the day (the billing
  cycle) starts again at 0: ``total_increasing``, which reads a drop as a new cycle.
* ``calls_hour`` counts a rolling hour, and falls as calls age out of it; call seconds count
  a call in progress at its whole reservation and drop to its real duration when it ends:
  both are ``measurement``s, since a ``total_increasing`` would read each fall as a reset
  and count everything after it twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, get_args

from simbank.bank.sim_state import QUARANTINE_STATES
from simbank.contract import SimStateName, Topics
from simbank.integrations.homeassistant.entities import (
    Entity,
    availability,
    available_when,
    button,
    sensor,
)
from simbank.integrations.homeassistant.naming import gateway_identifier, sim_identifier

RELEASE_NOTE: Final = "released from Home Assistant"
"""The ``note`` a release from the button carries (the ledger's audit keeps it)."""

_QUARANTINED: Final = QUARANTINE_STATES
_NOT_DISABLEABLE: Final = ("blocked", "disabled")

#: field of ``usage`` (the key), name, unit, state class, device class, icon, month only
_USAGE: Final = (
    ("calls_hour", "Calls this hour", "calls", "measurement", None, "mdi:phone-outgoing", False),
    ("calls_day", "Calls today", "calls", "total_increasing", None, "mdi:phone-outgoing", False),
    ("call_seconds_day", "Call time today", "s", "measurement", "duration", None, False),
    ("sms_day", "SMS today", "SMS", "total_increasing", None, "mdi:message-arrow-right", False),
    ("calls_month", "Calls this month", "calls", "total_increasing", None, "mdi:phone", True),
    ("call_seconds_month", "Call time this month", "s", "measurement", "duration", None, True),
    ("sms_month", "SMS this month", "SMS", "total_increasing", None, "mdi:message", True),
)

_ATTRIBUTES: Final = (
    "{{ {'reason': value_json.reason, 'modem': value_json.modem, 'slot': value_json.slot,"
    " 'policy': value_json.policy} | tojson }}"
)
_BLOCK_ATTRIBUTES: Final = (
    "{{ {'since': value_json.block.since, 'evidence': value_json.block.evidence | length}"
    " | tojson if value_json.block else '{}' }}"
)


def sim_device(gateway: str, iccid: str) -> dict[str, Any]:
    return {
        "identifiers": [sim_identifier(gateway, iccid)],
        "name": f"SIM {iccid}",
        "manufacturer": "simbank",
        "model": "SIM card",
        "via_device": gateway_identifier(gateway),
    }


def _in(states: Iterable[str]) -> str:
    """A template condition: the SIM's state is one of ``states``."""
    return f"value_json.state in {sorted(states)!r}"


def sim_entities(topics: Topics, iccid: str, *, month: bool) -> list[Entity]:
    """The SIM's entities; the month's usage only when its policy counts a billing month."""
    topic = topics.sim(iccid)
    daemon = availability(topics)
    entities: list[Entity] = [
        (
            "sensor",
            "state",
            sensor(
                "State",
                topic,
                "{{ value_json.state }}",
                device_class="enum",
                options=list(get_args(SimStateName)),
                icon="mdi:sim",
                json_attributes_topic=topic,
                json_attributes_template=_ATTRIBUTES,
                **daemon,
            ),
        ),
        (
            "binary_sensor",
            "quarantined",
            sensor(
                "Quarantined",
                topic,
                f"{{{{ 'ON' if {_in(_QUARANTINED)} else 'OFF' }}}}",
                device_class="problem",
                **daemon,
            ),
        ),
        (
            "sensor",
            "block_reason",
            sensor(
                "Block reason",
                topic,
                "{{ value_json.block.reason if value_json.block else 'none' }}",
                icon="mdi:sim-off",
                json_attributes_topic=topic,
                json_attributes_template=_BLOCK_ATTRIBUTES,
                **daemon,
            ),
        ),
        (
            "sensor",
            "sms_unread",
            sensor(
                "Unread SMS",
                topic,
                "{{ value_json.sms_unread }}",
                state_class="measurement",
                icon="mdi:message-badge",
                **daemon,
            ),
        ),
    ]
    for key, name, unit, state_class, device_class, icon, monthly in _USAGE:
        if monthly and not month:
            continue
        extra: dict[str, Any] = {"unit_of_measurement": unit, "state_class": state_class}
        if device_class is not None:
            extra["device_class"] = device_class
        if icon is not None:
            extra["icon"] = icon
        usage = sensor(name, topic, f"{{{{ value_json.usage.{key} }}}}", **extra, **daemon)
        entities.append(("sensor", key, usage))
    entities += [
        (
            "button",
            "release",
            button(
                "Release",
                topics,
                "sim/release",
                {"iccid": iccid, "note": RELEASE_NOTE},
                icon="mdi:lock-open-variant",
            )
            | availability(topics, available_when(topic, _in(_QUARANTINED))),
        ),
        (
            "button",
            "disable",
            button("Disable", topics, "sim/disable", {"iccid": iccid}, icon="mdi:sim-off")
            | availability(topics, available_when(topic, f"not {_in(_NOT_DISABLEABLE)}")),
        ),
        (
            "button",
            "enable",
            button("Enable", topics, "sim/enable", {"iccid": iccid}, icon="mdi:sim")
            | availability(topics, available_when(topic, "value_json.state == 'disabled'")),
        ),
    ]
    return entities
