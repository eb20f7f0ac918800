"""Discovery templates rendered by Jinja in Home Assistant's sandbox, against the real
retained payloads of the contract: every field a template names exists, and availability
offers each button only when the daemon would accept it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from ha_samples import ICCID, modem_state

from simbank.contract import BlockInfo, EvidenceEntry, SimState, Usage
from simbank.integrations.homeassistant import ModemDevice, SimDevice, discovery_messages

jinja2 = pytest.importorskip("jinja2")
sandbox = pytest.importorskip("jinja2.sandbox")

SIM_TOPIC = f"simbank/gw1/sim/{ICCID}"
ONLINE = {"simbank/gw1/bridge/state": b'{"state":"online"}'}


def _all(month: bool = False) -> dict[str, dict[str, Any]]:
    """object_id → decoded config."""
    messages = discovery_messages(
        "simbank", "gw1", [ModemDevice("m1", "EC25", "Quectel")], [SimDevice(ICCID, month=month)]
    )
    return {t.split("/")[3]: json.loads(p) for t, p in messages}


def _sim(**changes: Any) -> SimState:
    data: dict[str, Any] = {"iccid": ICCID, "modem": "m1", "slot": 1, "state": "active"}
    data.update(changes)
    return SimState.model_validate(data)


def _render(template: str, payload: bytes) -> str:
    env = sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
    return str(env.from_string(template).render(value_json=json.loads(payload)))


def _available(config: dict[str, Any], payloads: dict[str, bytes]) -> bool:
    return all(
        _render(entry["value_template"], payloads[entry["topic"]]) == entry["payload_available"]
        for entry in config["availability"]
    )


def test_modem_templates_render_the_retained_payload() -> None:
    configs = _all()
    payload = modem_state().to_json()
    rendered = {
        key: _render(configs[f"modem-m1-{key}"]["value_template"], payload)
        for key in ("state", "registration", "operator", "signal", "iccid", "slot")
    }
    assert rendered == {
        "state": "ready",
        "registration": "registered_home",
        "operator": "Test PLMN",
        "signal": "-73",
        "iccid": ICCID,
        "slot": "1",
    }
    assert rendered["state"] in configs["modem-m1-state"]["options"]
    online = ONLINE | {"simbank/gw1/modem/m1": payload}
    assert _available(configs["modem-m1-rotate"], online)
    switching = online | {"simbank/gw1/modem/m1": modem_state(state="switching").to_json()}
    assert not _available(configs["modem-m1-rotate"], switching)
    assert _available(configs["modem-m1-reset"], switching)
    offline = switching | {"simbank/gw1/bridge/state": b'{"state":"offline"}'}
    assert not _available(configs["modem-m1-reset"], offline)


def test_sim_templates_render_the_retained_payload() -> None:
    configs = _all(month=True)
    sim = f"sim-{ICCID}"
    usage = Usage(calls_hour=2, calls_day=7, call_seconds_day=431, sms_day=1, calls_month=40)
    payload = _sim(usage=usage, sms_unread=3).to_json()
    values = {
        key: _render(configs[f"{sim}-{key}"]["value_template"], payload)
        for key in ("state", "calls_hour", "calls_day", "call_seconds_day", "sms_day")
    }
    assert values == {
        "state": "active",
        "calls_hour": "2",
        "calls_day": "7",
        "call_seconds_day": "431",
        "sms_day": "1",
    }
    assert _render(configs[f"{sim}-calls_month"]["value_template"], payload) == "40"
    assert _render(configs[f"{sim}-sms_unread"]["value_template"], payload) == "3"
    assert _render(configs[f"{sim}-quarantined"]["value_template"], payload) == "OFF"
    assert _render(configs[f"{sim}-block_reason"]["value_template"], payload) == "none"
    attributes = json.loads(_render(configs[f"{sim}-state"]["json_attributes_template"], payload))
    assert attributes == {"reason": None, "modem": "m1", "slot": 1, "policy": None}
    block_attributes = configs[f"{sim}-block_reason"]["json_attributes_template"]
    assert json.loads(_render(block_attributes, payload)) == {}


def test_a_blocked_sim_shows_its_block_and_only_release_is_offered() -> None:
    configs = _all()
    sim = f"sim-{ICCID}"
    since = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    evidence = [
        EvidenceEntry(at=since, kind="registration", detail={"stat": 3}),
        EvidenceEntry(at=since, kind="reject_cause", detail={"cause": 7, "source": "ceer"}),
    ]
    block = BlockInfo(reason="registration_denied", since=since, evidence=evidence)
    payload = _sim(state="blocked", block=block).to_json()
    assert _render(configs[f"{sim}-state"]["value_template"], payload) == "blocked"
    assert _render(configs[f"{sim}-quarantined"]["value_template"], payload) == "ON"
    reason = configs[f"{sim}-block_reason"]
    assert _render(reason["value_template"], payload) == "registration_denied"
    attributes = json.loads(_render(reason["json_attributes_template"], payload))
    assert attributes["evidence"] == 2
    assert attributes["since"].startswith("2026-03-02T09:30:00")
    assert _offered(configs, payload) == {"release"}
    assert _offered(configs, _sim(state="suspected").to_json()) == {"release", "disable"}
    assert _offered(configs, _sim(state="disabled").to_json()) == {"enable"}
    resting = _sim(state="resting", reason="calls_per_day").to_json()
    assert _offered(configs, resting) == {"disable"}
    attributes = json.loads(_render(configs[f"{sim}-state"]["json_attributes_template"], resting))
    assert attributes["reason"] == "calls_per_day"


def _offered(configs: dict[str, dict[str, Any]], sim_payload: bytes) -> set[str]:
    """The SIM buttons Home Assistant shows as available for this ``sim/<iccid>`` payload."""
    payloads = ONLINE | {SIM_TOPIC: sim_payload}
    return {
        key
        for key in ("release", "disable", "enable")
        if _available(configs[f"sim-{ICCID}-{key}"], payloads)
    }


def test_every_template_renders_against_the_topic_it_reads() -> None:
    """No template names a field the payload lacks (StrictUndefined) or renders nothing."""
    month = Usage(calls_month=1, call_seconds_month=2, sms_month=3)
    payloads = ONLINE | {
        "simbank/gw1/modem/m1": modem_state().to_json(),
        SIM_TOPIC: _sim(usage=month).to_json(),
    }
    rendered = 0
    for object_id, config in _all(month=True).items():
        templates = [(e["topic"], e["value_template"]) for e in config.get("availability", [])]
        if "value_template" in config:
            templates.append((config["state_topic"], config["value_template"]))
        if "json_attributes_template" in config:
            templates.append((config["json_attributes_topic"], config["json_attributes_template"]))
        for topic, template in templates:
            assert _render(template, payloads[topic]) not in {"", "None"}, (object_id, template)
            rendered += 1
    assert rendered > 40


@pytest.mark.parametrize(
    ("state", "available"), [("online", True), ("degraded", True), ("offline", False)]
)
def test_a_degraded_gateway_keeps_its_entities_available(state: str, available: bool) -> None:
    """A gateway whose ledger cannot book still reports: its entities stay available."""
    config = _all()[f"sim-{ICCID}-state"]
    payloads = {
        "simbank/gw1/bridge/state": json.dumps({"state": state}).encode(),
        SIM_TOPIC: _sim().to_json(),
    }
    assert _available(config, payloads) is available
