"""The gateway's retained ``capacity`` summary: what it can do now, for fleet clients.

The numbers are :func:`simbank.bank.capacity.gateway_capacity`'s, made from the planner's
views of the ready modems (:meth:`.runtime.BankRuntime.modem_view`). They are computed again

- when the board publishes a change (this publisher is one of its watchers: every SIM and
  modem state, usage included, and every event), or a modem's lock, whether it has a call
  (busy for calls, not for SMS), or the traffic switch changes (looked at once a second: no
  ledger read);
- when the first ``next_free_at`` passes (a rest or a quota window ends by the clock alone);
- at least every :data:`REFRESH_S` of the gateway's clock, so ``computed_at`` shows the
  summary is alive (a fleet client treats an old one as stale).

At most one computation per :data:`COALESCE_S` (wall-clock pacing, like the status line): a
burst of changes is published once. An unchanged summary is published again only when the
refresh is due.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime

import structlog

from simbank.bank.capacity import ActionCapacity, GatewayCapacity, gateway_capacity
from simbank.contract import ActionCapacity as ActionPayload
from simbank.contract import Capacity, ModemState, SimState
from simbank.daemon.runtime import BankRuntime

log = structlog.get_logger(__name__)

#: Wall-clock seconds between two computations at most once (a burst is published once).
COALESCE_S = 1.0
#: Wall-clock seconds between two looks at the modems' locks and the traffic switch.
POLL_S = 1.0
#: Gateway-clock seconds after which an unchanged summary is published again.
REFRESH_S = 60.0

Signature = tuple[tuple[tuple[str, bool, bool, bool], ...], bool]


class CapacityPublisher:
    """Publishes ``<base>/<gw>/capacity`` (retained) while the daemon runs."""

    def __init__(self, runtime: BankRuntime) -> None:
        self.runtime = runtime
        self._dirty = asyncio.Event()
        self.published: Capacity | None = None
        #: Wall-clock seconds between two computations at most (tests shorten it).
        self.coalesce_s = COALESCE_S
        #: Each modem's last (state, ICCID, slot, registration) seen.
        self._modems: dict[str, tuple[object, ...]] = {}
        runtime.board.watchers.append(self)

    # -- BoardWatcher: what may change the capacity ------------------------------------------
    def observe_modem(self, state: ModemState) -> None:
        """A modem's state, SIM or registration changed (not its signal, which the board
        publishes every poll: on a big gateway that would recompute every second)."""
        seen = (state.state, state.iccid, state.active_slot, state.registration.state)
        if self._modems.get(state.id) != seen:
            self._modems[state.id] = seen
            self._dirty.set()

    def observe_sim(self, state: SimState) -> None:
        self._dirty.set()  # its state or its usage: both may change what it can do

    def observe_event(self, event_type: str, fields: Mapping[str, object]) -> None:
        """Events add nothing: what they announce reaches the SIM and modem states (or the
        traffic switch, looked at once a second)."""

    # -- computing ------------------------------------------------------------------------------
    def _signature(self) -> Signature:
        """What changes without the board hearing of it: each modem ready / busy / in a call,
        the switch."""
        sups = self.runtime.supervisors
        modems = tuple((m, s.ready, s.lock.locked(), s.in_call) for m, s in sorted(sups.items()))
        return modems, self._stopped()

    def _stopped(self) -> bool:
        """Nothing can start: the circuit breaker, an operator's pause, or a ledger that cannot
        book (the gateway is ``degraded``)."""
        return self.runtime.traffic_stopped or self.runtime.storage_refusal() is not None

    def compute(self, now: float) -> GatewayCapacity:
        gw = self.runtime
        ready = [m for m, s in sorted(gw.supervisors.items()) if s.ready]
        busy = frozenset(m for m in ready if gw.supervisors[m].lock.locked())
        in_call = frozenset(m for m in ready if gw.supervisors[m].in_call)
        views = [gw.modem_view(m, now) for m in ready]
        return gateway_capacity(
            views, busy, now, tz=gw.tz, traffic_stopped=self._stopped(), in_call=in_call
        )

    def payload(self, summary: GatewayCapacity, now: float) -> Capacity:
        return Capacity(
            gateway=self.runtime.config.gateway.id,
            modems_ready=summary.modems_ready,
            modems_busy=summary.modems_busy,
            traffic_stopped=summary.traffic_stopped,
            call=_action(summary.actions["call"]),
            sms=_action(summary.actions["sms"]),
            computed_at=_at(now),
        )

    def publish(self, now: float) -> float:
        """Compute, and publish when it changed or the refresh is due; when to compute again
        by the clock (gateway-clock epoch seconds)."""
        summary = self.compute(now)
        capacity = self.payload(summary, now)
        old = self.published
        same = old is not None and old.model_dump(exclude={"computed_at"}) == capacity.model_dump(
            exclude={"computed_at"}
        )
        refresh = old is None or now >= old.computed_at.timestamp() + REFRESH_S
        if not same or refresh:
            self.runtime.board.publish_capacity(capacity)
            self.published = capacity
            if not same:
                log.debug(
                    "capacity_published",
                    call=summary.actions["call"].eligible,
                    sms=summary.actions["sms"].eligible,
                )
        assert self.published is not None
        due = self.published.computed_at.timestamp() + REFRESH_S
        change = summary.next_change_at
        # A window that ends "now" by the float's rounding is looked at again a second later.
        soon = now + self.coalesce_s / (self.runtime.clock.real(1.0) or 1.0)
        return due if change is None else min(due, max(change, soon))

    async def run(self) -> None:
        clock = self.runtime.clock
        signature: Signature | None = None
        next_at = clock.now()
        while True:
            now = clock.now()
            seen = self._signature()
            if self._dirty.is_set() or seen != signature or now >= next_at:
                self._dirty.clear()
                signature = seen
                try:
                    next_at = self.publish(now)
                except Exception:  # a bad row must not stop the daemon; try again later
                    log.exception("capacity_failed")
                    next_at = now + REFRESH_S
                await asyncio.sleep(self.coalesce_s)  # wall-clock pacing (see the module doc)
                continue
            wait = min(POLL_S, clock.real(next_at - now))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._dirty.wait()


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _action(room: ActionCapacity) -> ActionPayload:
    at = None if room.next_free_at is None else _at(room.next_free_at)
    return ActionPayload(eligible=room.eligible, modems=room.modems, next_free_at=at)
