"""The dashboard's relay without a browser: a WebSocket client against ``Dashboard`` and a real
mosquitto with users and the SHIPPED config/mosquitto/acl. A plain MQTT client logged in as
the gateway ``gw1`` answers requests as the daemon would (Response Topic, Correlation Data).

Login pacing runs on a :class:`ScriptedClock`: its pauses are recorded, not waited."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from simbank.clock import ScriptedClock
from simbank.config.models import MqttConfig
from simbank.mosquitto import PrivateMosquitto, free_port, make_password_file
from simbank.web.server import Dashboard
from simbank.web.throttle import LoginThrottle

pytestmark = pytest.mark.integration

ACL = Path(__file__).resolve().parents[2] / "config" / "mosquitto" / "acl"
USERS = {"gw1": "gw1-Pa55-3e1a", "operator": "op-Pa55-5c07", "monitor": "mon-Pa55-9b44"}
ICCID = "89990100000000014014"
WAIT_S = 10.0


@contextlib.asynccontextmanager
async def _broker(tmp_path: Path) -> AsyncIterator[PrivateMosquitto]:
    passwd = make_password_file(tmp_path / "passwd", USERS)
    async with PrivateMosquitto(
        tmp_path / "broker",
        password_file=passwd,
        acl_file=ACL,
        log_types=("error", "warning", "notice", "information", "debug"),
    ) as broker:
        yield broker


class Page:
    """What a page does over the WebSocket: send frames, read them one by one."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame if isinstance(frame, str) else json.dumps(frame))

    async def next(self, **match: Any) -> dict[str, Any]:
        """The next frame with these fields (frames on the way are kept in ``seen``)."""
        async with asyncio.timeout(WAIT_S):
            while True:
                message = await self.ws.receive()
                assert message.type == aiohttp.WSMsgType.TEXT, message
                frame = json.loads(message.data)
                self.seen.append(frame)
                if all(frame.get(k) == v for k, v in match.items()):
                    return frame

    async def login(self, user: str, password: str | None = None) -> dict[str, Any]:
        await self.send({"type": "login", "username": user, "password": password or USERS[user]})
        async with asyncio.timeout(WAIT_S):
            while True:
                frame = await self.next()
                if frame["type"] in {"login_ok", "login_failed"}:
                    return frame


@contextlib.asynccontextmanager
async def _page(url: str, **headers: str) -> AsyncIterator[Page]:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url + "ws", headers=headers) as ws,
    ):
        yield Page(ws)


@contextlib.asynccontextmanager
async def _gateway(broker: PrivateMosquitto) -> AsyncIterator[list[str]]:
    """``gw1`` as the daemon behaves on the wire: retained state, answers to requests."""
    got: list[str] = []
    async with aiomqtt.Client(
        "127.0.0.1",
        broker.port,
        username="gw1",
        password=USERS["gw1"],
        identifier="fake-gw1",
        protocol=aiomqtt.ProtocolVersion.V5,
    ) as client:
        await client.subscribe("simbank/gw1/bridge/request/#", qos=1)
        await client.publish("simbank/gw1/bridge/state", b'{"state":"online"}', qos=1, retain=True)
        modem = {"id": "m1", "port": "/dev/ttyUSB2", "state": "ready", "iccid": ICCID}
        await client.publish("simbank/gw1/modem/m1", json.dumps(modem), qos=1, retain=True)

        async def answer() -> None:
            async for message in client.messages:
                got.append(str(message.topic))
                request = json.loads(message.payload)  # type: ignore[arg-type]
                props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                props.CorrelationData = message.properties.CorrelationData  # type: ignore[union-attr]
                response = {
                    "status": "ok",
                    "data": {"iccid": request.get("iccid"), "state": "disabled"},
                    "transaction": request["transaction"],
                }
                await client.publish(
                    message.properties.ResponseTopic,  # type: ignore[union-attr]
                    json.dumps(response),
                    qos=1,
                    properties=props,
                )

        task = asyncio.create_task(answer(), name="fake-gw1")
        try:
            yield got
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_bad_input_gets_an_error_reply_and_the_session_lives_on(tmp_path: Path) -> None:
    clock = ScriptedClock()
    async with (
        _broker(tmp_path) as broker,
        Dashboard(
            MqttConfig(port=broker.port), "simbank", login_throttle=LoginThrottle(clock)
        ) as dashboard,
        _page(dashboard.url) as page,
    ):
        await page.send("not json")
        assert (await page.next(type="error"))["error"] == "not JSON"
        await page.send(b"\xff\x00")
        assert (await page.next(type="error"))["error"] == "not JSON"
        await page.send({"type": "request", "id": "r0", "gateway": "gw1", "command": "status"})
        assert await page.next(type="error") == {
            "type": "error",
            "id": "r0",
            "error": "log in first",
        }

        # A login the broker refuses: said clearly, and the page may try again.
        refused = await page.login("operator", "wrong-password")
        assert refused == {
            "type": "login_failed",
            "error": "the broker refused this user name and password",
        }
        assert "wrong-password" not in broker.log_text()
        assert (await page.login("operator"))["type"] == "login_ok"
        # … after the pause one refusal earns (the page is told).
        assert {"type": "login_delayed", "seconds": 2} in page.seen
        assert clock.sleeps == [2]

        for frame, problem in [
            ({"type": "request", "id": "r1", "gateway": "gw1", "command": "call"}, "not one"),
            ({"type": "request", "id": "r2", "gateway": "+", "command": "status"}, "gateway"),
            (
                {
                    "type": "request",
                    "id": "r3",
                    "gateway": "gw1",
                    "command": "sim/release",
                    "payload": {"iccid": ICCID},
                },
                "note",
            ),
            ({"type": "login", "username": "monitor", "password": "x"}, "already logged in"),
            ("[]", "JSON object"),
        ]:
            await page.send(frame)
            error = await page.next(type="error")
            assert problem in error["error"], (frame, error)
            if isinstance(frame, dict) and frame["type"] == "request":
                assert error["id"] == frame["id"]

        # Still alive: a request to a gateway nobody runs is refused at once (MQTT 5: no
        # matching subscribers), not left hanging.
        await page.send({"type": "request", "id": "r4", "gateway": "gw9", "command": "status"})
        unheard = await page.next(type="refused", id="r4")
        assert unheard["reason"] == "no_gateway"
        assert "gw9 is not listening" in unheard["error"]


async def test_the_broker_decides_who_acts(tmp_path: Path) -> None:
    release = {"iccid": ICCID}
    async with (
        _broker(tmp_path) as broker,
        _gateway(broker) as gateway_got,
        Dashboard(MqttConfig(port=broker.port), "simbank") as dashboard,
        _page(dashboard.url) as monitor,
        _page(dashboard.url) as operator,
    ):
        assert (await monitor.login("monitor"))["type"] == "login_ok"
        # The monitor reads the retained state …
        modem = await monitor.next(type="message", kind="modem")
        assert modem["gateway"] == "gw1"
        assert modem["key"] == "m1"
        assert modem["payload"]["iccid"] == ICCID
        # … but its request is refused by the broker (PUBACK 0x87) and it is told so.
        await monitor.send(
            {
                "type": "request",
                "id": "m1",
                "gateway": "gw1",
                "command": "sim/disable",
                "payload": release,
            }
        )
        refused = await monitor.next(type="refused", id="m1")
        assert refused["reason"] == "not_authorized"
        assert "not authorized" in refused["error"]
        assert "monitor" in refused["error"]
        assert re.search(
            r"Denied PUBLISH from simbank-web-\w+ .*simbank/gw1/bridge/request/sim/disable",
            broker.log_text(),
        )

        # The operator's same request reaches the gateway and its answer comes back.
        assert (await operator.login("operator"))["type"] == "login_ok"
        await operator.send(
            {
                "type": "request",
                "id": "o1",
                "gateway": "gw1",
                "command": "sim/disable",
                "payload": release,
            }
        )
        answered = await operator.next(type="response", id="o1")
        assert answered["response"]["status"] == "ok"
        assert answered["response"]["data"] == {"iccid": ICCID, "state": "disabled"}
        assert answered["command"] == "sim/disable"
        # The gateway got exactly one request: the operator's.
        assert gateway_got == ["simbank/gw1/bridge/request/sim/disable"]


async def test_an_unreachable_broker_is_a_login_error(tmp_path: Path) -> None:
    async with (
        Dashboard(MqttConfig(port=free_port()), "simbank") as dashboard,
        _page(dashboard.url) as page,
    ):
        failed = await page.login("operator")
        assert failed["type"] == "login_failed"
        assert "cannot reach the broker" in failed["error"]


async def test_the_page_and_its_guards(tmp_path: Path) -> None:
    async with (
        _broker(tmp_path) as broker,
        Dashboard(MqttConfig(port=broker.port), "simbank") as dashboard,
        aiohttp.ClientSession() as http,
    ):
        async with http.get(dashboard.url) as index:
            assert index.status == 200
            assert "script-src 'self'" in index.headers["Content-Security-Policy"]
            assert '<script src="/static/app.js"' in await index.text()
        for name in ("app.js", "style.css"):
            async with http.get(f"{dashboard.url}static/{name}") as asset:
                assert asset.status == 200
        async with http.get(f"{dashboard.url}static/../server.py") as escape:
            assert escape.status in {403, 404}
        # Another site's page may not open the relay.
        with pytest.raises(aiohttp.WSServerHandshakeError) as foreign:
            async with http.ws_connect(
                dashboard.url + "ws", headers={"Origin": "https://evil.example"}
            ):
                pass
        assert foreign.value.status == 403
        origin = dashboard.url.rstrip("/")
        async with _page(dashboard.url, Origin=origin) as page:
            assert (await page.login("monitor"))["type"] == "login_ok"


def _port(url: str) -> int:
    return int(url.rstrip("/").rsplit(":", 1)[1])


async def test_only_our_own_host_names_are_served() -> None:
    """DNS rebinding: a foreign page whose name now resolves to 127.0.0.1 sends a Host and an
    Origin that agree with each other. The Host is not ours: page, files and relay refused."""
    async with (
        Dashboard(
            MqttConfig(port=free_port()), "simbank", public_hosts=["dash.example.com"]
        ) as dashboard,
        aiohttp.ClientSession() as http,
    ):
        port = _port(dashboard.url)
        evil = f"evil.example:{port}"
        for path in ("", "static/app.js", "nowhere"):
            async with http.get(dashboard.url + path, headers={"Host": evil}) as refused:
                assert refused.status == 421, path
                assert "--public-host" in await refused.text()
                assert refused.headers["X-Frame-Options"] == "DENY"
        with pytest.raises(aiohttp.WSServerHandshakeError) as rebound:
            async with http.ws_connect(
                dashboard.url + "ws", headers={"Host": evil, "Origin": f"http://{evil}"}
            ):
                pass
        assert rebound.value.status == 421
        # Our own names: loopback with the listening port, and the public name on any port.
        for host in (f"localhost:{port}", f"[::1]:{port}", "dash.example.com"):
            async with http.get(dashboard.url, headers={"Host": host}) as index:
                assert index.status == 200, host
        async with http.get(dashboard.url, headers={"Host": f"localhost:{port + 1}"}) as other:
            assert other.status == 421
        # Behind the proxy: Host and Origin both the public name, so the relay opens.
        async with http.ws_connect(
            dashboard.url + "ws",
            headers={"Host": "dash.example.com", "Origin": "https://dash.example.com"},
        ) as ws:
            assert not ws.closed


async def test_password_guessing_is_rationed(tmp_path: Path) -> None:
    """One WebSocket gets 5 refused logins, then it is closed; each refusal from the address
    makes its next login wait longer, on this socket and the next."""
    clock = ScriptedClock()
    async with (
        _broker(tmp_path) as broker,
        Dashboard(
            MqttConfig(port=broker.port), "simbank", login_throttle=LoginThrottle(clock)
        ) as dashboard,
    ):
        async with _page(dashboard.url) as page:
            for n in range(5):
                failed = await page.login("operator", f"guess-{n}")
                assert failed["type"] == "login_failed", failed
            async with asyncio.timeout(WAIT_S):
                closed = await page.ws.receive()
            assert closed.type == aiohttp.WSMsgType.CLOSE
            assert (closed.data, closed.extra) == (4001, "too many failed logins")
            delayed = [f["seconds"] for f in page.seen if f["type"] == "login_delayed"]
            assert delayed == [2, 4, 8, 16]
        assert clock.sleeps == [2, 4, 8, 16]
        # Five tries reached the broker, no more (mosquitto writes its log on its own time:
        # wait for the fifth line, then check there is no sixth).
        async with asyncio.timeout(10):
            while broker.log_text().count("disconnected, not authorised") < 5:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        assert broker.log_text().count("disconnected, not authorised") == 5

        # A new WebSocket from the same address waits the longest pause first.
        async with _page(dashboard.url) as page:
            assert (await page.login("operator"))["type"] == "login_ok"
            assert {"type": "login_delayed", "seconds": 30} in page.seen
        assert clock.sleeps == [2, 4, 8, 16, 30]


async def test_sockets_that_never_log_in_are_closed_and_capped() -> None:
    async with (
        Dashboard(
            MqttConfig(port=free_port()), "simbank", max_sessions=3, login_wait_s=0.5
        ) as dashboard,
        aiohttp.ClientSession() as http,
    ):
        idle = [await http.ws_connect(dashboard.url + "ws") for _ in range(3)]
        with pytest.raises(aiohttp.WSServerHandshakeError) as full:
            async with http.ws_connect(dashboard.url + "ws"):
                pass
        assert full.value.status == 503
        for ws in idle:
            async with asyncio.timeout(WAIT_S):
                closed = await ws.receive()
            assert (closed.type, closed.data, closed.extra) == (
                aiohttp.WSMsgType.CLOSE,
                4000,
                "no login",
            )
        # Their places are free again (the server lets go just after the close handshake).
        turned_away: list[int] = []
        async with asyncio.timeout(WAIT_S):
            while True:
                try:
                    again = await http.ws_connect(dashboard.url + "ws")
                except aiohttp.WSServerHandshakeError as exc:
                    turned_away.append(exc.status)
                    await asyncio.sleep(0.05)
                else:
                    break
        await again.close()
        assert set(turned_away) <= {503}
