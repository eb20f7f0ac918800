"""An aiomqtt client that reports the broker's verdict on each QoS 1 publish.

aiomqtt's ``publish`` returns once the PUBACK arrives, whatever its reason code; with MQTT 5
mosquitto answers a publish its ACL denies with PUBACK 0x87 (Not authorized) and drops it,
and one that nobody subscribed to with 0x10 (No matching subscribers). The dashboard must
tell its user both, so this client hands back the reason code.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

NOT_AUTHORIZED = 0x87
NO_MATCHING_SUBSCRIBERS = 0x10


class AckedClient(aiomqtt.Client):
    """``publish_acked`` publishes at QoS 1 and returns the PUBACK's reason code (``0`` from
    an MQTT 3.1.1 broker, which has none)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._acks: dict[int, asyncio.Future[int]] = {}
        self._early: dict[int, int] = {}

    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        super()._on_publish(client, userdata, mid, reason_code, properties)
        value = int(reason_code.value) if isinstance(reason_code, ReasonCode) else 0
        future = self._acks.pop(mid, None)
        if future is None:
            self._early[mid] = value
        elif not future.done():
            future.set_result(value)

    async def publish_acked(
        self,
        topic: str,
        payload: bytes,
        properties: Properties | None,
        *,
        ack_timeout: float,
    ) -> int:
        """Publish at QoS 1 and await the PUBACK's reason code; raises TimeoutError when none
        comes in ``ack_timeout`` seconds, :class:`aiomqtt.MqttCodeError` when the message
        cannot be sent (disconnected)."""
        info = self._client.publish(topic, payload, 1, False, properties)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise aiomqtt.MqttCodeError(info.rc, "could not publish")
        if info.mid in self._early:
            return self._early.pop(info.mid)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._acks[info.mid] = future
        try:
            async with asyncio.timeout(ack_timeout):
                return await future
        finally:
            self._acks.pop(info.mid, None)
