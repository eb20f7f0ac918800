"""Every discovery config of one gateway, as ``(topic, payload)`` pairs to publish retained.

Devices: the gateway (``simbank_<gw>``); under it (``via_device``) one device per modem
(``simbank_<gw>_<modem>``) and one per SIM (``simbank_<gw>_sim_<iccid>``). Object ids:
``bridge`` and ``traffic_*`` for the gateway, ``<modem>_<key>`` for a modem,
``sim_<iccid>_<key>`` for a SIM; unique ids are ``simbank_<gw>_`` + the object id.

The payloads depend only on what names a device (a modem's id, model and manufacturer; a SIM's
ICCID and whether its policy counts a month), never on readings, so the same gateway gives
the same bytes until a device comes or goes: handing each pair to ``set_retained`` publishes
only what changed. Nothing here does I/O.

See https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery for the keys.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from simbank.contract import ModemState, SimState, Topics
from simbank.integrations.homeassistant.entities import (
    ORIGIN,
    Entity,
    gateway_device,
    gateway_entities,
    modem_device,
    modem_entities,
)
from simbank.integrations.homeassistant.naming import (
    DEFAULT_PREFIX,
    SIM_STEM,
    check_id,
    config_topic,
    gateway_identifier,
)
from simbank.integrations.homeassistant.sims import sim_device, sim_entities


@dataclass(frozen=True, slots=True)
class ModemDevice:
    """What a modem's configs depend on (model and maker are None until it is probed)."""

    id: str
    model: str | None = None
    manufacturer: str | None = None

    @classmethod
    def of(cls, state: ModemState) -> ModemDevice:
        return cls(state.id, state.model, state.manufacturer)


@dataclass(frozen=True, slots=True)
class SimDevice:
    """What a SIM's configs depend on: its ICCID, and whether its policy counts a month."""

    iccid: str
    month: bool = False

    @classmethod
    def of(cls, state: SimState) -> SimDevice:
        return cls(state.iccid, month=state.usage.calls_month is not None)


def discovery_messages(
    base: str,
    gateway: str,
    modems: Sequence[ModemDevice],
    sims: Sequence[SimDevice] = (),
    prefix: str = DEFAULT_PREFIX,
) -> list[tuple[str, bytes]]:
    """The retained configs of the gateway device, each modem's and each SIM's; raises
    ``ValueError`` for an id that cannot be a topic level."""
    messages = gateway_messages(base, gateway, prefix)
    for modem in modems:
        messages += modem_messages(base, gateway, modem, prefix)
    for sim in sims:
        messages += sim_messages(base, gateway, sim, prefix)
    return messages


def gateway_messages(base: str, gateway: str, prefix: str) -> list[tuple[str, bytes]]:
    """The gateway device's configs."""
    check_id("gateway", gateway)
    entities = gateway_entities(Topics(base, gateway))
    return _device(prefix, gateway, "", gateway_device(gateway), entities)


def modem_messages(
    base: str, gateway: str, modem: ModemDevice, prefix: str
) -> list[tuple[str, bytes]]:
    """One modem device's configs."""
    check_id("gateway", gateway)
    check_id("modem", modem.id)
    device = modem_device(gateway, modem.id, modem.model, modem.manufacturer)
    entities = modem_entities(Topics(base, gateway), modem.id)
    return _device(prefix, gateway, f"{modem.id}_", device, entities)


def sim_messages(base: str, gateway: str, sim: SimDevice, prefix: str) -> list[tuple[str, bytes]]:
    """One SIM device's configs."""
    check_id("gateway", gateway)
    check_id("SIM", sim.iccid)
    entities = sim_entities(Topics(base, gateway), sim.iccid, month=sim.month)
    stem = f"{SIM_STEM}{sim.iccid}_"
    return _device(prefix, gateway, stem, sim_device(gateway, sim.iccid), entities)


def _device(
    prefix: str, gateway: str, stem: str, device: dict[str, Any], entities: list[Entity]
) -> list[tuple[str, bytes]]:
    """``(topic, payload)`` per entity of one device; ``stem`` starts its object ids."""
    uid = f"{gateway_identifier(gateway)}_{stem}"
    messages = []
    for component, key, config in entities:
        payload = {"unique_id": f"{uid}{key}", "device": device, "origin": ORIGIN, **config}
        topic = config_topic(prefix, component, gateway, f"{stem}{key}")
        messages.append(
            (topic, json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        )
    return messages
