"""Clients of a gateway (simbankctl, the demo, tests): follow its state, send it requests."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from simbank.config.models import MqttConfig
from simbank.contract import Topics
from simbank.mqtt.options import client_options

#: Events a :class:`StateWatcher` keeps: a gateway of 8 modems coming up (probes, two-slot
#: tours, registrations) says ~50 things before its first call; a view of the day needs more.
EVENTS_KEPT = 1000


class StateWatcher:
    """A read-only client (simbankctl, the demo): keeps the latest retained payload per topic.

    ``state`` maps topic → decoded JSON object for every gateway under ``base`` (or only
    ``gateway``); the latest :data:`EVENTS_KEPT` events are kept in ``events``.
    """

    def __init__(
        self, cfg: MqttConfig, base: str, client_id: str, gateway: str | None = None
    ) -> None:
        options = client_options(cfg, client_id, f"{base}/clients/{client_id}")
        options.pop("will")
        self._options = options
        self._filter = f"{base}/{gateway or '+'}/#"
        self.state: dict[str, dict[str, object]] = {}
        self.events: deque[dict[str, object]] = deque(maxlen=EVENTS_KEPT)
        self.changed = asyncio.Event()

    def gateways(self) -> list[str]:
        return sorted({t.split("/")[-3] for t in self.state if t.endswith("/bridge/state")})

    async def run(self, *, until_quiet_s: float | None = None) -> None:
        """Follow the state; with ``until_quiet_s``, return once no message came for that long."""
        async with aiomqtt.Client(**self._options) as client:  # type: ignore[arg-type]
            await client.subscribe(self._filter, qos=1)
            messages = client.messages.__aiter__()
            while True:
                try:
                    async with asyncio.timeout(until_quiet_s):
                        message = await anext(messages)
                except TimeoutError:
                    return
                self._take(str(message.topic), message.payload)

    def _take(self, topic: str, payload: object) -> None:
        if not isinstance(payload, bytes | bytearray):
            return
        if not payload:
            self.state.pop(topic, None)
            self.changed.set()
            return
        try:
            data = json.loads(payload)
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        if topic.endswith("/bridge/event"):
            self.events.append(data)
        elif "/bridge/request/" in topic or "/bridge/response/" in topic:
            return
        else:
            self.state[topic] = data
        self.changed.set()


class RequestClient:
    """Sends requests to a gateway and awaits their responses (simbankctl, tests).

    With MQTT 5 each request carries a private Response Topic and Correlation Data, so
    concurrent requests never mix up their answers; with 3.1.1 it listens on the public
    ``bridge/response/<command>`` topics and matches the ``transaction``.
    """

    def __init__(self, cfg: MqttConfig, topics: Topics, client_id: str) -> None:
        options = client_options(cfg, client_id, f"{topics.root}/clients/{client_id}/state")
        options.pop("will")
        self._options = options
        self._topics = topics
        self._v5 = cfg.protocol == "5"
        self._reply_topic = topics.reply(client_id)
        self._client: aiomqtt.Client | None = None
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._counter = 0

    async def __aenter__(self) -> RequestClient:
        self._client = aiomqtt.Client(**self._options)  # type: ignore[arg-type]
        await self._client.__aenter__()
        if self._v5:
            await self._client.subscribe(self._reply_topic, qos=1)
        else:
            await self._client.subscribe(f"{self._topics.response_prefix}#", qos=1)
        self._reader = asyncio.create_task(self._read(), name="request-client-reader")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._reader
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.__aexit__(None, None, None)

    async def _read(self) -> None:
        assert self._client is not None
        async for message in self._client.messages:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                continue
            try:
                data = json.loads(payload)
            except ValueError:
                continue
            if not isinstance(data, dict):
                continue
            key = None
            props = message.properties
            correlation = getattr(props, "CorrelationData", None) if props else None
            if correlation is not None:
                key = bytes(correlation).decode(errors="replace")
            elif isinstance(data.get("transaction"), str):
                key = data["transaction"]
            future = self._waiting.pop(key, None) if key else None
            if future is not None and not future.done():
                future.set_result(data)

    async def request(
        self,
        command: str,
        payload: dict[str, Any] | bytes | None = None,
        *,
        timeout: float = 30.0,  # noqa: ASYNC109 - a deadline per request is the API
        transaction: Any = None,
    ) -> dict[str, Any]:
        """Publish ``payload`` (a dict gets a ``transaction`` if it has none) and await the
        response. Raw ``bytes`` are sent as they are (for testing malformed requests)."""
        assert self._client is not None
        self._counter += 1
        key = f"{id(self):x}-{self._counter}"
        # With 3.1.1 answers are matched by transaction: wait under the one actually sent.
        if isinstance(transaction, str):
            key = transaction
        elif isinstance(payload, dict) and isinstance(payload.get("transaction"), str):
            key = payload["transaction"]
        if isinstance(payload, bytes):
            body = payload
        else:
            data = dict(payload or {})
            data.setdefault("transaction", transaction if transaction is not None else key)
            body = json.dumps(data).encode()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        properties = None
        if self._v5:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.ResponseTopic = self._reply_topic
            properties.CorrelationData = key.encode()
        try:
            await self._client.publish(
                self._topics.request(command), body, qos=1, properties=properties
            )
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self._waiting.pop(key, None)
