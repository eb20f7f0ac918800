"""Names in Home Assistant's MQTT discovery tree: topics, node ids, device identifiers.

Every config this gateway publishes is ``<prefix>/<component>/simbank_<gw>/<object_id>/config``
(Home Assistant's ``<discovery_prefix>/<component>/[<node_id>/]<object_id>/config``), so the
node id alone says whose a config is: the broker's ACL lets a gateway write only under its own
node id (``pattern readwrite homeassistant/+/simbank_%u/#``), and the daemon subscribes to its
own node's configs to clear the ones that are no longer current.

Gateway and modem ids may hold ``_`` and ``-``, so nothing is joined with either where a
split point could move: gateway ``site`` with modem ``a_m1`` and gateway ``site_a`` with modem
``m1`` must stay apart.

* Device identifiers and unique ids are joined with ``:``, which no id may hold
  (:func:`check_id`): ``simbank:<gw>`` (the gateway), ``simbank:<gw>:modem:<modem>``,
  ``simbank:<gw>:sim:<iccid>``; an entity's unique id is its device's identifier,
  ``:`` and its key. The number of parts says the kind, and no part can hold another.
* Object ids must fit a topic level (``[a-zA-Z0-9_-]``) and be unique within the node:
  ``gateway-<key>``, ``modem-<modem>-<key>``, ``sim-<iccid>-<key>``. Keys are ours and never
  hold ``-``, so the kind ends at the first ``-`` and the key starts after the last one.
"""

from __future__ import annotations

import re
from typing import Final, Literal

from simbank.mqtt import Inbound

DEFAULT_PREFIX: Final = "homeassistant"
BIRTH_TOPIC: Final = f"{DEFAULT_PREFIX}/status"
"""Home Assistant publishes ``online`` here when it starts (its MQTT birth message)."""

COMPONENTS: Final = ("binary_sensor", "button", "sensor")
"""The entity platforms simbank publishes configs for."""

Kind = Literal["gateway", "modem", "sim"]
"""What a device is: the gateway, one of its modems or one of its SIMs."""

SIM_STEM: Final = "sim-"
"""What the object ids of a SIM's entities start with (``sim-<iccid>-<key>``)."""

_ID = re.compile(r"[a-zA-Z0-9_-]+")
_KEY = re.compile(r"[a-z0-9_]+")


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
    return f"simbank:{gateway}"


def modem_identifier(gateway: str, modem_id: str) -> str:
    return f"simbank:{gateway}:modem:{modem_id}"


def sim_identifier(gateway: str, iccid: str) -> str:
    return f"simbank:{gateway}:sim:{iccid}"


def device_identifier(gateway: str, kind: Kind, ident: str) -> str:
    """The identifier of the device ``ident`` of ``kind`` (``ident`` is ignored for the
    gateway)."""
    if kind == "gateway":
        return gateway_identifier(gateway)
    if kind == "modem":
        return modem_identifier(gateway, ident)
    return sim_identifier(gateway, iccid=ident)


def unique_id(gateway: str, kind: Kind, ident: str, key: str) -> str:
    """The unique id of the entity ``key`` of a device: ``<device identifier>:<key>``."""
    _check_key(key)
    return f"{device_identifier(gateway, kind, ident)}:{key}"


def entity_object_id(kind: Kind, ident: str, key: str) -> str:
    """The object id (topic level) of the entity ``key`` of a device, unique in the node."""
    _check_key(key)
    return f"gateway-{key}" if kind == "gateway" else f"{kind}-{ident}-{key}"


def _check_key(key: str) -> None:
    if not _KEY.fullmatch(key):
        raise ValueError(f"entity key {key!r} must be snake_case (no '-')")


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
