"""The demo's call-centre day: opening hours, the gateway's config, the campaign's numbers.

The quotas are small on purpose: one SIM cannot carry a modem's traffic for an hour, so SIMs
fill their quotas and the modems rotate. They sit under the simulated carrier's hidden limits
(config/scenarios/demo.toml, ``[carrier.test]``), which the summary checks as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from simbank.config.models import (
    ComplianceConfig,
    Config,
    DetectionConfig,
    GatewayConfig,
    ModemConfig,
    MqttConfig,
    PolicyConfig,
    RotationConfig,
)
from simbank.demo.summary import Limits
from simbank.simulator.carrier import CarrierLimits
from simbank.simulator.scenario import Scenario, Timing

#: Simulated seconds per real second by default: an hour in 30 s, the day in six minutes.
DEFAULT_SCALE = 120.0
OPENS_H = 8.0
CLOSES_H = 20.0
#: The modem whose first SIM the carrier blocks during the day, and when (hours into it).
CARRIER_BLOCKS = ("m1", 1.0)

POLICY = PolicyConfig(
    calls_per_hour=4,
    calls_per_day=24,
    call_seconds_per_day=3600,
    sms_per_day=6,
    min_call_gap_s=90,
    calls_per_destination_per_day=2,
    quiet_hours=["20:30-07:30"],
)

#: Campaign numbers (fictional ranges): the last two digits decide what the far end does in
#: the simulator (00-89 answer, 90-94 busy, 95-99 no answer).
US_NUMBERS = tuple(f"+1555010{n:04d}" for n in range(100))
UK_NUMBERS = tuple(f"+447700900{n:03d}" for n in range(100))
#: On the do-not-call list (and in the campaign list by mistake, as happens).
DO_NOT_CALL = ("+15550100013", "+447700900042")


@dataclass(frozen=True)
class Day:
    """One simulated day at ``scale``."""

    scale: float
    opens: float  # epoch seconds (UTC: the demo gateway's time zone)
    closes: float

    @classmethod
    def today(cls, scale: float, now: float | None = None) -> Day:
        when = datetime.now(UTC) if now is None else datetime.fromtimestamp(now, UTC)
        midnight = datetime(when.year, when.month, when.day, tzinfo=UTC).timestamp()
        return cls(scale, midnight + OPENS_H * 3600, midnight + CLOSES_H * 3600)


def demo_timing() -> Timing:
    """Call-centre timings (simulated seconds): two-minute conversations."""
    return Timing(
        boot_s=5.0,
        sim_init_s=2.0,
        ring_s=6.0,
        talk_s=120.0,
        no_answer_s=30.0,
        ussd_s=2.0,
        rssi_period_s=300.0,
    )


def day_scenario(base: Scenario, scale: float) -> Scenario:
    """The shipped demo bank (config/scenarios/demo.toml) at the day's time scale."""
    return base.model_copy(update={"time_scale": scale, "timing": demo_timing()})


#: The demo gateway's id, also its broker user name.
GATEWAY = "demo"


def demo_config(
    ports: dict[str, tuple[str, int]],
    mqtt_port: int,
    state_dir: Path,
    dnc_file: Path | None = None,
) -> Config:
    """The daemon's config for the simulated bank: one modem per simulated port.

    Timeouts stay in wall-clock seconds (a modem answers at its own pace whatever the scale);
    a switch gives a SIM 10 s to register so that one that never will does not hold its modem.
    A modem waits out its SIM's call gap (90 s) rather than switch before every call: SIMs
    rotate when their hourly quota fills.
    Three blocks in a day open the circuit breaker (the demo's operator reviews and resumes)."""
    return Config(
        gateway=GatewayConfig(id=GATEWAY, state_dir=state_dir, poll_interval_s=5.0),
        mqtt=MqttConfig(host="127.0.0.1", port=mqtt_port),
        modems=[
            ModemConfig(id=mid, port=path, slots=slots, driver="auto")
            for mid, (path, slots) in ports.items()
        ],
        policies={"default": POLICY},
        detection=DetectionConfig(circuit_blocks=3),
        rotation=RotationConfig(
            min_dwell_s=600,
            wait_for_active_s=120,
            sim_ready_timeout_s=10,
            registration_timeout_s=10,
        ),
        compliance=ComplianceConfig(do_not_call_file=dnc_file, max_call_duration_s=600),
    )


def policy_limits(policy: PolicyConfig = POLICY) -> Limits:
    """The policy's limits, for the summary's check."""
    return Limits(
        calls_per_hour=policy.calls_per_hour,
        calls_per_day=policy.calls_per_day,
        call_seconds_per_day=policy.call_seconds_per_day,
        sms_per_day=policy.sms_per_day,
        min_call_gap_s=policy.min_call_gap_s,
        gap_from_end=True,
        calls_per_destination_per_day=policy.calls_per_destination_per_day,
    )


def carrier_limits(limits: CarrierLimits) -> Limits:
    """The carrier's hidden limits, for the summary's check (rolling day, gap between
    attempts)."""
    return Limits(
        calls_per_hour=limits.calls_per_hour,
        calls_per_day=limits.calls_per_day,
        rolling_day=True,
        sms_per_day=limits.sms_per_day,
        min_call_gap_s=limits.min_call_gap_s,
        gap_from_end=False,
    )
