"""The daemon process: one root TaskGroup with the MQTT bridge and one task per modem."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import structlog

from simbank import __version__
from simbank.agi import AgiServer
from simbank.agi import serve as serve_agi
from simbank.clock import Clock, SystemClock
from simbank.config.loader import load_config
from simbank.config.models import Config
from simbank.contract import BridgeInfo, Topics, utc_now
from simbank.daemon.agi_authority import DaemonAuthority
from simbank.daemon.board import StatusBoard
from simbank.daemon.capacity import CapacityPublisher
from simbank.daemon.commands import Handlers
from simbank.daemon.forwarding import SmsForwarder
from simbank.daemon.inbound_calls import InboundCalls
from simbank.daemon.modem.supervisor import ModemSupervisor
from simbank.daemon.outbound_calls import OutboundCalls
from simbank.daemon.router import RequestRouter
from simbank.daemon.runtime import BankRuntime
from simbank.daemon.storage import StorageWatch
from simbank.daemon.upkeep import LedgerUpkeep
from simbank.errors import ConfigError
from simbank.integrations.homeassistant import DiscoveryPublisher, birth_topic, own_configs
from simbank.integrations.metrics import Metrics, MetricsServer, serve
from simbank.integrations.systemd import Notifier, WatchdogPinger, summary_line
from simbank.mqtt import Inbound, MqttBridge
from simbank.store.ledger import Ledger
from simbank.store.recovery import recover

log = structlog.get_logger(__name__)

SHUTDOWN_TIMEOUT_S = 15.0
STATUS_EVERY_S = 5.0


class Daemon:
    """``await Daemon(config).run(stop)`` runs until ``stop`` is set, then shuts down cleanly."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        config_path: str | None = None,
    ) -> None:
        """``clock`` is the one clock of the bank and the modems (a
        :class:`~simbank.clock.ScaledClock` lets tests run a day in a minute against a
        simulator at the same scale); production runs on the :class:`SystemClock`."""
        clock = SystemClock() if clock is None else clock
        self.config = config
        self.config_path = config_path
        self.started_at = utc_now()
        self.topics = Topics(config.mqtt.base_topic, config.gateway.id)
        # A corrupt ledger is moved aside and the last good backup put in its place before
        # anything reads it (held degraded below until an operator confirms).
        recovered = recover(
            config.gateway.state_dir,
            config.storage.backups_in(config.gateway.state_dir),
            clock.now(),
            quick=True,
        )
        if recovered.acted:
            log.error("ledger_restored_at_start", detail=recovered.detail)
        self.ledger = Ledger.open(config.gateway.state_dir)
        try:
            ha = config.homeassistant
            subscriptions = [f"{self.topics.request_prefix}#"]
            if ha.enabled:
                # HA's birth, and our own node's configs (to clear those left by earlier runs).
                subscriptions += [birth_topic(ha.prefix), own_configs(ha.prefix, config.gateway.id)]
            self.bridge = MqttBridge(
                config.mqtt,
                self.topics,
                config.mqtt.client_id or f"simbankd-{config.gateway.id}",
                info=self._info,
                state=self._bridge_state,
                subscriptions=tuple(subscriptions),
                handler=self._on_request,
            )
            self.board = StatusBoard(
                self.bridge, self.topics, now=lambda: datetime.fromtimestamp(clock.now(), UTC)
            )
            self.storage = StorageWatch(
                self.ledger, self.board, config.storage, config.gateway.state_dir, clock
            )
            self.storage.on_change = self._storage_changed
            self.metrics: Metrics | None = None
            if config.metrics.enabled:
                self.metrics = Metrics()
                self.metrics.watch_mqtt(self.bridge.stats)
                self.board.watchers.append(self.metrics)
            self.discovery: DiscoveryPublisher | None = None
            if ha.enabled:
                self.discovery = DiscoveryPublisher(
                    self.bridge,
                    config.mqtt.base_topic,
                    config.gateway.id,
                    ha.prefix,
                    modems=[m.id for m in config.modems],
                    # Every slot of every modem read back: a SIM not seen by then is gone.
                    settled=lambda: all(
                        (modem_id, slot) in self.runtime.slots
                        for modem_id, sup in self.supervisors.items()
                        for slot in range(1, sup.usable_slots + 1)
                    ),
                )
                self.board.watchers.append(self.discovery)
            self.clock = clock
            self.runtime = BankRuntime(config, self.ledger, self.board, clock)
            self.supervisors = {
                m.id: ModemSupervisor(
                    m, self.board, config.gateway.poll_interval_s, self.runtime, clock=clock
                )
                for m in config.modems
            }
            self.runtime.supervisors = self.supervisors
            inbound = InboundCalls(self.runtime)
            for sup in self.supervisors.values():
                sup.calls_in.handler = inbound
            if self.metrics is not None:
                for sup in self.supervisors.values():
                    sup.at_hook = self.metrics.observe_at
                    sup.resync_hook = self.metrics.observe_resync
            self.upkeep = LedgerUpkeep(self.runtime, self.storage)
            self.upkeep.hold_if_pending()
            handlers = Handlers(self.runtime, self.upkeep)
            self.pbx = handlers.pbx
            # Calls seen on a modem that simbank did not place: matched to an authorization, or
            # booked as unauthorized usage.
            self.outbound = OutboundCalls(self.runtime, handlers.pbx, handlers.traffic)
            for sup in self.supervisors.values():
                sup.call_watch.handler = self.outbound
            self.capacity = CapacityPublisher(self.runtime)
            self.balance = handlers.balance
            self.forwarder: SmsForwarder | None = None
            if config.sms.forward_command:
                self.forwarder = SmsForwarder(
                    config.sms.forward_command, timeout_s=config.sms.forward_timeout_s
                )
                self.runtime.inbox.forwarder = self.forwarder
            self.router = RequestRouter(
                self.topics,
                self.bridge,
                handlers.table(),
                self.ledger,
                self.runtime.clock,
            )
            self.router.refusing = self.storage.refusal
            self.runtime.storage_refusal = self.storage.refusal
            if self.metrics is not None:
                self.router.on_response = self.metrics.observe_request
                handlers.traffic.on_call = self.metrics.observe_call
                self.metrics.watch_gateway(
                    mqtt_connected=lambda: self.bridge.connected,
                    circuit_open=lambda: self.runtime.circuit.is_open,
                    traffic_paused=lambda: self.runtime.paused_reason is not None,
                )
                self.metrics.watch_storage(
                    degraded=lambda: self.storage.degraded is not None,
                    free_bytes=lambda: self.storage.free,
                    last_backup_at=lambda: (
                        None if self.storage.last_backup is None else self.storage.last_backup[1]
                    ),
                )
            for iccid in self.runtime.sims:
                self.runtime.publish_sim(iccid)
        except BaseException:
            # Not started after all (the storage failed under us, say): nothing stays open.
            self.ledger.close()
            raise

    def reload(self) -> None:
        """SIGHUP: re-read the policies and the do-not-call list; calls in progress go on.

        Only ``[policies]`` and ``[compliance]`` change without a restart; a changed modem,
        broker or gateway section is reported and left as it was.
        """
        if self.config_path is not None:
            try:
                fresh = load_config(self.config_path)
            except ConfigError as exc:
                log.warning("reload_refused", problems=exc.lines)
            else:
                changed = [
                    name
                    for name in (
                        "gateway",
                        "mqtt",
                        "modems",
                        "detection",
                        "rotation",
                        "sms",
                        "storage",
                    )
                    if getattr(fresh, name) != getattr(self.config, name)
                ]
                if changed:
                    log.warning("reload_needs_restart", sections=changed)
                self.runtime.reconfigure(fresh.policies, fresh.compliance)
        result = self.runtime.dnc.reload()
        log.info(
            "reloaded",
            policies=sorted(self.runtime.limits),
            dnc_numbers=len(self.runtime.dnc),
            dnc_problems=len(result.problems),
        )

    async def _on_request(self, inbound: Inbound) -> None:
        if inbound.topic.startswith(self.topics.request_prefix):
            await self.router.submit(inbound)
        elif self.discovery is not None and self.discovery.wants(inbound):
            self.discovery.receive(inbound)

    def _summary(self) -> str:
        return summary_line(
            {m: s.state for m, s in self.board.modems.items()},
            {i: s.state for i, s in self.board.sims.items()},
            self.bridge.connected,
        )

    async def _report_status(self, notifier: Notifier) -> None:
        """systemd's STATUS= line, refreshed while something changes (at most every 5 s)."""
        last = ""
        while True:
            line = self._summary()
            if line != last:
                notifier.status(line)
                last = line
            await asyncio.sleep(STATUS_EVERY_S)

    def _info(self) -> bytes:
        storage = self.storage.info()
        return BridgeInfo(
            version=__version__,
            gateway=self.config.gateway.id,
            started_at=self.started_at,
            config=self.config.summary(),
            state="online" if storage.state == "ok" else "degraded",
            storage=storage,
        ).to_json()

    def _bridge_state(self) -> bytes:
        return self.storage.bridge_state()

    def _storage_changed(self) -> None:
        """The ledger's health changed: ``bridge/state`` and ``bridge/info`` say so (retained;
        sent now, or at the next connect)."""
        self.bridge.set_retained(self.topics.bridge_state, self.storage.bridge_state())
        self.bridge.set_retained(self.topics.bridge_info, self._info())

    async def run(self, stop: asyncio.Event) -> None:
        with structlog.contextvars.bound_contextvars(gateway=self.config.gateway.id):
            log.info("daemon_starting", version=__version__, modems=len(self.supervisors))
            try:
                await self._run(stop)
            finally:
                self.ledger.close()
            log.info("daemon_stopped")

    async def _run(self, stop: asyncio.Event) -> None:
        metrics_server: MetricsServer | None = None
        if self.metrics is not None:
            m = self.config.metrics
            metrics_server = await serve(self.metrics, m.host, m.port, allow_remote=m.allow_remote)
            log.info("metrics_serving", host=m.host, port=metrics_server.port)
        agi_server: AgiServer | None = None
        try:
            if self.config.agi.enabled:
                a = self.config.agi
                agi_server = await serve_agi(
                    DaemonAuthority(self.pbx, self.config.compliance.max_call_duration_s),
                    a.host,
                    a.port,
                    allow_remote=a.allow_remote,
                    max_connections=a.max_connections,
                    read_timeout_s=a.read_timeout_s,
                    authority_timeout_s=a.authorize_timeout_s,
                )
            await self._run_tasks(stop)
        finally:
            if agi_server is not None:
                agi_server.close()
                await agi_server.wait_closed()
            if metrics_server is not None:
                metrics_server.close()
                await metrics_server.wait_closed()

    async def _run_tasks(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as tg:
            bridge_task = tg.create_task(self.bridge.run(), name="mqtt-bridge")
            requests = tg.create_task(self.router.run(), name="requests")
            workers = [tg.create_task(self.runtime.run(), name="gateway")]
            workers.append(tg.create_task(self.balance.run(), name="balance"))
            # Before the modems: after a restart, open authorizations hold their modems first.
            workers.append(tg.create_task(self.pbx.run(), name="pbx"))
            workers.append(tg.create_task(self.capacity.run(), name="capacity"))
            workers.append(tg.create_task(self.storage.run(), name="storage"))
            workers.append(tg.create_task(self.upkeep.run(), name="ledger-upkeep"))
            if self.forwarder is not None:
                workers.append(tg.create_task(self.forwarder.run(), name="sms-forward"))
            workers += [
                tg.create_task(sup.run(), name=f"modem-{modem_id}")
                for modem_id, sup in self.supervisors.items()
            ]
            notifier = Notifier.from_env()
            alive = [requests, bridge_task, *workers]
            aux = [
                tg.create_task(
                    WatchdogPinger(notifier, lambda: all(not t.done() for t in alive)).run(),
                    name="watchdog",
                ),
                tg.create_task(self._report_status(notifier), name="sd-status"),
            ]
            notifier.ready(self._summary())
            await stop.wait()
            log.info("daemon_stopping")
            notifier.stopping()
            for task in aux:
                task.cancel()
            # Requests first, while the modems are still there: a call in progress is hung
            # up and its booking completed (charged in full), then the modems are closed.
            requests.cancel()
            await asyncio.gather(requests, return_exceptions=True)
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self.bridge.stop()
            try:
                async with asyncio.timeout(SHUTDOWN_TIMEOUT_S):
                    await asyncio.shield(bridge_task)
            except TimeoutError:
                log.warning("mqtt_offline_not_published")
                bridge_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await bridge_task
