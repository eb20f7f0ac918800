"""``GET /metrics`` from an asyncio server (no threads), on loopback unless told otherwise.

Every connection is read with a timeout and a bounded header; anything but ``GET /metrics``
gets a short plain-text error. A non-loopback host is refused unless ``allow_remote``: the
series name every modem and ICCID of the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Final

import structlog

from simbank.addresses import is_loopback
from simbank.errors import ConfigError
from simbank.listener import Listener

if TYPE_CHECKING:
    from simbank.integrations.metrics.series import Metrics

log = structlog.get_logger(__name__)

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 9464
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""The classic text format ``generate_latest`` writes (every name here is a legacy name)."""
READ_TIMEOUT_S: Final = 5.0
MAX_HEADER_BYTES: Final = 8192


class MetricsServer(Listener):
    """The running endpoint: ``port`` (useful with port 0), ``close()``, ``wait_closed()``."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(MAX_HEADER_BYTES)
        self._metrics = metrics

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            status, body = await self._answer(reader)
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: "
                f"{CONTENT_TYPE if status.startswith('200') else 'text/plain; charset=utf-8'}"
                f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("ascii") + body)
            async with asyncio.timeout(READ_TIMEOUT_S):
                await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            log.debug("metrics_connection_failed", error=repr(exc))
        finally:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(READ_TIMEOUT_S):
                    await writer.wait_closed()
            if task is not None:
                self._handlers.discard(task)

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[str, bytes]:
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            return "431 Request Header Fields Too Large", b"request header too large\n"
        parts = head.split(b"\r\n", 1)[0].split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
            return "400 Bad Request", b"bad request\n"
        method, target = parts[0], parts[1].split(b"?", 1)[0]
        if target != b"/metrics":
            return "404 Not Found", b"not found; try /metrics\n"
        if method != b"GET":
            return "405 Method Not Allowed", b"method not allowed\n"
        return "200 OK", self._metrics.exposition()


def check_host(host: str, *, allow_remote: bool) -> None:
    """Refuse (:class:`ConfigError`) a non-loopback ``host`` unless ``allow_remote``."""
    if not allow_remote and not is_loopback(host):
        raise ConfigError(
            f"metrics.host: refusing to listen on non-loopback host {host!r} "
            "(the metrics name every modem and ICCID; set allow_remote to expose them)"
        )


async def serve(
    metrics: Metrics,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    allow_remote: bool = False,
) -> MetricsServer:
    """Listen for ``GET /metrics`` on ``host:port``; close the returned server to stop.

    A non-loopback ``host`` (``0.0.0.0``, a LAN address, a name other than ``localhost``) is
    refused with :class:`ConfigError` unless ``allow_remote``: the series name every modem
    and ICCID of the gateway.
    """
    check_host(host, allow_remote=allow_remote)
    server = MetricsServer(metrics)
    await server.start(host, port)
    log.info("metrics_listening", host=host, port=server.port)
    return server
