"""An aiomqtt client that reports the broker's verdict on each QoS 1 publish.

aiomqtt's ``publish`` returns once the PUBACK arrives, whatever its reason code; with MQTT 5
mosquitto answers a publish its ACL denies with PUBACK 0x87 (Not authorized) and drops it,
and one that nobody subscribed to with 0x10 (No matching subscribers). The dashboard must
tell its user both, so this client hands back the reason code.

:class:`AckBook` pairs each PUBACK with the publish waiting for it by packet id (paho's
``mid``, which wraps at 65535). paho reads the socket only from the event loop, never inside
``publish()``, so the publish is always registered before its ack can arrive: an ack nobody
waits for is late (its publish gave up) or foreign, and is dropped rather than kept for the
next publish paho gives that id. A publish that gave up leaves its id in a bounded list, so
its late ack is dropped even when the id has been reused meanwhile.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
import structlog
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

NOT_AUTHORIZED = 0x87
NO_MATCHING_SUBSCRIBERS = 0x10
#: ids whose publish stopped waiting, remembered so their late acks are dropped
MAX_ABANDONED = 1024

log = structlog.get_logger("simbank.web")


class AckBook:
    """Which PUBACK belongs to which publish: pure bookkeeping by packet id."""

    def __init__(self, *, max_abandoned: int = MAX_ABANDONED) -> None:
        self._waiting: dict[int, asyncio.Future[int]] = {}
        self._abandoned: OrderedDict[int, None] = OrderedDict()
        self._max_abandoned = max_abandoned

    @property
    def sizes(self) -> tuple[int, int]:
        """``(waiting, abandoned)``: how many ids it holds."""
        return len(self._waiting), len(self._abandoned)

    def expect(self, mid: int) -> asyncio.Future[int]:
        """The future of the reason code for the publish just sent as ``mid``."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        previous = self._waiting.pop(mid, None)
        if previous is not None:  # the id wrapped while a publish still waited: it gives up
            if not previous.done():
                previous.set_exception(TimeoutError(f"packet id {mid} reused before its ack"))
            self._remember_abandoned(mid)
        self._waiting[mid] = future
        return future

    def acked(self, mid: int, code: int) -> None:
        """A PUBACK for ``mid`` with this reason code."""
        if mid in self._abandoned:
            del self._abandoned[mid]
            log.debug("web_late_ack_dropped", mid=mid, reason_code=code)
            return
        future = self._waiting.pop(mid, None)
        if future is None:
            log.debug("web_unexpected_ack_dropped", mid=mid, reason_code=code)
        elif not future.done():
            future.set_result(code)

    def abandon(self, mid: int, future: asyncio.Future[int]) -> None:
        """The publish sent as ``mid`` (waiting on ``future``) stopped waiting: timed out or
        cancelled. If its ack has not come, the one that comes later is dropped."""
        if self._waiting.get(mid) is not future:
            return  # answered (or already given up)
        del self._waiting[mid]
        future.cancel()
        self._remember_abandoned(mid)

    def _remember_abandoned(self, mid: int) -> None:
        self._abandoned[mid] = None
        self._abandoned.move_to_end(mid)
        while len(self._abandoned) > self._max_abandoned:
            self._abandoned.popitem(last=False)


class AckedClient(aiomqtt.Client):
    """``publish_acked`` publishes at QoS 1 and returns the PUBACK's reason code (``0`` from
    an MQTT 3.1.1 broker, which has none)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acks = AckBook()

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
        self.acks.acked(mid, value)

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
        future = self.acks.expect(info.mid)
        try:
            async with asyncio.timeout(ack_timeout):
                return await future
        finally:
            self.acks.abandon(info.mid, future)
