"""Every event the gateway publishes (``bridge/event``), kept with the simulated time it was
heard — the live view's feed and the summary's record (the state watcher keeps only the
last few)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

from simbank.clock import Clock
from simbank.config.models import MqttConfig
from simbank.contract import Topics
from simbank.mqtt.options import client_options


@dataclass(frozen=True)
class Heard:
    """One event and when it was heard (simulated epoch seconds)."""

    at: float
    event: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.event.get("type"))


@dataclass
class EventLog:
    """Events in the order heard; ``changed`` is set at each."""

    heard: list[Heard] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, at: float, event: dict[str, Any]) -> None:
        self.heard.append(Heard(at, event))
        self.changed.set()

    def of(self, *types: str) -> list[Heard]:
        return [h for h in self.heard if h.type in types]


async def follow_events(cfg: MqttConfig, topics: Topics, clock: Clock, log: EventLog) -> None:
    """Subscribe to the gateway's events and add each to ``log`` (until cancelled)."""
    options = client_options(cfg, "simbank-demo-events", f"{topics.root}/clients/demo-events")
    options.pop("will")
    async with aiomqtt.Client(**options) as client:  # type: ignore[arg-type]
        await client.subscribe(topics.bridge_event, qos=1)
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                continue
            try:
                data = json.loads(payload)
            except ValueError:
                continue
            if isinstance(data, dict):
                log.add(clock.now(), data)
