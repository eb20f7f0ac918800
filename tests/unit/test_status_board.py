"""StatusBoard publishes only real changes, retained, and events as they happen."""

from __future__ import annotations

import json

from simbank.contract import RegistrationInfo, Topics
from simbank.daemon.board import StatusBoard


class Recorder:
    def __init__(self) -> None:
        self.retained: list[tuple[str, dict[str, object]]] = []
        self.messages: list[tuple[str, dict[str, object]]] = []

    def set_retained(self, topic: str, payload: bytes) -> None:
        self.retained.append((topic, json.loads(payload)))

    def publish(self, topic: str, payload: bytes) -> None:
        self.messages.append((topic, json.loads(payload)))


def test_modem_updates_publish_only_changes() -> None:
    rec = Recorder()
    topics = Topics("simbank", "gw1")
    board = StatusBoard(rec, topics)
    board.add_modem("m1", "/dev/x")
    board.update_modem("m1", state="ready")
    board.update_modem("m1", state="ready")
    board.update_modem("m1", registration=RegistrationInfo(stat=1, state="registered_home"))
    assert [t for t, _ in rec.retained] == [topics.modem("m1")] * 3
    assert [p["state"] for _, p in rec.retained] == ["absent", "ready", "ready"]
    assert rec.retained[-1][1]["registration"]["state"] == "registered_home"


def test_sim_created_then_updated() -> None:
    rec = Recorder()
    board = StatusBoard(rec, Topics("simbank", "gw1"))
    board.update_sim("8999001000000000012", modem="m1", slot=1, state="active")
    board.update_sim("8999001000000000012", modem="m1", slot=1, state="active")
    board.update_sim("8999001000000000012", state="locked")
    assert [p["state"] for _, p in rec.retained] == ["active", "locked"]
    assert rec.retained[-1][1]["modem"] == "m1"


def test_events_carry_type_and_time() -> None:
    rec = Recorder()
    board = StatusBoard(rec, Topics("simbank", "gw1"))
    board.event("modem_online", modem="m1")
    topic, payload = rec.messages[0]
    assert topic == "simbank/gw1/bridge/event"
    assert payload["type"] == "modem_online"
    assert payload["modem"] == "m1"
    assert str(payload["ts"]).endswith("Z")
