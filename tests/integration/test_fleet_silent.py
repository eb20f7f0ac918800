"""A gateway that does not answer a fleet request is the answer: no other gateway is asked.

It may still act on it (a slow SIM switch, a request held in a bridge while its uplink was
down); asking the next one too would book the same call twice. A real mosquitto holds two
gateways' retained ``bridge/state`` and ``capacity`` with no daemon behind them."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime

import aiomqtt
import pytest

from simbank.config.models import MqttConfig
from simbank.contract import ActionCapacity, Capacity
from simbank.fleet import FleetClient
from simbank.mosquitto import PrivateMosquitto

pytestmark = pytest.mark.integration


def capacity(gateway: str, free: int) -> bytes:
    room = ActionCapacity(eligible=free, modems=free)
    return Capacity(
        gateway=gateway,
        modems_ready=free,
        modems_busy=0,
        call=room,
        sms=room,
        computed_at=datetime.now(UTC),
    ).to_json()


async def test_no_answer_is_final_and_no_other_gateway_is_asked(
    mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    base = base_topic
    cfg = MqttConfig(port=mosquitto.port, base_topic=base)
    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier=f"fake-{base}") as fake:
        for gateway, free in (("gwSilent", 4), ("gwOther", 2)):
            state = json.dumps({"state": "online"}).encode()
            await fake.publish(f"{base}/{gateway}/bridge/state", state, qos=1, retain=True)
            await fake.publish(
                f"{base}/{gateway}/capacity", capacity(gateway, free), qos=1, retain=True
            )
        await fake.subscribe(f"{base}/+/bridge/request/#", qos=1)
        async with FleetClient(cfg, base, f"fleet-{base}") as fleet:
            await fleet.settled()
            assert fleet.candidates("call") == ["gwSilent", "gwOther"]
            answer = await fleet.authorize("+15550100161", timeout=0.5)
        assert answer.gateway == "gwSilent"
        assert answer.response["code"] == "timeout" and answer.attempts == []
        assert "no other gateway" in answer.response["error"]
        asked: list[str] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):  # anything still on its way arrives in this time
                async for message in fake.messages:
                    asked.append(str(message.topic))
        assert asked == [f"{base}/gwSilent/bridge/request/call/authorize"]
