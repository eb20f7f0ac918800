"""Home Assistant MQTT discovery: a device for the gateway and, under it, one per modem and
one per SIM, with sensors that read the retained simbank topics and buttons that send
ordinary simbank requests (docs/homeassistant.md).

:mod:`.naming` holds the topics and ids, :mod:`.entities` and :mod:`.sims` the pure entity
configs, :mod:`.discovery` assembles them per gateway, and :mod:`.publisher` keeps them in
step with the daemon and clears the stale ones.
"""

from simbank.integrations.homeassistant.discovery import (
    ModemDevice,
    SimDevice,
    discovery_messages,
)
from simbank.integrations.homeassistant.naming import (
    BIRTH_TOPIC,
    DEFAULT_PREFIX,
    birth_topic,
    gateway_identifier,
    is_birth,
    is_own_config,
    modem_identifier,
    node_id,
    own_configs,
    sim_identifier,
)
from simbank.integrations.homeassistant.publisher import DiscoveryPublisher

__all__ = [
    "BIRTH_TOPIC",
    "DEFAULT_PREFIX",
    "DiscoveryPublisher",
    "ModemDevice",
    "SimDevice",
    "birth_topic",
    "discovery_messages",
    "gateway_identifier",
    "is_birth",
    "is_own_config",
    "modem_identifier",
    "node_id",
    "own_configs",
    "sim_identifier",
]
