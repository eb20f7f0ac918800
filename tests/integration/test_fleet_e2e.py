"""A fleet authorize over two gateways lands on the one with capacity: two real daemons (gwA,
gwB) on simulated single-slot modems over PTYs, one real mosquitto; their retained
``capacity`` topics, the fleet client module and ``simbankctl authorize --fleet`` as a
subprocess. gwA's SIM has used its hour (one call of ``calls_per_hour = 1``); gwB has room
for three calls, then none: the fleet then lands nowhere, and says why per gateway."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from bankrig import make_config, simbankctl

from simbank.clock import ScaledClock
from simbank.config.models import MqttConfig, PolicyConfig
from simbank.contract import Topics
from simbank.daemon.app import Daemon
from simbank.fleet import FleetClient
from simbank.mosquitto import PrivateMosquitto
from simbank.mqtt import RequestClient, StateWatcher
from simbank.simulator import Scenario, SimulatedBank
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid

pytestmark = pytest.mark.integration

FAST = Timing(boot_s=0.3, sim_init_s=0.2, ring_s=0.1, talk_s=30.0, rssi_period_s=5)


def policy(calls_per_hour: int) -> PolicyConfig:
    return PolicyConfig(
        quiet_hours=[],
        min_call_gap_s=0,
        calls_per_hour=calls_per_hour,
        calls_per_destination_per_day=10,
    )


@contextlib.asynccontextmanager
async def gateway(
    tmp_path: Path, broker: PrivateMosquitto, base: str, gw: str, serial: int, calls: int
) -> AsyncIterator[MqttConfig]:
    """One gateway ``gw``: a single-slot simulated modem m1 (PBX device ``q-<gw>``)."""
    sims = [SimSpec(iccid=make_iccid(serial), registration_delay_s=0.1)]
    scenario = Scenario(
        timing=FAST, modems=[ModemSpec(id="m1", dialect="quectel-ec21", slots=sims)]
    )
    async with SimulatedBank(scenario, directory=tmp_path / "ports") as sim:
        cfg = make_config(tmp_path, broker, base, sim, policy=policy(calls))
        cfg = cfg.model_copy(
            update={
                "gateway": cfg.gateway.model_copy(update={"id": gw}),
                "modems": [m.model_copy(update={"device": f"q-{gw}"}) for m in cfg.modems],
            }
        )
        daemon = Daemon(cfg, clock=ScaledClock(1.0))
        daemon.capacity.coalesce_s = 0.2  # a change shows within 0.2 s, not 1 s
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop), name=f"test-daemon-{gw}")
        try:
            await asyncio.wait_for(daemon.bridge.wait_connected(), 20)
            yield cfg.mqtt
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


async def until(predicate: Callable[[], Any], what: str, timeout: float = 20.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"not seen in {timeout} s: {what}")


async def settle(client: RequestClient, booking: str) -> None:
    done = await client.request(
        "call/complete", {"booking": booking, "duration_s": 5, "outcome": "completed"}
    )
    assert done["status"] == "ok", done


async def test_a_fleet_authorize_lands_on_the_gateway_with_capacity(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    base = base_topic
    ctl = ["--port", str(mosquitto.port), "--base", base]
    async with contextlib.AsyncExitStack() as stack:
        mqtt = await stack.enter_async_context(
            gateway(tmp_path / "a", mosquitto, base, "gwA", 871, calls=1)
        )
        await stack.enter_async_context(gateway(tmp_path / "b", mosquitto, base, "gwB", 872, 3))
        watcher = StateWatcher(mqtt, base, f"watch-{base}")
        watch = asyncio.create_task(watcher.run(), name="test-watcher")
        stack.callback(watch.cancel)
        on_a = await stack.enter_async_context(
            RequestClient(mqtt, Topics(base, "gwA"), f"a-{base}")
        )
        on_b = await stack.enter_async_context(
            RequestClient(mqtt, Topics(base, "gwB"), f"b-{base}")
        )

        def room(gw: str, action: str = "call") -> dict[str, Any]:
            capacity: Any = watcher.state.get(Topics(base, gw).capacity, {})
            return capacity.get(action) or {}

        await until(lambda: room("gwA").get("eligible") == room("gwB").get("eligible") == 1, "1+1")

        # gwA uses its hour: one call (of calls_per_hour = 1), asked of gwA itself.
        own = await on_a.request("call/authorize", {"number": "+15550100171", "max_duration_s": 60})
        assert own["status"] == "ok", own
        await settle(on_a, own["data"]["booking"])
        await until(lambda: room("gwA").get("eligible") == 0, "gwA without capacity")
        # Both retained summaries show it: gwA none until its hour frees, gwB one SIM.
        assert room("gwA")["next_free_at"] and room("gwA")["modems"] == 0
        assert room("gwB") == {"eligible": 1, "modems": 1, "next_free_at": None}
        assert room("gwA", "sms")["eligible"] == 1  # texts are another quota

        async with FleetClient(mqtt, base, f"fleet-{base}") as fleet:
            await fleet.settled(quiet_s=0.2)
            assert fleet.candidates("call") == ["gwB"]
            first = await fleet.authorize("+15550100172", max_duration_s=60)
            assert first.gateway == "gwB" and first.ok, first.response
            assert first.data["device"] == "q-gwB" and first.attempts == []
            await settle(on_b, first.data["booking"])
            # In its call gwB's one SIM had no room; settled, it has again (within a second).
            await until(lambda: fleet.candidates("call") == ["gwB"], "gwB free again")
            # A summary that says more than the gateway has (a stale one): gwA refuses for
            # want of room, and the request goes on to gwB.
            seen_a = fleet.gateways["gwA"]
            assert seen_a.capacity is not None
            rich = seen_a.capacity.call.model_copy(update={"eligible": 5, "modems": 5})
            seen_a.capacity = seen_a.capacity.model_copy(update={"call": rich})
            second = await fleet.authorize("+15550100173", max_duration_s=60)
            assert second.gateway == "gwB" and second.ok, second.response
            assert [(a.gateway, a.code) for a in second.attempts] == [("gwA", "quota_exhausted")]
            await settle(on_b, second.data["booking"])
            await until(lambda: room("gwB").get("eligible") == 1, "gwB free again")

        # simbankctl, as a dialplan runs it: gwB books its third call (and holds m1 for it).
        code, out, err = await simbankctl(
            *ctl, "authorize", "--fleet", "+15550100174", "--max-duration", "60"
        )
        assert code == 0, out + err
        fields = dict(pair.split("=", 1) for pair in out.split())
        assert (fields["gateway"], fields["device"], fields["modem"]) == ("gwB", "q-gwB", "m1")
        assert "5550100174" not in out + err
        await until(lambda: room("gwB").get("eligible") == 0, "gwB full")

        # Now no gateway has room: a clear refusal, gateway by gateway, and when one frees.
        code, out, err = await simbankctl(*ctl, "authorize", "--fleet", "+15550100175")
        assert code == 1, out + err
        assert err.startswith("simbankctl: no_eligible_sim: no gateway has room for a call"), err
        assert "gwA: no eligible SIM, next free at" in err and "gwB: no eligible SIM" in err
        async with FleetClient(mqtt, base, f"fleet2-{base}") as fleet:
            await fleet.settled(quiet_s=0.2)
            none = await fleet.authorize("+15550100176", max_duration_s=60)
        assert none.gateway is None and not none.ok
        assert none.response["code"] == "no_eligible_sim" and none.response["detail"]["frees_at"]
        assert set(none.response["detail"]["gateways"]) == {"gwA", "gwB"}

        code, out, err = await simbankctl(*ctl, "capacity", "--json")
        assert code == 0, err
        shown = json.loads(out)
        assert shown["gwB"]["online"] is True
        assert shown["gwB"]["capacity"]["modems_busy"] == 1  # the open authorization
        assert shown["gwA"]["capacity"]["call"]["eligible"] == 0
