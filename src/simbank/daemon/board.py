"""The live picture of the gateway: modem and SIM state, published retained, plus events.

Every change goes through here, so what MQTT shows is what the daemon believes. Updates with
no change publish nothing (the timestamp alone is not news).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

import structlog

from simbank.contract import Capacity, Event, ModemState, SimState, Topics, utc_now
from simbank.mqtt import Publisher

log = structlog.get_logger(__name__)

_NOT_LOGGED = frozenset({"text", "evidence", "sender", "note"})


class BoardWatcher(Protocol):
    """Something that follows every change the board publishes (metrics, discovery)."""

    def observe_modem(self, state: ModemState) -> None: ...
    def observe_sim(self, state: SimState) -> None: ...
    def observe_event(self, event_type: str, fields: Mapping[str, object]) -> None: ...


class StatusBoard:
    """Holds the latest ModemState / SimState and publishes them.

    ``now`` stamps every state and event (``ts``): the daemon's one clock, so a bank run on a
    scaled clock (the demo, the tests) dates its events in the same time as its evidence."""

    def __init__(
        self, publisher: Publisher, topics: Topics, now: Callable[[], datetime] = utc_now
    ) -> None:
        self._pub = publisher
        self._topics = topics
        self._now = now
        self.watchers: list[BoardWatcher] = []
        self.modems: dict[str, ModemState] = {}
        self.sims: dict[str, SimState] = {}

    def add_modem(self, modem_id: str, port: str) -> ModemState:
        state = ModemState(id=modem_id, port=port, state="absent", ts=self._now())
        self.modems[modem_id] = state
        self._pub.set_retained(self._topics.modem(modem_id), state.to_json())
        for watcher in self.watchers:
            watcher.observe_modem(state)
        return state

    def update_modem(self, modem_id: str, **changes: Any) -> ModemState:
        old = self.modems[modem_id]
        new = old.model_copy(update=changes)
        if new.model_dump(exclude={"ts"}) == old.model_dump(exclude={"ts"}):
            return old
        new.ts = self._now()
        new = ModemState.model_validate(new.model_dump())
        self.modems[modem_id] = new
        self._pub.set_retained(self._topics.modem(modem_id), new.to_json())
        for watcher in self.watchers:
            watcher.observe_modem(new)
        return new

    def update_sim(self, iccid: str, **changes: Any) -> SimState:
        old = self.sims.get(iccid)
        if old is None:
            new = SimState.model_validate(
                {"iccid": iccid, "state": "available", "ts": self._now(), **changes}
            )
        else:
            new = old.model_copy(update=changes)
            if new.model_dump(exclude={"ts"}) == old.model_dump(exclude={"ts"}):
                return old
            new.ts = self._now()
            new = SimState.model_validate(new.model_dump())
        self.sims[iccid] = new
        self._pub.set_retained(self._topics.sim(iccid), new.to_json())
        for watcher in self.watchers:
            watcher.observe_sim(new)
        return new

    def publish_capacity(self, capacity: Capacity) -> None:
        """The gateway's retained ``capacity`` summary (:mod:`simbank.daemon.capacity`); not
        shown to the watchers (it is made from what they already saw)."""
        self._pub.set_retained(self._topics.capacity, capacity.to_json())

    def event(self, event_type: str, **fields: Any) -> Event:
        event = Event(type=event_type, ts=self._now(), **fields)
        self._pub.publish(self._topics.bridge_event, event.to_json())
        # Message text and evidence stay out of the logs (they live in the ledger).
        logged = {k: v for k, v in fields.items() if k not in _NOT_LOGGED}
        log.info("event_published", type=event_type, **logged)
        for watcher in self.watchers:
            watcher.observe_event(event_type, fields)
        return event
