"""The daemon process: one root TaskGroup with the MQTT bridge and one task per modem."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from simbank import __version__
from simbank.config.models import Config
from simbank.daemon.contract import BridgeInfo, Topics, utc_now
from simbank.daemon.mqtt import MqttBridge
from simbank.daemon.status import StatusBoard
from simbank.daemon.supervisor import ModemSupervisor

log = structlog.get_logger(__name__)

SHUTDOWN_TIMEOUT_S = 15.0


class Daemon:
    """``await Daemon(config).run(stop)`` runs until ``stop`` is set, then shuts down cleanly."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.started_at = utc_now()
        self.topics = Topics(config.mqtt.base_topic, config.gateway.id)
        self.bridge = MqttBridge(
            config.mqtt,
            self.topics,
            config.mqtt.client_id or f"simbankd-{config.gateway.id}",
            info=self._info,
        )
        self.board = StatusBoard(self.bridge, self.topics)
        self.supervisors = {
            m.id: ModemSupervisor(m, self.board, config.gateway.poll_interval_s)
            for m in config.modems
        }

    def _info(self) -> bytes:
        return BridgeInfo(
            version=__version__,
            gateway=self.config.gateway.id,
            started_at=self.started_at,
            config=self.config.summary(),
        ).to_json()

    async def run(self, stop: asyncio.Event) -> None:
        with structlog.contextvars.bound_contextvars(gateway=self.config.gateway.id):
            log.info("daemon_starting", version=__version__, modems=len(self.supervisors))
            async with asyncio.TaskGroup() as tg:
                bridge_task = tg.create_task(self.bridge.run(), name="mqtt-bridge")
                modem_tasks = [
                    tg.create_task(sup.run(), name=f"modem-{modem_id}")
                    for modem_id, sup in self.supervisors.items()
                ]
                await stop.wait()
                log.info("daemon_stopping")
                for task in modem_tasks:
                    task.cancel()
                await asyncio.gather(*modem_tasks, return_exceptions=True)
                self.bridge.stop()
                try:
                    async with asyncio.timeout(SHUTDOWN_TIMEOUT_S):
                        await asyncio.shield(bridge_task)
                except TimeoutError:
                    log.warning("mqtt_offline_not_published")
                    bridge_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await bridge_task
            log.info("daemon_stopped")
