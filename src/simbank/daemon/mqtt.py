"""The one module that speaks aiomqtt: a bridge that survives the broker going away.

Retained state is kept as "latest payload per topic"; after every (re)connect the bridge
publishes ``online``, ``bridge/info`` and every retained topic again, then whatever changed.
Events wait in a bounded queue while the broker is down (oldest dropped first, counted).
Modems never wait for MQTT: publishing is a synchronous hand-over.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from simbank.config.models import MqttConfig
from simbank.daemon.backoff import Backoff
from simbank.daemon.contract import BridgeState, Topics
from simbank.errors import ConfigError

log = structlog.get_logger(__name__)

#: What callers outside this module catch when the broker cannot be reached.
BrokerError = aiomqtt.MqttError

EVENT_QUEUE_MAX = 10_000
#: QoS 1 messages in flight at once (paho's default window is 20).
PUBLISH_WINDOW = 16
PUBLISH_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message on a subscribed topic, with its MQTT 5 response properties if any."""

    topic: str
    payload: bytes
    response_topic: str | None = None
    correlation_data: bytes | None = None


InboundHandler = Callable[[Inbound], Awaitable[None]]


def _correlation_properties(correlation: bytes | None) -> Properties | None:
    if correlation is None:
        return None
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.CorrelationData = correlation
    return props


def _read_password(path: Path) -> str:
    """The first line of ``path``, stripped; errors name the file, never what is in it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"mqtt.password_file: cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ConfigError(f"mqtt.password_file: {path} is not UTF-8 text") from None
    lines = text.splitlines()
    password = lines[0].strip() if lines else ""
    if not password:
        raise ConfigError(
            f"mqtt.password_file: {path} is empty (the password goes on its first line)"
        )
    return password


def _is_loopback(host: str) -> bool:
    """``localhost`` or a literal loopback address; a name like ``127.0.0.1.example.com``
    resolves wherever its owner likes, so it is not loopback."""
    name = host.rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _tls_context(cfg: MqttConfig) -> ssl.SSLContext | None:
    if cfg.tls_ca is None:
        if cfg.tls_cert is not None:
            raise ConfigError("mqtt.tls_cert: a client certificate needs tls_ca (enables TLS)")
        return None
    try:
        context = ssl.create_default_context(cafile=str(cfg.tls_ca))
    except OSError as exc:  # ssl.SSLError included
        raise ConfigError(f"mqtt.tls_ca: cannot load {cfg.tls_ca}: {exc.strerror or exc}") from exc
    if cfg.tls_cert is not None and cfg.tls_key is not None:
        key = cfg.tls_key

        def encrypted() -> bytes:
            raise ConfigError(f"mqtt.tls_key: {key} is encrypted; the daemon needs a plain key")

        try:
            context.load_cert_chain(str(cfg.tls_cert), str(key), password=encrypted)
        except OSError as exc:
            raise ConfigError(
                f"mqtt.tls_cert/tls_key: cannot load {cfg.tls_cert} with {key}: "
                f"{exc.strerror or exc}"
            ) from exc
    return context


_PROTOCOLS = {"3.1.1": aiomqtt.ProtocolVersion.V311, "5": aiomqtt.ProtocolVersion.V5}


def client_options(cfg: MqttConfig, client_id: str, will_topic: str) -> dict[str, object]:
    """Keyword arguments for aiomqtt.Client built from the config (TLS, auth, protocol, will).

    Raises :class:`ConfigError` (naming the file or key, never a secret) for an unreadable or
    empty password file, a password without a user name, unloadable TLS files, or a password
    that would cross the network in clear (TLS off, broker not on loopback, no
    ``allow_insecure``).
    """
    password = _read_password(cfg.password_file) if cfg.password_file is not None else None
    if password is not None and cfg.username is None:
        raise ConfigError("mqtt.password_file: set mqtt.username too (no password without a user)")
    tls_context = _tls_context(cfg)
    if (
        password is not None
        and tls_context is None
        and not _is_loopback(cfg.host)
        and not cfg.allow_insecure
    ):
        raise ConfigError(
            f"mqtt: refusing to send a password without TLS to {cfg.host}, which is not "
            "loopback (set tls_ca, or allow_insecure = true)"
        )
    return {
        "hostname": cfg.host,
        "port": cfg.port,
        "username": cfg.username,
        "password": password,
        "identifier": client_id,
        "protocol": _PROTOCOLS[cfg.protocol],
        "keepalive": cfg.keepalive_s,
        "tls_context": tls_context,
        "will": aiomqtt.Will(
            will_topic, BridgeState(state="offline").to_json(), qos=1, retain=True
        ),
        "timeout": PUBLISH_TIMEOUT_S,
    }


class MqttBridge:
    """Publishes retained state and events; hands inbound requests to a handler."""

    def __init__(
        self,
        cfg: MqttConfig,
        topics: Topics,
        client_id: str,
        *,
        info: Callable[[], bytes],
        subscriptions: tuple[str, ...] = (),
        handler: InboundHandler | None = None,
    ) -> None:
        self._cfg = cfg
        self._topics = topics
        self._options = client_options(cfg, client_id, topics.bridge_state)
        self._info = info
        self._subscriptions = subscriptions
        self._handler = handler
        self._retained: dict[str, bytes] = {}
        self._dirty: dict[str, None] = {}
        # (sequence number, topic, payload, correlation data)
        self._events: deque[tuple[int, str, bytes, bytes | None]] = deque()
        self._event_seq = 0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._connected = asyncio.Event()
        self.dropped_events = 0
        self.connects = 0

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        await self._connected.wait()

    def set_retained(self, topic: str, payload: bytes) -> None:
        """Make ``payload`` the retained value of ``topic`` (published now or after reconnect)."""
        if self._retained.get(topic) == payload:
            return
        self._retained[topic] = payload
        self._dirty[topic] = None
        self._wake.set()

    def publish(self, topic: str, payload: bytes, correlation_data: bytes | None = None) -> None:
        """Queue a non-retained QoS 1 message (events, responses; MQTT 5 correlation data)."""
        if len(self._events) >= EVENT_QUEUE_MAX:
            self._events.popleft()
            self.dropped_events += 1
        self._event_seq += 1
        self._events.append((self._event_seq, topic, payload, correlation_data))
        self._wake.set()

    def stop(self) -> None:
        """Ask :meth:`run` to publish ``offline`` and return."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Connect, publish, reconnect with jittered backoff, until :meth:`stop`."""
        backoff = Backoff(0.5, 30.0)
        while not self._stopping.is_set():
            error: str | None = None
            try:
                await self._session()
                backoff.reset()
            except* aiomqtt.MqttError as group:
                error = "; ".join(str(e) for e in group.exceptions)
            if error is not None:
                self._connected.clear()
                delay = backoff.next()
                log.warning("mqtt_disconnected", error=error, retry_in_s=round(delay, 2))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._stopping.wait()
        self._connected.clear()

    async def _session(self) -> None:
        async with aiomqtt.Client(**self._options) as client:  # type: ignore[arg-type]
            self.connects += 1
            online = BridgeState(state="online").to_json()
            await client.publish(self._topics.bridge_state, online, qos=1, retain=True)
            await client.publish(self._topics.bridge_info, self._info(), qos=1, retain=True)
            for topic in self._subscriptions:
                await client.subscribe(topic, qos=1)
            self._dirty = dict.fromkeys(self._retained)
            self._connected.set()
            log.info("mqtt_connected", host=self._cfg.host, port=self._cfg.port)
            async with asyncio.TaskGroup() as tg:
                reader = tg.create_task(self._read(client), name="mqtt-reader")
                try:
                    await self._pump(client)
                finally:
                    reader.cancel()
            offline = BridgeState(state="offline").to_json()
            await client.publish(self._topics.bridge_state, offline, qos=1, retain=True)
            log.info("mqtt_offline_published")

    async def _pump(self, client: aiomqtt.Client) -> None:
        """Keep up to PUBLISH_WINDOW QoS 1 messages in flight (waiting for each PUBACK in turn
        made an event wait behind every retained update). Events and responses go before
        retained state; each is forgotten only once acknowledged. Publishes start in order,
        so the wire order is the queue order."""
        window = asyncio.Semaphore(PUBLISH_WINDOW)
        sent_upto = 0  # events with a higher sequence number have not been sent this session
        in_flight: set[str] = set()  # retained topics being published
        acked: set[int] = set()

        async def send_event(seq: int, topic: str, payload: bytes, corr: bytes | None) -> None:
            try:
                await client.publish(
                    topic, payload, qos=1, properties=_correlation_properties(corr)
                )
            finally:
                window.release()
            acked.add(seq)
            while self._events and self._events[0][0] in acked:
                acked.discard(self._events.popleft()[0])
            self._wake.set()

        async def send_retained(topic: str, payload: bytes) -> None:
            try:
                await client.publish(topic, payload, qos=1, retain=True)
            finally:
                window.release()
                in_flight.discard(topic)
            if self._retained.get(topic) is payload:  # no newer value arrived meanwhile
                self._dirty.pop(topic, None)
            self._wake.set()

        async with asyncio.TaskGroup() as tg:
            while True:
                event = next((e for e in self._events if e[0] > sent_upto), None)
                topic = None
                if event is None:
                    topic = next((t for t in self._dirty if t not in in_flight), None)
                if event is None and topic is None:
                    if self._stopping.is_set() and not in_flight and not self._events:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                await window.acquire()
                if event is not None:
                    sent_upto = event[0]
                    tg.create_task(send_event(*event))
                else:
                    assert topic is not None
                    in_flight.add(topic)
                    tg.create_task(send_retained(topic, self._retained[topic]))

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            props = message.properties
            response_topic = getattr(props, "ResponseTopic", None) if props else None
            correlation = getattr(props, "CorrelationData", None) if props else None
            payload = message.payload
            raw = payload if isinstance(payload, bytes | bytearray) else str(payload).encode()
            inbound = Inbound(str(message.topic), bytes(raw), response_topic, correlation)
            if self._handler is None:
                continue
            try:
                await self._handler(inbound)
            except Exception:
                log.exception("mqtt_handler_failed", topic=inbound.topic)


class StateWatcher:
    """A read-only client (simbankctl, the demo): keeps the latest retained payload per topic.

    ``state`` maps topic → decoded JSON object for every gateway under ``base`` (or only
    ``gateway``); events are kept in ``events`` (bounded).
    """

    def __init__(
        self, cfg: MqttConfig, base: str, client_id: str, gateway: str | None = None
    ) -> None:
        options = client_options(cfg, client_id, f"{base}/clients/{client_id}")
        options.pop("will")
        self._options = options
        self._filter = f"{base}/{gateway or '+'}/#"
        self.state: dict[str, dict[str, object]] = {}
        self.events: deque[dict[str, object]] = deque(maxlen=50)
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
        self._reply_topic = f"{topics.root}/clients/{client_id}/reply"
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
