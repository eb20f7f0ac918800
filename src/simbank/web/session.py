"""One page's session: its broker login, the contract relayed to it, its requests.

The page logs in with a broker user name and password; the session opens one MQTT 5
connection with exactly those credentials (there is no account of the relay's own), follows
every gateway's retained state and events, and publishes the page's requests with a Response
Topic and Correlation Data of its own. What the user may read and do is the broker's ACL:
a publish it denies comes back as PUBACK 0x87 and the page is told "not authorized".

Each login is a broker connection with the password the page sent, so logins are rationed:
a WebSocket gets :data:`MAX_FAILED_LOGINS` refused logins and is then closed (code
:data:`CLOSE_TOO_MANY_FAILURES`), and the dashboard's :class:`LoginThrottle` makes every
login from an address that was refused recently wait first (the page is told how long).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
from dataclasses import dataclass
from typing import Any

import aiomqtt
import structlog
from aiohttp import WSMessage, WSMsgType, web
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from simbank.config.models import MqttConfig
from simbank.mqtt import client_options
from simbank.web.broker import NO_MATCHING_SUBSCRIBERS, NOT_AUTHORIZED, AckedClient
from simbank.web.protocol import (
    FrameError,
    Login,
    RequestFrame,
    classify,
    decode_payload,
    error_frame,
    message_frame,
    parse_frame,
    refused_frame,
    reply_topic,
    subscriptions,
)
from simbank.web.throttle import LoginThrottle

log = structlog.get_logger("simbank.web")

#: a page that opened the WebSocket has this long to log in
LOGIN_WAIT_S = 30.0
#: refused logins one WebSocket may try before it is closed
MAX_FAILED_LOGINS = 5
#: close codes (4000-4999: the application's own) and the reasons the page shows
CLOSE_NO_LOGIN = 4000
CLOSE_TOO_MANY_FAILURES = 4001
TOO_MANY_FAILURES = "too many failed logins"
#: incoming broker messages buffered for a slow page before aiomqtt drops them
QUEUED_MESSAGES_MAX = 10_000


@dataclass(frozen=True, slots=True)
class RelaySettings:
    """The broker every session logs in to (``mqtt``'s user name and password file are
    ignored: each page brings its own), the base topic and the waits."""

    mqtt: MqttConfig
    base: str = "simbank"
    #: how long a gateway has to answer a request (a slot switch takes seconds)
    response_timeout_s: float = 30.0
    #: how long the broker has to acknowledge a request's publish
    ack_timeout_s: float = 10.0
    #: requests one page may have waiting at once
    max_in_flight: int = 16
    #: how long a page that opened the WebSocket has to log in
    login_wait_s: float = LOGIN_WAIT_S


class Session:
    """The relay between one WebSocket and the broker; :meth:`run` until the page leaves."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        settings: RelaySettings,
        peer: str,
        throttle: LoginThrottle,
    ) -> None:
        self._ws = ws
        self._settings = settings
        self._peer = peer
        self._throttle = throttle
        self._client_id = f"simbank-web-{secrets.token_hex(6)}"
        self._send_lock = asyncio.Lock()
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._requests: set[asyncio.Task[None]] = set()
        self._log = log.bind(peer=peer, client_id=self._client_id)

    async def send(self, frame: dict[str, Any]) -> bool:
        """Send one frame; False once the page has gone."""
        if self._ws.closed:
            return False
        async with self._send_lock:
            try:
                await self._ws.send_str(json.dumps(frame))
            except ConnectionError:
                return False
        return True

    async def run(self) -> None:
        failures = 0
        while (login := await self._await_login()) is not None:
            if (delay := self._throttle.reserve(self._peer)) > 0:
                self._log.info("web_login_delayed", user=login.username, delay_s=delay)
                await self.send({"type": "login_delayed", "seconds": math.ceil(delay)})
                await self._throttle.clock.sleep(delay)
                if self._ws.closed:
                    return
            client = self._client(login)
            try:
                await client.__aenter__()
            except aiomqtt.MqttError as exc:
                refused = _broker_refused(exc)
                if refused:
                    failures += 1
                    on_record = self._throttle.failed(self._peer)
                else:
                    on_record = 0
                self._log.info(
                    "web_login_refused",
                    user=login.username,
                    error=str(exc),
                    failures=failures,
                    failures_from_peer=on_record,
                )
                await self.send({"type": "login_failed", "error": self._login_problem(exc)})
                if failures >= MAX_FAILED_LOGINS:
                    self._log.warning("web_login_attempts_exhausted", failures=failures)
                    await self._ws.close(
                        code=CLOSE_TOO_MANY_FAILURES, message=TOO_MANY_FAILURES.encode()
                    )
                    return
                continue
            try:
                await self._relay(client, login)
            finally:
                with contextlib.suppress(aiomqtt.MqttError):
                    await client.__aexit__(None, None, None)
            return

    def _client(self, login: Login) -> AckedClient:
        cfg = self._settings.mqtt.model_copy(update={"username": None, "password_file": None})
        options = client_options(cfg, self._client_id, "unused")
        options.pop("will")
        options["username"] = login.username
        options["password"] = login.password
        options["protocol"] = aiomqtt.ProtocolVersion.V5
        options["max_queued_incoming_messages"] = QUEUED_MESSAGES_MAX
        return AckedClient(**options)

    def _login_problem(self, exc: aiomqtt.MqttError) -> str:
        if isinstance(exc, aiomqtt.MqttCodeError) and isinstance(exc.rc, ReasonCode):
            if exc.rc.value in {NOT_AUTHORIZED, 0x86}:  # 0x86: bad user name or password
                return "the broker refused this user name and password"
            return f"the broker refused the login: {exc.rc.getName()}"
        where = f"{self._settings.mqtt.host}:{self._settings.mqtt.port}"
        return f"cannot reach the broker at {where}: {exc}"

    async def _await_login(self) -> Login | None:
        """The next valid login frame; None when the page went away or never logged in."""
        try:
            async with asyncio.timeout(self._settings.login_wait_s):
                async for message in self._ws:
                    frame = await self._parse(message)
                    if isinstance(frame, Login):
                        return frame
                    if isinstance(frame, RequestFrame):
                        await self.send(error_frame("log in first", frame.id))
        except TimeoutError:
            await self._ws.close(code=CLOSE_NO_LOGIN, message=b"no login")
        return None

    async def _parse(self, message: WSMessage) -> Login | RequestFrame | None:
        if message.type not in {WSMsgType.TEXT, WSMsgType.BINARY}:
            return None
        try:
            return parse_frame(message.data)
        except FrameError as exc:
            await self.send(error_frame(str(exc), exc.request_id))
            return None

    async def _relay(self, client: AckedClient, login: Login) -> None:
        filters = subscriptions(self._settings.base, self._client_id)
        granted = await client.subscribe([(f, 1) for f in filters])
        refused = [f for f, code in zip(filters, granted, strict=False) if _refused(code)]
        if len(refused) == len(filters):
            await self.send(
                {
                    "type": "login_failed",
                    "error": f"user {login.username} may not read "
                    f"{self._settings.base}/… on this broker",
                }
            )
            return
        self._log.info("web_login", user=login.username, refused=refused)
        await self.send(
            {"type": "login_ok", "username": login.username, "base": self._settings.base}
        )
        async with asyncio.TaskGroup() as tg:
            reader = tg.create_task(self._from_broker(client), name="web-from-broker")
            await self._from_page(client, login, tg)
            reader.cancel()
            for task in self._requests:
                task.cancel()
        self._log.info("web_logout", user=login.username)

    async def _from_broker(self, client: AckedClient) -> None:
        try:
            async for message in client.messages:
                self._take(message)
                if not await self._forward(message):
                    return
        except aiomqtt.MqttError as exc:
            self._log.warning("web_broker_lost", error=str(exc))
            await self.send({"type": "broker_lost", "error": f"lost the broker: {exc}"})
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ConnectionError(str(exc)))
            await self._ws.close()

    def _take(self, message: aiomqtt.Message) -> None:
        """Hand a reply to the request waiting for it."""
        ref = classify(self._settings.base, str(message.topic))
        if ref is None or ref.kind != "reply":
            return
        correlation = getattr(message.properties, "CorrelationData", None)
        if correlation is None:
            return
        future = self._waiting.get(bytes(correlation).decode(errors="replace"))
        if future is None or future.done():
            return
        try:
            data = decode_payload(_bytes(message.payload))
        except ValueError:
            return
        if data is not None:
            future.set_result(data)

    async def _forward(self, message: aiomqtt.Message) -> bool:
        ref = classify(self._settings.base, str(message.topic))
        if ref is None or ref.kind == "reply":
            return True
        try:
            payload = decode_payload(_bytes(message.payload))
        except ValueError:
            self._log.debug("web_payload_skipped", topic=str(message.topic))
            return True
        if ref.kind == "event" and payload is None:
            return True
        return await self.send(message_frame(ref, payload))

    async def _from_page(self, client: AckedClient, login: Login, tg: asyncio.TaskGroup) -> None:
        async for message in self._ws:
            frame = await self._parse(message)
            if isinstance(frame, Login):
                await self.send(error_frame(f"already logged in as {login.username}"))
            elif isinstance(frame, RequestFrame):
                self._requests = {t for t in self._requests if not t.done()}
                if len(self._requests) >= self._settings.max_in_flight:
                    await self.send(error_frame("too many requests waiting", frame.id))
                    continue
                task = tg.create_task(
                    self._request(client, login, frame), name=f"web-request-{frame.id}"
                )
                self._requests.add(task)

    async def _request(self, client: AckedClient, login: Login, frame: RequestFrame) -> None:
        base, settings = self._settings.base, self._settings
        transaction = f"web-{secrets.token_hex(8)}"
        body = json.dumps({**frame.payload, "transaction": transaction}).encode()
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ResponseTopic = reply_topic(base, frame.gateway, self._client_id)
        properties.CorrelationData = transaction.encode()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[transaction] = future
        bound = self._log.bind(user=login.username, gateway=frame.gateway, command=frame.command)
        topic = f"{base}/{frame.gateway}/bridge/request/{frame.command}"
        try:
            try:
                code = await client.publish_acked(
                    topic, body, properties, ack_timeout=settings.ack_timeout_s
                )
            except (TimeoutError, aiomqtt.MqttError):
                bound.warning("web_request_unacknowledged")
                await self.send(
                    refused_frame(frame.id, "no_ack", "the broker did not take the request")
                )
                return
            if code >= 0x80:
                bound.info("web_request_refused", reason_code=code)
                await self.send(refused_frame(frame.id, *_refusal(code, login, frame)))
                return
            if code == NO_MATCHING_SUBSCRIBERS:
                bound.info("web_request_unheard")
                await self.send(
                    refused_frame(
                        frame.id,
                        "no_gateway",
                        f"gateway {frame.gateway} is not listening for requests "
                        "(is simbankd running and connected?)",
                    )
                )
                return
            try:
                async with asyncio.timeout(settings.response_timeout_s):
                    response = await future
            except TimeoutError:
                bound.info("web_request_unanswered")
                await self.send(
                    refused_frame(
                        frame.id,
                        "no_answer",
                        f"no answer from gateway {frame.gateway} within "
                        f"{settings.response_timeout_s:g} s",
                    )
                )
                return
            except ConnectionError:
                return  # the broker went away: the page was told
            bound.info("web_request_answered", status=response.get("status"))
            await self.send(
                {
                    "type": "response",
                    "id": frame.id,
                    "gateway": frame.gateway,
                    "command": frame.command,
                    "response": response,
                }
            )
        finally:
            self._waiting.pop(transaction, None)


def _refusal(code: int, login: Login, frame: RequestFrame) -> tuple[str, str]:
    if code == NOT_AUTHORIZED:
        return (
            "not_authorized",
            f"not authorized: the broker does not let user {login.username} send "
            f"{frame.command} to gateway {frame.gateway}",
        )
    name = ReasonCode(PacketTypes.PUBACK, identifier=code).getName()
    return "refused", f"the broker refused the request: {name}"


def _broker_refused(exc: aiomqtt.MqttError) -> bool:
    """The broker answered the CONNECT with a refusal (a wrong password, an unknown user), as
    opposed to not being reachable: only those count against the peer."""
    if not isinstance(exc, MqttConnectError):
        return False
    code = exc.rc.value if isinstance(exc.rc, ReasonCode) else exc.rc
    return isinstance(code, int) and code != 0


def _refused(code: object) -> bool:
    value = code.value if isinstance(code, ReasonCode) else code
    return isinstance(value, int) and value >= 0x80


def _bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode()
    return b""
