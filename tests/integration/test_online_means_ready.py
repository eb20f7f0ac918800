"""``bridge/state`` = ``online`` means ready: a request sent the instant it shows is answered.

Against a real mosquitto. A client watches ``bridge/state`` and, in the same turn of the
loop in which it reads ``online``, publishes a request; the answer must come, a hundred
times in a row, over the three ways a fresh ``online`` appears: a bridge starting, a broker
restart (both connections reconnect) and the request connection alone being dropped (the
publisher stays up: ``offline`` first, then ``online`` again once the requests are heard).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiomqtt
import pytest
import structlog.testing

from simbank.config.models import MqttConfig
from simbank.contract import Topics
from simbank.mosquitto import PrivateMosquitto
from simbank.mqtt import Inbound, MqttBridge, client_options
from simbank.mqtt import bridge as bridge_module
from simbank.mqtt.bridge import LISTENER_SUFFIX

pytestmark = pytest.mark.integration

ROUNDS = 100
#: Every this many rounds, one broker restart and one dropped request connection; the other
#: rounds start a new bridge (the cheapest fresh ``online``).
EVERY = 20
#: mosquitto's dynamic-security plugin (Debian's mosquitto package ships it in the
#: multiarch library directory).
DYNSEC_PLUGIN = next(
    (
        path
        for pattern in ("usr/lib/*/", "usr/lib/", "usr/local/lib/")
        for path in sorted(Path("/").glob(f"{pattern}mosquitto_dynamic_security.so"))
    ),
    None,
)
#: Hang guard per round (a lost request never gets an answer).
ROUND_GUARD_S = 15.0


@pytest.fixture
def fast_mosquitto(tmp_path: Path) -> Iterator[PrivateMosquitto]:
    """A mosquitto for one test that sends each packet at once (``set_tcp_nodelay``).

    With Nagle's algorithm on (mosquitto's default) the broker held ``online`` back from the
    watcher for ~40 ms on loopback, behind the delayed ACK of its previous packet: long
    enough for the old bridge to subscribe in the meantime, hiding the race. A broker
    tuned for latency, or a client on another host, sees ``online`` as soon as it is sent."""
    broker = PrivateMosquitto(tmp_path / "mosquitto", extra_conf="set_tcp_nodelay true")
    broker.start()
    yield broker
    broker.stop()


def _cfg(broker: PrivateMosquitto) -> MqttConfig:
    return MqttConfig(host=broker.host, port=broker.port, keepalive_s=5)


def _answering_bridge(cfg: MqttConfig, topics: Topics) -> MqttBridge:
    """A bridge whose handler answers every request ``ok`` with its transaction (what the
    daemon's router does for a read-only command, without the gateway behind it)."""

    async def answer(inbound: Inbound) -> None:
        request = json.loads(inbound.payload)
        command = inbound.topic.removeprefix(topics.request_prefix)
        reply = {"status": "ok", "transaction": request["transaction"]}
        answer = json.dumps(reply, separators=(",", ":")).encode()
        bridge.publish(topics.response(command), answer, lane="results")

    bridge = MqttBridge(
        cfg,
        topics,
        f"bridge-{topics.root}",
        info=lambda: b'{"v":1}',
        subscriptions=(f"{topics.request_prefix}#",),
        handler=answer,
    )
    return bridge


@contextlib.asynccontextmanager
async def _watching(cfg: MqttConfig, topics: Topics, name: str) -> AsyncIterator[aiomqtt.Client]:
    """A client subscribed to ``bridge/state`` and the answers of ``ping``."""
    options = client_options(cfg, name, f"{topics.root}/clients/{name}")
    options.pop("will")
    client = aiomqtt.Client(**options)  # type: ignore[arg-type]
    await client.__aenter__()
    try:
        await client.subscribe(topics.bridge_state, qos=0)
        await client.subscribe(topics.response("ping"), qos=1)
        yield client
    finally:
        with contextlib.suppress(aiomqtt.MqttError):
            await client.__aexit__(None, None, None)


async def _state(client: aiomqtt.Client, topics: Topics, wanted: str) -> None:
    """Read until ``bridge/state`` says ``wanted`` (anything else is passed over)."""
    async for message in client.messages:
        if str(message.topic) != topics.bridge_state:
            continue
        assert isinstance(message.payload, bytes)
        if message.payload and json.loads(message.payload)["state"] == wanted:
            return


async def _ask_the_instant_it_is_online(
    client: aiomqtt.Client, topics: Topics, transaction: str
) -> dict[str, object]:
    await _state(client, topics, "online")
    # No await between reading "online" and sending: the request leaves at once.
    body = json.dumps({"transaction": transaction}).encode()
    await client.publish(topics.request("ping"), body, qos=1)
    async for message in client.messages:
        if str(message.topic) == topics.response("ping"):
            assert isinstance(message.payload, bytes)
            answer: dict[str, object] = json.loads(message.payload)
            if answer["transaction"] == transaction:
                return answer
    raise AssertionError("the watching connection closed")


async def test_a_request_sent_the_instant_online_shows_is_answered_a_hundred_times(
    fast_mosquitto: PrivateMosquitto,
    base_topic: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every session counts as a good one, so each reconnect waits the shortest delay.
    monkeypatch.setattr(bridge_module, "STABLE_SESSION_S", 0.0)
    cfg = _cfg(fast_mosquitto)
    topics = Topics(base_topic, "gw1")
    kinds: dict[str, int] = {"bridge start": 0, "broker restart": 0, "requests dropped": 0}
    async with contextlib.AsyncExitStack() as stack, asyncio.TaskGroup() as tg:
        watcher = await stack.enter_async_context(_watching(cfg, topics, "asker-0"))
        bridge = _answering_bridge(cfg, topics)
        run = tg.create_task(bridge.run(), name="bridge-0")
        for n in range(ROUNDS):
            kind = "bridge start"
            if n and n % EVERY == EVERY // 2:
                kind = "broker restart"
            elif n and n % EVERY == EVERY // 2 + 5:
                kind = "requests dropped"
            try:
                async with asyncio.timeout(ROUND_GUARD_S):
                    if kind == "bridge start" and n:
                        bridge.stop()
                        await run
                        await _state(watcher, topics, "offline")
                        bridge = _answering_bridge(cfg, topics)
                        run = tg.create_task(bridge.run(), name=f"bridge-{n}")
                    elif kind == "broker restart":
                        # Persistence is off: the restarted broker has no retained state, and
                        # the watcher reconnects before the bridge's first retry (0.5 s).
                        await fast_mosquitto.astop()
                        await stack.aclose()
                        await fast_mosquitto.astart()
                        watcher = await stack.enter_async_context(
                            _watching(cfg, topics, f"asker-{n}")
                        )
                    elif kind == "requests dropped":
                        # Another client takes the request connection's id: the broker drops
                        # the bridge's listener; its publisher stays connected.
                        kicker = client_options(cfg, f"bridge-{topics.root}{LISTENER_SUFFIX}", "")
                        kicker.pop("will")
                        async with aiomqtt.Client(**kicker):  # type: ignore[arg-type]
                            pass
                        await _state(watcher, topics, "offline")
                    answer = await _ask_the_instant_it_is_online(watcher, topics, f"r{n}")
            except TimeoutError:
                pytest.fail(
                    f"round {n} ({kind}): no answer to a request sent the instant "
                    f"{topics.bridge_state} said online (bridge received {bridge.received})"
                )
            assert answer == {"status": "ok", "transaction": f"r{n}"}
            kinds[kind] += 1
        bridge.stop()
        await run
    print("fresh online, each answered:", kinds)
    assert kinds == {"bridge start": 90, "broker restart": 5, "requests dropped": 5}


@pytest.mark.skipif(DYNSEC_PLUGIN is None, reason="mosquitto's dynamic-security plugin")
@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_a_refused_request_subscription_never_shows_online(
    tmp_path: Path, base_topic: str, protocol: str
) -> None:
    """A broker that refuses the gateway's subscription to its request topics (mosquitto's
    ACL file grants every subscription and filters on delivery; its dynamic-security plugin
    refuses in the SUBACK, as other brokers do): every request would be lost, so ``online``
    is never published; each attempt fails, logged with the reason, and backs off (before,
    the refusal went unread and ``online`` stood over a gateway that heard nothing)."""
    anyone = {"groupname": "anyone", "roles": [{"rolename": "anyone"}], "clients": []}
    rules = [
        {"acltype": "publishClientSend", "topic": "#", "allow": True},
        {"acltype": "subscribePattern", "topic": f"{base_topic}/gw1/bridge/state", "allow": True},
    ]
    dynsec = tmp_path / "dynamic-security.json"
    dynsec.write_text(
        json.dumps(
            {
                "defaultACLAccess": {
                    "publishClientSend": False,
                    "publishClientReceive": True,
                    "subscribe": False,
                    "unsubscribe": True,
                },
                "clients": [],
                "groups": [anyone],
                "roles": [{"rolename": "anyone", "acls": rules}],
                "anonymousGroup": "anyone",
            }
        ),
        encoding="utf-8",
    )
    broker = PrivateMosquitto(
        tmp_path / "mosquitto",
        extra_conf=f"plugin {DYNSEC_PLUGIN}\nplugin_opt_config_file {dynsec}\n",
    )
    broker.start()
    try:
        cfg = MqttConfig(host=broker.host, port=broker.port, keepalive_s=5, protocol=protocol)
        topics = Topics(base_topic, "gw1")
        bridge = _answering_bridge(cfg, topics)
        states: list[str] = []
        with structlog.testing.capture_logs() as logs:
            async with _watching(cfg, topics, "asker") as watcher, asyncio.TaskGroup() as tg:

                async def watch() -> None:
                    async for message in watcher.messages:
                        assert isinstance(message.payload, bytes)
                        states.append(json.loads(message.payload)["state"])

                watching = tg.create_task(watch(), name="state-watch")
                run = tg.create_task(bridge.run(), name="refused-bridge")

                def refusals() -> list[str]:
                    return [
                        str(e["error"])
                        for e in logs
                        if e["event"] == "mqtt_disconnected" and "refused" in str(e["error"])
                    ]

                async with asyncio.timeout(ROUND_GUARD_S):
                    while len(refusals()) < 2:
                        await asyncio.sleep(0.05)
                bridge.stop()
                await run
                # The watcher reads bridge/state: anything published before the refusals
                # (the old bridge's "online" came first) has reached it by now.
                await watcher.publish(topics.bridge_state, b'{"state":"offline"}', qos=1)
                async with asyncio.timeout(ROUND_GUARD_S):
                    while not states:
                        await asyncio.sleep(0.01)
                watching.cancel()
    finally:
        broker.stop()
    assert f"{topics.request_prefix}#" in refusals()[0]
    assert bridge.connects == 0
    assert states == ["offline"], states
