"""DiscoveryPublisher: what it hands the bridge as modems and SIMs come and go, what it clears
when its own node shows configs it no longer has, and the re-send on Home Assistant's birth.

The bridge is replaced by a recorder of what it was handed (pure logic: the MQTT side is in
tests/integration/test_homeassistant_mqtt.py, against mosquitto and the shipped ACL)."""

from __future__ import annotations

from dataclasses import dataclass, field

from simbank.contract import ModemState, SimState, Usage
from simbank.integrations.homeassistant import (
    DiscoveryPublisher,
    ModemDevice,
    SimDevice,
    discovery_messages,
)
from simbank.mqtt import Inbound
from simbank.mqtt.lanes import LaneName

ICCID = "89990100000000017011"
GONE_SIM = "89990100000000017029"
NODE = "homeassistant/sensor/simbank_gw1"


@dataclass
class Recorder:
    """The bridge's publishing surface: retained values in order, and plain publications."""

    retained: list[tuple[str, bytes]] = field(default_factory=list)
    published: list[tuple[str, bytes, LaneName]] = field(default_factory=list)

    def set_retained(self, topic: str, payload: bytes) -> None:
        self.retained.append((topic, payload))

    def publish(
        self,
        topic: str,
        payload: bytes,
        correlation_data: bytes | None = None,
        *,
        lane: LaneName = "events",
    ) -> None:
        del correlation_data
        self.published.append((topic, payload, lane))

    def cleared(self) -> set[str]:
        return {t for t, p in self.retained if not p}

    def latest(self) -> dict[str, bytes]:
        return dict(self.retained)


def _publisher(settled: list[bool] | None = None) -> tuple[DiscoveryPublisher, Recorder]:
    out = Recorder()
    flag = settled if settled is not None else [True]
    publisher = DiscoveryPublisher(
        out, "simbank", "gw1", "homeassistant", modems=["m1", "m2"], settled=lambda: flag[0]
    )
    return publisher, out


def _modem(modem_id: str = "m1", **changes: object) -> ModemState:
    data: dict[str, object] = {"id": modem_id, "port": "/dev/ttyUSB0", "state": "ready"}
    data.update(changes)
    return ModemState.model_validate(data)


def _sim(iccid: str = ICCID, **changes: object) -> SimState:
    return SimState.model_validate({"iccid": iccid, "state": "active", **changes})


def test_configured_modems_are_published_at_once() -> None:
    publisher, out = _publisher()
    modems = [ModemDevice("m1"), ModemDevice("m2")]
    expected = dict(discovery_messages("simbank", "gw1", modems, prefix="homeassistant"))
    assert out.latest() == expected
    assert publisher.current == expected


def test_readings_publish_nothing_and_a_probed_model_updates_the_device() -> None:
    publisher, out = _publisher()
    before = len(out.retained)
    publisher.observe_modem(_modem(signal={"rssi_dbm": -80}))
    publisher.observe_modem(_modem(state="switching", iccid=ICCID, active_slot=2))
    assert len(out.retained) == before  # nothing a device depends on changed
    publisher.observe_modem(_modem(model="EC21", manufacturer="Quectel"))
    changed = out.retained[before:]
    assert changed
    assert all(t.split("/")[3].startswith("modem-m1-") for t, _ in changed)
    # Offline, the model is not reported: the device keeps the one it had.
    mark = len(out.retained)
    publisher.observe_modem(_modem(state="offline", model=None, manufacturer=None))
    assert len(out.retained) == mark


def test_a_sim_gets_its_entities_and_loses_the_month_when_its_policy_stops_counting_one() -> None:
    publisher, out = _publisher()
    monthly = _sim(usage=Usage(calls_month=1, call_seconds_month=60, sms_month=0))
    publisher.observe_sim(monthly)
    month_topics = {t for t in publisher.current if ICCID in t and "month" in t}
    assert len(month_topics) == 3
    publisher.observe_sim(_sim(usage=Usage(calls_day=4)))  # usage alone: nothing new
    publisher.observe_sim(_sim())
    assert out.cleared() == month_topics
    assert not month_topics & publisher.current.keys()
    assert f"{NODE}/sim-{ICCID}-calls_day/config" in publisher.current


def test_stale_modem_configs_are_cleared_at_once_and_current_ones_left_alone() -> None:
    publisher, out = _publisher()
    stale = f"{NODE}/modem-m3-signal/config"  # a run with a modem m3 published it
    current = f"{NODE}/modem-m1-signal/config"
    assert publisher.wants(Inbound(stale, b"{}"))
    publisher.receive(Inbound(stale, b'{"name":"Signal"}'))
    publisher.receive(Inbound(current, publisher.current[current]))  # our own copy
    publisher.receive(Inbound(f"{NODE}/modem-m4-signal/config", b""))  # a removal: nothing to do
    assert out.cleared() == {stale}
    assert out.latest()[stale] == b""
    assert publisher.cleared == 1


def test_other_gateways_and_other_prefixes_are_not_ours() -> None:
    publisher, out = _publisher()
    for topic in (
        "homeassistant/sensor/simbank_gw2/m3_signal/config",
        "homeassistant/sensor/simbank_gw10/m3_signal/config",
        "other/sensor/simbank_gw1/m3_signal/config",
        "homeassistant/light/simbank_gw1/m3/config",
    ):
        message = Inbound(topic, b"{}")
        assert not publisher.wants(message)
        publisher.receive(message)
    assert not out.cleared()


def test_a_stale_sim_config_waits_until_the_bank_has_settled() -> None:
    settled = [False]
    publisher, out = _publisher(settled)
    gone = f"{NODE}/sim-{GONE_SIM}-state/config"
    back = f"{NODE}/sim-{ICCID}-state/config"
    publisher.receive(Inbound(gone, b"{}"))
    publisher.receive(Inbound(back, b"{}"))
    assert publisher.pending == {gone, back}
    publisher.observe_modem(_modem(model="EC21"))
    assert not out.cleared()  # the modems have not read every slot yet
    publisher.observe_sim(_sim())  # ICCID is read back: its configs are current again
    assert publisher.pending == {gone}
    settled[0] = True
    publisher.observe_modem(_modem("m2", state="ready"))
    assert out.cleared() == {gone}
    assert not publisher.pending
    assert out.latest()[back] != b""


def test_a_stale_sim_config_arriving_after_the_bank_settled_is_cleared_at_once() -> None:
    publisher, out = _publisher([True])
    gone = f"{NODE}/sim-{GONE_SIM}-calls_day/config"
    publisher.receive(Inbound(gone, b"{}"))
    assert out.cleared() == {gone}


def test_a_removed_then_returning_entity_is_published_again() -> None:
    publisher, out = _publisher([True])
    topic = f"{NODE}/sim-{ICCID}-state/config"
    publisher.receive(Inbound(topic, b"{}"))
    assert out.latest()[topic] == b""
    publisher.observe_sim(_sim())
    assert out.latest()[topic] == publisher.current[topic] != b""
    assert SimDevice.of(_sim()) == SimDevice(ICCID)


def test_birth_resends_every_current_config_in_the_events_lane() -> None:
    publisher, out = _publisher()
    publisher.observe_sim(_sim())
    publisher.receive(Inbound("homeassistant/status", b"offline"))
    assert not out.published
    assert publisher.wants(Inbound("homeassistant/status", b"online"))
    publisher.receive(Inbound("homeassistant/status", b"online"))
    assert {t: p for t, p, _ in out.published} == publisher.current
    assert {lane for _, _, lane in out.published} == {"events"}


def test_old_form_configs_are_cleared_at_once_even_before_the_bank_settles() -> None:
    """Upgrading: the ``_``-joined object ids of before are never current again (their
    unique ids could collide across gateways), SIM ones included."""
    publisher, out = _publisher([False])
    old = {
        "homeassistant/binary_sensor/simbank_gw1/bridge/config",
        "homeassistant/button/simbank_gw1/traffic_pause/config",
        f"{NODE}/m1_state/config",
        f"{NODE}/sim_{ICCID}_state/config",
    }
    for topic in sorted(old):
        assert publisher.wants(Inbound(topic, b"{}"))
        publisher.receive(Inbound(topic, b'{"unique_id":"simbank_gw1_x"}'))
    assert out.cleared() == old
    assert not publisher.pending
    assert not old & publisher.current.keys()
    assert f"{NODE}/modem-m1-state/config" in publisher.current
