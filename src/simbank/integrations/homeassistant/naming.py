"""Names in Home Assistant's MQTT discovery tree: topics, node ids, device identifiers.

Every config this gateway publishes is ``<prefix>/<component>/simbank_<gw>/<object_id>/config``
(Home Assistant's ``<discovery_prefix>/<component>/[<node_id>/]<object_id>/config``), so the
node id alone says whose a config is: the broker's ACL lets a gateway write only under its own
node id (``pattern readwrite homeassistant/+/simbank_%u/#``), and the daemon subscribes to its
own node's configs to clear the ones that are no longer current.
"""

from __future__ import annotations

import re
from typing import Final

from simbank.mqtt import Inbound

DEFAULT_PREFIX: Final = "homeassistant"
BIRTH_TOPIC: Final = f"{DEFAULT_PREFIX}/status"
"""Home Assistant publishes ``online`` here when it starts (its MQTT birth message)."""

COMPONENTS: Final = ("binary_sensor", "button", "sensor")
"""The entity platforms simbank publishes configs for."""

SIM_STEM: Final = "sim_"
"""What the object ids of a SIM's entities start with (``sim_<iccid>_<key>``)."""

_ID = re.compile(r"[a-zA-Z0-9_-]+")


def check_id(what: str, value: str) -> None:
    """Refuse an id that cannot be a topic level of a discovery topic."""
    if not _ID.fullmatch(value):
        raise ValueError(f"{what} id {value!r} is not usable in a discovery topic")


def birth_topic(prefix: str = DEFAULT_PREFIX) -> str:
    """The topic Home Assistant announces itself on, for a discovery ``prefix``."""
    return f"{prefix}/status"


def is_birth(message: Inbound, prefix: str = DEFAULT_PREFIX) -> bool:
    """Whether ``message`` is Home Assistant announcing it is online (re-send discovery)."""
    return message.topic == birth_topic(prefix) and message.payload.strip() == b"online"


def node_id(gateway: str) -> str:
    """The discovery node id of a gateway: the third level of all of its config topics."""
    return f"simbank_{gateway}"


def gateway_identifier(gateway: str) -> str:
    """The gateway's Home Assistant device identifier (what ``via_device`` names)."""
    return f"simbank_{gateway}"


def modem_identifier(gateway: str, modem_id: str) -> str:
    return f"simbank_{gateway}_{modem_id}"


def sim_identifier(gateway: str, iccid: str) -> str:
    return f"simbank_{gateway}_sim_{iccid}"


def config_topic(prefix: str, component: str, gateway: str, object_id: str) -> str:
    return f"{prefix}/{component}/{node_id(gateway)}/{object_id}/config"


def own_configs(prefix: str, gateway: str) -> str:
    """The subscription that sees every config of ``gateway``'s node and nobody else's."""
    return f"{prefix}/+/{node_id(gateway)}/+/config"


def is_own_config(topic: str, prefix: str, gateway: str) -> bool:
    """Whether ``topic`` is a config topic of ``gateway``'s node for a platform we publish."""
    if not topic.startswith(f"{prefix}/"):
        return False
    parts = topic.removeprefix(f"{prefix}/").split("/")
    if len(parts) != 4 or parts[3] != "config":
        return False
    return parts[0] in COMPONENTS and parts[1] == node_id(gateway) and bool(_ID.fullmatch(parts[2]))


def object_id(topic: str) -> str:
    """The object id of a config topic (``…/<object_id>/config``)."""
    return topic.rsplit("/", 2)[-2]
