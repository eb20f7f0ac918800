"""Home Assistant discovery against a real mosquitto running the SHIPPED config/mosquitto/acl.

One broker for the module, with the users the ACL names (gateways log in as their gateway id,
Home Assistant as ``homeassistant``). The daemon publishes its discovery configs as ``gw1``;
Home Assistant's side is played by an MQTT client logged in as ``homeassistant``, which reads
what the broker actually stored and presses the buttons as Home Assistant would.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from bankrig import running

from simbank.config.models import HomeAssistantConfig, MqttConfig, PolicyConfig
from simbank.integrations.homeassistant import is_own_config
from simbank.mosquitto import PrivateMosquitto, make_password_file
from simbank.simulator import Scenario
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid

pytestmark = pytest.mark.integration

ACL = Path(__file__).resolve().parents[2] / "config" / "mosquitto" / "acl"
USERS = {
    "gw1": "gw1-secret",
    "gw2": "gw2-secret",
    "monitor": "monitor-secret",
    "operator": "operator-secret",
    "homeassistant": "ha-secret",
}
SIM_A, SIM_B = make_iccid(1501), make_iccid(1502)
NODE = "homeassistant/+/simbank_gw1/+/config"
#: A config a previous run left for a SIM this gateway no longer has.
LEFT_OVER = f"homeassistant/sensor/simbank_gw1/sim-{make_iccid(1599)}-state/config"
#: What a version that joined ids with ``_`` left (unique ids that could collide across
#: gateways): cleared on upgrade, even the SIM's that is still in the bank.
OLD_FORM = (
    "homeassistant/binary_sensor/simbank_gw1/bridge/config",
    "homeassistant/sensor/simbank_gw1/m1_state/config",
    f"homeassistant/sensor/simbank_gw1/sim_{SIM_A}_state/config",
)
#: Another gateway's config: never touched by gw1.
OTHER_GATEWAY = "homeassistant/sensor/simbank_gw2/m1_state/config"


@dataclass
class Broker:
    mosquitto: PrivateMosquitto
    secrets: Path

    def cfg(self, user: str) -> MqttConfig:
        return MqttConfig(
            port=self.mosquitto.port,
            username=user,
            password_file=self.secrets / user,
            keepalive_s=5,
        )

    def client(self, user: str, name: str) -> aiomqtt.Client:
        return aiomqtt.Client(
            self.mosquitto.host,
            self.mosquitto.port,
            username=user,
            password=USERS[user],
            identifier=f"{name}-{uuid.uuid4().hex[:6]}",
            protocol=aiomqtt.ProtocolVersion.V5,
        )


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    directory = tmp_path_factory.mktemp("ha-acl")
    passwd = make_password_file(directory / "passwd", USERS)
    secrets = directory / "secrets"
    secrets.mkdir()
    for user, password in USERS.items():
        (secrets / user).write_text(password, encoding="utf-8")
    mosquitto = PrivateMosquitto(
        directory / "broker",
        password_file=passwd,
        acl_file=ACL,  # the shipped file itself, not a copy
        # "Denied PUBLISH" is logged at debug level.
        log_types=("error", "warning", "notice", "information", "debug"),
    )
    mosquitto.start()
    yield Broker(mosquitto, secrets)
    mosquitto.stop()


@dataclass
class HomeAssistantSide:
    """What the ``homeassistant`` user sees: the broker's retained picture (latest non-empty
    payload per topic) and every message in order, with its retain flag."""

    client: aiomqtt.Client
    retained: dict[str, bytes] = field(default_factory=dict)
    log: list[tuple[str, bytes, bool]] = field(default_factory=list)

    def config(self, topic: str) -> dict[str, Any]:
        value = json.loads(self.retained[topic])
        assert isinstance(value, dict)
        return value

    def configs(self, gateway: str = "gw1") -> dict[str, dict[str, Any]]:
        return {
            t: self.config(t) for t in self.retained if is_own_config(t, "homeassistant", gateway)
        }

    def state(self, topic: str) -> dict[str, Any]:
        return self.config(topic) if topic in self.retained else {}

    async def follow(self) -> None:
        async for message in self.client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            topic = str(message.topic)
            self.log.append((topic, payload, bool(message.retain)))
            if payload:
                self.retained[topic] = payload
            else:
                self.retained.pop(topic, None)

    async def press(self, config: dict[str, Any]) -> None:
        """What Home Assistant publishes when a button is pressed."""
        await self.client.publish(
            config["command_topic"],
            config["payload_press"],
            qos=config["qos"],
            retain=config["retain"],
        )


@pytest.fixture
async def ha(broker: Broker) -> AsyncIterator[HomeAssistantSide]:
    async with broker.client("homeassistant", "ha") as client:
        side = HomeAssistantSide(client)
        await client.subscribe("homeassistant/#", qos=1)
        await client.subscribe("simbank/#", qos=1)
        task = asyncio.create_task(side.follow(), name="ha-follow")
        try:
            yield side
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def until(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    """Wait for ``predicate`` (a hang guard, not a speed figure)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def snapshot(broker: Broker, user: str, topic_filter: str) -> dict[str, bytes]:
    """What a new subscriber gets as retained messages: what the broker stored."""
    seen: dict[str, bytes] = {}
    async with broker.client(user, "snapshot") as client:
        await client.subscribe(topic_filter, qos=1)
        try:
            async with asyncio.timeout(0.5):
                async for message in client.messages:
                    assert message.retain
                    assert isinstance(message.payload, bytes)
                    seen[str(message.topic)] = message.payload
        except TimeoutError:
            pass
    return seen


def scenario(*, with_m2: bool) -> Scenario:
    """Single-slot modems (no empty slot to tour), fast timings."""
    sim_a = SimSpec(iccid=SIM_A, registration_delay_s=0.2)
    modems = [ModemSpec(id="m1", dialect="quectel-ec21", slots=[sim_a])]
    if with_m2:
        sim_b = SimSpec(iccid=SIM_B, registration_delay_s=0.2)
        modems.append(ModemSpec(id="m2", dialect="huawei-e3372", slots=[sim_b]))
    return Scenario(timing=Timing(boot_s=0.5, sim_init_s=0.3), modems=modems)


def _object_ids(configs: dict[str, dict[str, Any]]) -> set[str]:
    return {t.split("/")[3] for t in configs}


async def test_the_acl_keeps_each_user_to_its_part(broker: Broker) -> None:
    """Who may write what under the discovery prefix and the request topics."""
    intruder = "homeassistant/sensor/simbank_gw1/intruder_x/config"
    attempts = [
        ("gw2", "gw2-spoof", intruder),  # another gateway, this gateway's node id
        ("homeassistant", "ha-spoof", intruder),  # HA reads discovery, never writes it
        ("monitor", "monitor-spoof", intruder),
        ("monitor", "monitor-act", "simbank/gw1/bridge/request/traffic/pause"),
        # The gateways' patterns (%u) apply to every user: the other logins must not get a
        # discovery node or a gateway tree of their own name (a monitor could otherwise make
        # a button that Home Assistant presses, as a user that may act, on any gateway).
        *(
            (user, f"{user}-own-node", f"homeassistant/button/simbank_{user}/x/config")
            for user in ("monitor", "operator", "homeassistant")
        ),
        *(
            (user, f"{user}-own-tree", f"simbank/{user}/bridge/request/status")
            for user in ("monitor", "operator", "homeassistant")
        ),
    ]
    ids = []
    for user, name, topic in attempts:
        async with broker.client(user, name) as client:
            ids.append(client.identifier)
            await client.publish(
                topic, b'{"name":"x"}', qos=1, retain=topic.startswith("homeassistant/")
            )
    # What is allowed goes through: gw2 under its own node id.
    async with broker.client("gw2", "gw2-own") as client:
        await client.publish(OTHER_GATEWAY, b'{"name":"gw2 m1"}', qos=1, retain=True)
    stored = await snapshot(broker, "homeassistant", "homeassistant/+/+/+/config")
    assert intruder not in stored
    assert OTHER_GATEWAY in stored
    log = broker.mosquitto.log_text()
    for client_id in ids:
        assert f"Denied PUBLISH from {client_id}" in log
    # A gateway cannot even read another gateway's node.
    assert await snapshot(broker, "gw1", "homeassistant/+/simbank_gw2/+/config") == {}


@pytest.mark.timeout(90)
async def test_discovery_buttons_and_stale_entities_with_the_shipped_acl(
    tmp_path: Path, broker: Broker, ha: HomeAssistantSide
) -> None:
    # What an earlier run left under this gateway's node, and what another gateway owns.
    async with broker.client("gw1", "gw1-earlier") as client:
        await client.publish(LEFT_OVER, b'{"name":"old"}', qos=1, retain=True)
        for topic in OLD_FORM:
            await client.publish(topic, b'{"unique_id":"simbank_gw1_x"}', qos=1, retain=True)
    async with broker.client("gw2", "gw2") as client:
        await client.publish(OTHER_GATEWAY, b'{"name":"gw2 m1"}', qos=1, retain=True)
    await until(lambda: {LEFT_OVER, OTHER_GATEWAY, *OLD_FORM} <= ha.retained.keys())

    options: dict[str, Any] = {
        "mqtt": broker.cfg("gw1"),  # the daemon logs in as its gateway id
        "homeassistant": HomeAssistantConfig(enabled=True),
        "policy": PolicyConfig(quiet_hours=[], calls_per_month=300),
    }
    async with running(tmp_path, broker.mosquitto, "simbank", scenario(with_m2=True), **options):
        wanted = {
            *(
                f"modem-{m}-{k}"
                for m in ("m1", "m2")
                for k in ("state", "signal", "iccid", "rotate")
            ),
            *(f"sim-{i}-{k}" for i in (SIM_A, SIM_B) for k in ("state", "calls_month")),
            "gateway-bridge",
            "gateway-traffic_pause",
        }
        gone = {LEFT_OVER, *OLD_FORM}
        await until(lambda: wanted <= _object_ids(ha.configs()) and not gone & ha.retained.keys())
        await until(lambda: ha.state(f"simbank/gw1/sim/{SIM_B}").get("state") == "active")
        # Stored by the broker: a new subscriber, as Home Assistant, gets them retained.
        stored = await snapshot(broker, "homeassistant", NODE)
        assert stored.keys() == ha.configs().keys()
        assert not gone & stored.keys()
        assert OTHER_GATEWAY in ha.retained  # another gateway's entity is left alone

        configs = {t.split("/")[3]: c for t, c in ha.configs().items()}
        calls_day = configs[f"sim-{SIM_A}-calls_day"]
        assert calls_day["state_topic"] == f"simbank/gw1/sim/{SIM_A}"
        assert calls_day["state_class"] == "total_increasing"
        assert configs[f"sim-{SIM_A}-calls_hour"]["state_class"] == "measurement"
        seconds = configs[f"sim-{SIM_B}-call_seconds_day"]
        assert (seconds["unit_of_measurement"], seconds["device_class"]) == ("s", "duration")
        assert configs[f"sim-{SIM_A}-calls_month"]["state_class"] == "total_increasing"
        state = configs[f"sim-{SIM_A}-state"]
        assert state["device"]["via_device"] == "simbank:gw1"
        assert state["unique_id"] == f"simbank:gw1:sim:{SIM_A}:state"
        assert not any(k.startswith("modem-m1-calls") for k in configs)  # usage is per SIM now
        assert ha.state("simbank/gw1/modem/m1")["state"] == "ready"  # HA reads the state

        # Home Assistant's buttons: ordinary requests the broker lets it send.
        await ha.press(configs["gateway-traffic_pause"])
        response = "simbank/gw1/bridge/response/traffic/pause"
        await until(lambda: any(t == response for t, _, _ in ha.log))
        answer = json.loads(next(p for t, p, _ in ha.log if t == response))
        assert answer["status"] == "ok", answer
        assert answer["data"]["paused"] is True
        await ha.press(configs["gateway-traffic_resume"])
        await ha.press(configs[f"sim-{SIM_B}-disable"])
        sim_b = f"simbank/gw1/sim/{SIM_B}"
        await until(lambda: ha.state(sim_b).get("state") == "disabled")
        await ha.press(configs[f"sim-{SIM_B}-enable"])
        await until(lambda: ha.state(sim_b).get("state") != "disabled")
        resumed = "simbank/gw1/bridge/response/traffic/resume"
        await until(lambda: any(t == resumed for t, _, _ in ha.log))
        assert json.loads(next(p for t, p, _ in ha.log if t == resumed))["status"] == "ok"

        # Home Assistant restarts: its birth message brings every config again.
        mark = len(ha.log)
        await ha.client.publish("homeassistant/status", b"online", qos=1)
        current = set(ha.configs())

        def resent() -> set[str]:
            return {t for t, p, retain in ha.log[mark:] if p and not retain and t in current}

        await until(lambda: resent() == current)

    # A restart with one modem fewer: m2's entities go, nothing else does.
    m2_topics = {t for t in ha.configs() if t.split("/")[3].startswith("modem-m2-")}
    assert m2_topics
    mark = len(ha.log)
    async with running(tmp_path, broker.mosquitto, "simbank", scenario(with_m2=False), **options):
        await until(lambda: not m2_topics & ha.retained.keys())
        await until(lambda: ha.state("simbank/gw1/modem/m1").get("state") == "ready")
        cleared = {t for t, p, _ in ha.log[mark:] if not p and "/simbank_" in t}
        assert cleared == m2_topics
        kept = ha.configs()
        assert {f"modem-m1-{k}" for k in ("state", "signal", "rotate", "reset")} <= _object_ids(
            kept
        )
        # The SIMs stay: the ledger still knows both (sim/<iccid> stays published too).
        assert {f"sim-{SIM_A}-state", f"sim-{SIM_B}-state"} <= _object_ids(kept)
        assert OTHER_GATEWAY in ha.retained
    stored = await snapshot(broker, "homeassistant", NODE)
    assert not m2_topics & stored.keys()
