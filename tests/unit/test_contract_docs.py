"""docs/mqtt-api.md names every topic, field and event type of the contract module."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from simbank.contract import (
    COMMANDS,
    ERROR_CODES,
    EVENT_TYPES,
    ActionCapacity,
    BridgeInfo,
    BridgeState,
    Capacity,
    ModemState,
    SimState,
    Topics,
)

DOC = (Path(__file__).resolve().parents[2] / "docs" / "mqtt-api.md").read_text()


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_type_documented(event_type: str) -> None:
    assert f"| `{event_type}` |" in DOC


@pytest.mark.parametrize(
    "model", [BridgeState, BridgeInfo, ModemState, SimState, Capacity, ActionCapacity]
)
def test_every_payload_field_documented(model: type[BaseModel]) -> None:
    missing = [name for name in model.model_fields if f"| `{name}` |" not in DOC]
    assert not missing


def test_every_topic_documented() -> None:
    topics = Topics("<base>", "<gw>")
    for topic in (
        topics.bridge_state,
        topics.bridge_info,
        topics.bridge_event,
        topics.modem("<modem_id>"),
        topics.sim("<iccid>"),
        topics.capacity,
    ):
        assert f"`{topic}`" in DOC


@pytest.mark.parametrize("code", ERROR_CODES)
def test_every_error_code_documented(code: str) -> None:
    assert f"| `{code}` |" in DOC


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_documented(command: str) -> None:
    assert f"| `{command}` |" in DOC
