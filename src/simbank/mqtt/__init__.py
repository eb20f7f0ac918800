"""The one package that speaks aiomqtt: the daemon's bridge (``bridge``), its bounded queues
(``lanes``), connection options (``options``) and the clients of a gateway (``clients``)."""

from simbank.mqtt.bridge import BrokerError, Inbound, InboundHandler, MqttBridge
from simbank.mqtt.clients import RequestClient, StateWatcher
from simbank.mqtt.lanes import (
    BUSY_QUEUE_MAX,
    EVENT_QUEUE_MAX,
    INBOUND_QUEUE_MAX,
    RESPONSE_QUEUE_MAX,
    RESULT_QUEUE_MAX,
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
    "MqttBridge",
    "RequestClient",
    "StateWatcher",
    "client_options",
]
