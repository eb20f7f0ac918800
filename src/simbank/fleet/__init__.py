"""A fleet of gateways as one: pick the gateway whose retained ``capacity`` shows room and
send it the request (``choice``: pure; ``client``: the MQTT side). The broker is the only
shared part; nothing of ours coordinates the gateways."""

from simbank.fleet.choice import NO_ROOM_CODES, STALE_AFTER_S, Attempt, GatewaySeen
from simbank.fleet.client import FleetAnswer, FleetClient

__all__ = [
    "NO_ROOM_CODES",
    "STALE_AFTER_S",
    "Attempt",
    "FleetAnswer",
    "FleetClient",
    "GatewaySeen",
]
