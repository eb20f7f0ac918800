"""Every discovery config of one gateway, as ``(topic, payload)`` pairs to publish retained.

Devices: the gateway (``simbank:<gw>``); under it (``via_device``) one device per modem
(``simbank:<gw>:modem:<modem>``) and one per SIM (``simbank:<gw>:sim:<iccid>``). Unique ids
are the device's identifier, ``:`` and the entity's key; object ids are ``gateway-<key>``,
``modem-<modem>-<key>`` and ``sim-<iccid>-<key>`` (:mod:`.naming` says why neither can collide).

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
    Kind,
    check_id,
    config_topic,
    entity_object_id,
    unique_id,
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
    return _device(prefix, gateway, ("gateway", ""), gateway_device(gateway), entities)


def modem_messages(
    base: str, gateway: str, modem: ModemDevice, prefix: str
) -> list[tuple[str, bytes]]:
    """One modem device's configs."""
    check_id("gateway", gateway)
    check_id("modem", modem.id)
    device = modem_device(gateway, modem.id, modem.model, modem.manufacturer)
    entities = modem_entities(Topics(base, gateway), modem.id)
    return _device(prefix, gateway, ("modem", modem.id), device, entities)


def sim_messages(base: str, gateway: str, sim: SimDevice, prefix: str) -> list[tuple[str, bytes]]:
    """One SIM device's configs."""
    check_id("gateway", gateway)
    check_id("SIM", sim.iccid)
    entities = sim_entities(Topics(base, gateway), sim.iccid, month=sim.month)
    device = sim_device(gateway, sim.iccid)
    return _device(prefix, gateway, ("sim", sim.iccid), device, entities)


def _device(
    prefix: str,
    gateway: str,
    which: tuple[Kind, str],
    device: dict[str, Any],
    entities: list[Entity],
) -> list[tuple[str, bytes]]:
    """``(topic, payload)`` per entity of one device, ``which`` being its kind and id."""
    kind, ident = which
    messages = []
    for component, key, config in entities:
        uid = unique_id(gateway, kind, ident, key)
        payload = {"unique_id": uid, "device": device, "origin": ORIGIN, **config}
        topic = config_topic(prefix, component, gateway, entity_object_id(kind, ident, key))
        messages.append(
            (topic, json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        )
    return messages
