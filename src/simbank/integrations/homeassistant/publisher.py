"""Keeps Home Assistant's discovery configs in step with the gateway, and clears stale ones.

A board watcher: a modem or a SIM that appears, or a modem whose model becomes known, makes
the configs be computed again and handed to the bridge as retained topics (only changed
ones go out). A config that is no longer current is cleared with an empty retained payload,
which Home Assistant reads as "remove this entity".

What a previous run published is learnt from the broker: the daemon subscribes to its own
node's configs (:func:`~.naming.own_configs`, which the ACL lets a gateway read and no other
gateway write), and a non-empty config that arrives there and is not current is stale:

* a gateway or modem config is cleared at once: the configured modems are known before the
  bridge connects, so what a run with more modems left goes on the first connection;
* a SIM config waits until the bank has *settled* (every slot of every configured modem read
  back, the ``settled`` callable): a SIM the ledger does not remember is known again only
  once its modem reads its card, and clearing it before would make Home Assistant drop the
  entity (and the user's settings for it) only to create it anew. A SIM seen by then keeps
  its entities; one that is not is gone from the bank, and its configs are cleared.
* any other config there is not one of a SIM that may come back, and is cleared at once:
  that includes the old forms (``<modem>_<key>``, ``sim_<iccid>_<key>``, ``bridge``) from
  before ids were joined so that two gateways' could not collide (:mod:`.naming`).

Copies of our own publications are current and left alone, an empty payload (a removal) is
never acted on, and other gateways' configs never arrive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import structlog

from simbank.contract import ModemState, SimState
from simbank.integrations.homeassistant.discovery import (
    ModemDevice,
    SimDevice,
    gateway_messages,
    modem_messages,
    sim_messages,
)
from simbank.integrations.homeassistant.naming import (
    SIM_STEM,
    is_birth,
    is_own_config,
    object_id,
)
from simbank.mqtt import Inbound, Publisher

log = structlog.get_logger(__name__)


Device = tuple[str, str]
"""``("gateway", "")``, ``("modem", <id>)`` or ``("sim", <iccid>)``."""


class DiscoveryPublisher:
    """Discovery for one gateway: ``observe_*`` from the StatusBoard, :meth:`receive` for
    what arrives on :func:`~.naming.birth_topic` and :func:`~.naming.own_configs`."""

    def __init__(
        self,
        out: Publisher,
        base: str,
        gateway: str,
        prefix: str,
        *,
        modems: Iterable[str] = (),
        settled: Callable[[], bool] = lambda: True,
    ) -> None:
        """``modems``: the configured modem ids, published at once (their model and maker
        follow when the modems are probed). ``settled``: whether every slot of every
        configured modem has been read back (stale SIM configs wait for it)."""
        self._out = out
        self._base = base
        self._gateway = gateway
        self.prefix = prefix
        self._modems: dict[str, ModemDevice] = {}
        self._sims: dict[str, SimDevice] = {}
        #: Each device's configs (topic → payload), and which device each topic is of.
        self._devices: dict[Device, dict[str, bytes]] = {}
        self._owner: dict[str, Device] = {}
        self._settled = settled
        #: Stale SIM configs waiting for the bank to settle.
        self.pending: set[str] = set()
        self.cleared = 0
        self._set(("gateway", ""), gateway_messages(base, gateway, prefix))
        for modem_id in modems:
            self._set_modem(ModemDevice(modem_id))

    @property
    def current(self) -> dict[str, bytes]:
        """Topic → payload of every config that is current."""
        return {t: p for configs in self._devices.values() for t, p in configs.items()}

    def _set(self, device: Device, messages: list[tuple[str, bytes]]) -> None:
        """Make ``messages`` the configs of ``device``: the ones it no longer has cleared,
        the others handed to the bridge (which sends only what changed)."""
        fresh = dict(messages)
        for topic in self._devices.get(device, {}).keys() - fresh.keys():
            del self._owner[topic]
            self._clear(topic, "gone")
        self._devices[device] = fresh
        for topic, payload in messages:
            self._owner[topic] = device
            self.pending.discard(topic)
            self._out.set_retained(topic, payload)

    def _set_modem(self, modem: ModemDevice) -> None:
        self._modems[modem.id] = modem
        messages = modem_messages(self._base, self._gateway, modem, self.prefix)
        self._set(("modem", modem.id), messages)

    def _clear(self, topic: str, why: str) -> None:
        self.cleared += 1
        log.info("homeassistant_entity_removed", topic=topic, why=why)
        self._out.set_retained(topic, b"")

    def observe_modem(self, state: ModemState) -> None:
        old = self._modems.get(state.id)
        # Keep the last known model and maker while a modem is offline: no flip-flopping.
        new = ModemDevice(
            state.id,
            state.model or (old.model if old else None),
            state.manufacturer or (old.manufacturer if old else None),
        )
        if new != old:
            self._set_modem(new)
        self._settle()

    def observe_sim(self, state: SimState) -> None:
        new = SimDevice.of(state)
        if self._sims.get(state.iccid) != new:
            self._sims[state.iccid] = new
            messages = sim_messages(self._base, self._gateway, new, self.prefix)
            self._set(("sim", state.iccid), messages)
        self._settle()

    def _settle(self) -> None:
        """Clear the stale SIM configs once the bank has settled."""
        if self.pending and self._settled():
            for topic in sorted(self.pending):
                self._clear(topic, "stale")
            self.pending.clear()

    def observe_event(self, event_type: str, fields: Mapping[str, object]) -> None:
        del event_type, fields

    def wants(self, message: Inbound) -> bool:
        """Whether ``message`` is for this publisher (HA's birth, or one of our configs)."""
        return is_birth(message, self.prefix) or is_own_config(
            message.topic, self.prefix, self._gateway
        )

    def receive(self, message: Inbound) -> None:
        """Home Assistant's birth: send every config again. One of our node's configs that
        is not current (left by an earlier run): clear it."""
        if is_birth(message, self.prefix):
            log.info("homeassistant_online_resending_discovery")
            self.resend()
        elif (
            message.payload
            and message.topic not in self._owner
            and is_own_config(message.topic, self.prefix, self._gateway)
        ):
            if object_id(message.topic).startswith(SIM_STEM):
                self.pending.add(message.topic)
                self._settle()
            else:
                self._clear(message.topic, "stale")

    def resend(self) -> None:
        """Home Assistant restarted: publish every config again (retained ones are deduped),
        in the events lane: configs are not answers, and are kept like events."""
        for topic, payload in self.current.items():
            self._out.publish(topic, payload, lane="events")
