"""The one package that speaks aiomqtt: the daemon's bridge (``bridge``: the connection's
life, over ``connection``), what waits to be published (``outbox``, in the caller's ``lanes``),
what arrives (``inbox``), connection options (``options``) and the clients of a gateway
(``clients``). It carries payloads without reading them: callers name the lane."""

from simbank.mqtt.bridge import BrokerError, Inbound, InboundHandler, MqttBridge
from simbank.mqtt.clients import RequestClient, StateWatcher
from simbank.mqtt.lanes import (
    BUSY_QUEUE_MAX,
    EVENT_QUEUE_MAX,
    INBOUND_QUEUE_MAX,
    RESPONSE_QUEUE_MAX,
    RESULT_QUEUE_MAX,
    LaneName,
    Publisher,
)
from simbank.mqtt.options import client_options

__all__ = [
    "BUSY_QUEUE_MAX",
    "EVENT_QUEUE_MAX",
    "INBOUND_QUEUE_MAX",
    "RESPONSE_QUEUE_MAX",
    "RESULT_QUEUE_MAX",
    "BrokerError",
    "Inbound",
    "InboundHandler",
    "LaneName",
    "MqttBridge",
    "Publisher",
    "RequestClient",
    "StateWatcher",
    "client_options",
]
