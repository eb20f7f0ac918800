"""The fleet client: follow every gateway's retained ``capacity`` and ``bridge/state`` on the
broker, and send a request to the gateway with room (:mod:`.choice` decides which).

One MQTT connection follows ``<base>/+/capacity`` and ``<base>/+/bridge/state``; each gateway
asked gets a :class:`~simbank.mqtt.RequestClient` of its own (kept open while the client is),
under its own client id (``<client_id>-<n>``). Nothing coordinates the gateways: the broker
(or a broker cluster bridging each gateway's) is the only shared part, and a gateway's own
checks and booking stay the authority — a summary a second old can only make a request try
one gateway more. It logs nothing (``simbankctl`` prints its stdout for a dialplan): each
answer lists the gateways it asked before (:attr:`FleetAnswer.attempts`).

    async with FleetClient(cfg, "simbank", "dialer-1") as fleet:
        await fleet.settled()
        answer = await fleet.authorize("+15550100123", max_duration_s=300)
        if answer.ok:
            dial(answer.data["device"], ...)  # and call/complete on answer.gateway
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

from simbank.config.models import MqttConfig
from simbank.contract import Topics
from simbank.fleet.choice import (
    STALE_AFTER_S,
    Attempt,
    FleetAction,
    GatewaySeen,
    attempt,
    moves_on,
    ranked,
    refusal,
)
from simbank.mqtt import RequestClient, client_options

#: Quiet seconds after which the retained messages are taken to have all arrived.
SETTLE_QUIET_S = 0.5


@dataclass(frozen=True, slots=True)
class FleetAnswer:
    """The answer of the gateway that served (``gateway``), or the fleet's refusal
    (``gateway`` None: no gateway took it; ``response`` says why, gateway by gateway)."""

    gateway: str | None
    response: dict[str, Any]
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.response.get("status") == "ok"

    @property
    def data(self) -> dict[str, Any]:
        data = self.response.get("data")
        return data if isinstance(data, dict) else {}


class FleetClient:
    """Sends requests to the gateway of the fleet that has room for them."""

    def __init__(
        self,
        cfg: MqttConfig,
        base: str,
        client_id: str,
        *,
        stale_after_s: float = STALE_AFTER_S,
        tiebreak: Callable[[], float] | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        options = client_options(cfg, client_id, f"{base}/clients/{client_id}")
        options.pop("will")
        self._options = options
        self._cfg = cfg
        self._base = base
        self._client_id = client_id
        self.stale_after_s = stale_after_s
        self._tiebreak = tiebreak or random.Random().random
        self._now = now
        #: gateway id → what the broker shows of it.
        self.gateways: dict[str, GatewaySeen] = {}
        self._heard = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._reader: asyncio.Task[None] | None = None
        self._requesters: dict[str, RequestClient] = {}
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> FleetClient:
        client = aiomqtt.Client(**self._options)  # type: ignore[arg-type]
        await client.__aenter__()
        self._client = client
        try:
            await client.subscribe(f"{self._base}/+/capacity", qos=1)
            await client.subscribe(f"{self._base}/+/bridge/state", qos=1)
        except BaseException:
            await self._close()
            raise
        self._reader = asyncio.create_task(self._read(client), name="fleet-reader")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._close()

    async def _close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._reader
        with contextlib.suppress(aiomqtt.MqttError):
            await self._stack.aclose()
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.__aexit__(None, None, None)
            self._client = None

    async def _read(self, client: aiomqtt.Client) -> None:
        head = f"{self._base}/"
        async for message in client.messages:
            topic = str(message.topic)
            if not topic.startswith(head):
                continue
            gateway, _, kind = topic[len(head) :].partition("/")
            payload = message.payload
            data: dict[str, Any] | None = None
            if isinstance(payload, bytes | bytearray) and payload:
                try:
                    decoded = json.loads(payload)
                except ValueError:
                    decoded = None
                data = decoded if isinstance(decoded, dict) else {}
            seen = self.gateways.setdefault(gateway, GatewaySeen(gateway))
            if kind == "capacity":
                seen.take_capacity(data)
            elif kind == "bridge/state":
                seen.take_state(data)
            self._heard.set()

    async def settled(self, quiet_s: float = SETTLE_QUIET_S, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Return once no retained message came for ``quiet_s`` (or after ``timeout``)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while True:
                    self._heard.clear()
                    try:
                        async with asyncio.timeout(quiet_s):
                            await self._heard.wait()
                    except TimeoutError:
                        return

    def candidates(self, action: FleetAction = "call") -> list[str]:
        """The gateways that would be asked for ``action`` now, best first."""
        return ranked(
            self.gateways.values(),
            action,
            self._now(),
            tiebreak=self._tiebreak,
            stale_after_s=self.stale_after_s,
        )

    async def authorize(
        self,
        number: str,
        *,
        max_duration_s: int | None = None,
        timeout: float = 30.0,  # noqa: ASYNC109 - a deadline per gateway asked is the API
    ) -> FleetAnswer:
        """``call/authorize`` on the gateway with room (``max_duration_s`` None: each
        gateway's own default). ``call/complete`` goes to ``answer.gateway``."""
        payload: dict[str, Any] = {"number": number}
        if max_duration_s is not None:
            payload["max_duration_s"] = max_duration_s
        return await self.request("call/authorize", payload, "call", timeout=timeout)

    async def request(
        self,
        command: str,
        payload: dict[str, Any],
        action: FleetAction,
        *,
        timeout: float = 30.0,  # noqa: ASYNC109 - a deadline per gateway asked is the API
    ) -> FleetAnswer:
        """Send ``command`` to the best gateway for ``action``; on a "no room here" refusal
        to the next; the first other answer is the answer. No answer within ``timeout`` is
        answered ``timeout`` with that gateway named, and no other gateway is asked: the
        first may still act on the request (see :mod:`simbank.fleet.choice`)."""
        attempts: list[Attempt] = []
        for gateway in self.candidates(action):
            try:
                requester = await self._requester(gateway)
                response = await requester.request(command, dict(payload), timeout=timeout)
            except TimeoutError:
                response = {
                    "status": "error",
                    "code": "timeout",
                    "error": f"{gateway} did not answer within {timeout:g} s; it may still "
                    "act on the request, so no other gateway was asked",
                }
            if not moves_on(response, command):
                return FleetAnswer(gateway, response, attempts)
            attempts.append(attempt(gateway, response))
        answer = refusal(
            self.gateways.values(),
            attempts,
            action,
            self._now(),
            stale_after_s=self.stale_after_s,
        )
        return FleetAnswer(None, answer, attempts)

    async def _requester(self, gateway: str) -> RequestClient:
        requester = self._requesters.get(gateway)
        if requester is None:
            client_id = f"{self._client_id}-{len(self._requesters) + 1}"
            requester = RequestClient(self._cfg, Topics(self._base, gateway), client_id)
            await self._stack.enter_async_context(requester)
            self._requesters[gateway] = requester
        return requester
