"""Home Assistant ids never collide: unique ids and device identifiers across gateways, object
ids (topic levels) within one gateway's node, whatever ``_`` and ``-`` the ids hold.

Regression: ids were joined with ``_``, so gateway ``site`` with modem ``a_m1`` and gateway
``site_a`` with modem ``m1`` had the same unique ids (Home Assistant rejects the second entity)
and the same device identifier (it merges the two devices)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from simbank.config.models import ID_PATTERN
from simbank.integrations.homeassistant import ModemDevice, SimDevice, discovery_messages

ICCID = "89990100000000018019"
TOPIC_LEVEL = re.compile(r"[a-zA-Z0-9_-]+")


def _configs(gateway: str, modems: Sequence[str], sims: Sequence[str] = ()) -> list[dict[str, Any]]:
    messages = discovery_messages(
        "simbank", gateway, [ModemDevice(m) for m in modems], [SimDevice(i) for i in sims]
    )
    configs = []
    for topic, payload in messages:
        config = json.loads(payload)
        config["_topic"] = topic
        configs.append(config)
    return configs


def _unique_ids(configs: list[dict[str, Any]]) -> list[str]:
    return [c["unique_id"] for c in configs]


def _devices(configs: list[dict[str, Any]]) -> set[str]:
    return {i for c in configs for i in c["device"]["identifiers"]}


def _object_ids(configs: list[dict[str, Any]]) -> list[str]:
    return [c["_topic"].split("/")[3] for c in configs]


def test_gateway_site_modem_a_m1_and_gateway_site_a_modem_m1_stay_apart() -> None:
    site = _configs("site", ["a_m1"], [ICCID])
    site_a = _configs("site_a", ["m1"], [ICCID])
    assert not set(_unique_ids(site)) & set(_unique_ids(site_a))
    assert not _devices(site) & _devices(site_a)
    # The state entity of each modem, side by side.
    assert "simbank:site:modem:a_m1:state" in _unique_ids(site)
    assert "simbank:site_a:modem:m1:state" in _unique_ids(site_a)
    # Each modem hangs off its own gateway.
    vias = {c["device"].get("via_device") for c in site if "via_device" in c["device"]}
    assert vias == {"simbank:site"}


def test_object_ids_cannot_collide_within_one_node() -> None:
    """Modem ``a`` with key ``b_c`` against modem ``a_b`` with ``c``; a modem named like a SIM's
    or the gateway's object ids."""
    modems = ["a", "a_b", "a-b", "a_b-c", "sim", "gateway", f"sim-{ICCID}", "bridge", "sim_1"]
    configs = _configs("gw1", modems, [ICCID])
    object_ids = _object_ids(configs)
    assert len(set(object_ids)) == len(object_ids)
    assert all(TOPIC_LEVEL.fullmatch(o) for o in object_ids)
    assert len(set(_unique_ids(configs))) == len(configs)
    assert len(_devices(configs)) == 1 + len(modems) + 1
    # The object id of a modem's entity names the modem; one of a SIM's, the SIM.
    assert "modem-sim-state" in object_ids
    assert f"sim-{ICCID}-state" in object_ids
    assert f"modem-sim-{ICCID}-state" in object_ids


# The config's ID_PATTERN with the length it allows (its ``$`` would let Python's re accept a
# trailing newline, which the config's pydantic pattern refuses).
_ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=64).filter(
    lambda s: re.fullmatch(ID_PATTERN, s) is not None
)
_iccids = st.from_regex(r"8999[0-9]{14,16}", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(
    gateways=st.lists(_ids, min_size=1, max_size=3, unique=True),
    modems=st.lists(_ids, min_size=1, max_size=4, unique=True),
    sims=st.lists(_iccids, max_size=2, unique=True),
)
def test_no_two_entities_or_devices_share_an_id(
    gateways: list[str], modems: list[str], sims: list[str]
) -> None:
    """Any valid gateway and modem ids (every gateway with the same modems and SIMs, the
    worst case): every unique id, device identifier and topic is used once, and a unique id
    splits back into the gateway, device and key it was made of."""
    unique_ids: list[str] = []
    topics: list[str] = []
    devices: list[str] = []
    for gateway in gateways:
        configs = _configs(gateway, modems, sims)
        unique_ids += _unique_ids(configs)
        topics += [c["_topic"] for c in configs]
        devices += sorted(_devices(configs))
        for config in configs:
            assert TOPIC_LEVEL.fullmatch(config["_topic"].split("/")[2])
            assert config["_topic"].split("/")[2] == f"simbank_{gateway}"  # the ACL's node
            parts = config["unique_id"].split(":")
            assert parts[:2] == ["simbank", gateway]
            assert config["unique_id"].startswith(f"{config['device']['identifiers'][0]}:")
            object_id = config["_topic"].split("/")[3]
            assert TOPIC_LEVEL.fullmatch(object_id)
            assert object_id.rsplit("-", 1)[-1] == parts[-1]  # the key
    assert len(set(unique_ids)) == len(unique_ids)
    assert len(set(topics)) == len(topics)
    assert len(set(devices)) == len(devices) == len(gateways) * (1 + len(modems) + len(sims))
