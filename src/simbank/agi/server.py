"""The FastAGI listener: ``asyncio.start_server`` on loopback unless told otherwise.

Each connection: read the ``agi_*`` block (a timeout, a line limit, a line count), pick the
script by ``agi_network_script``, run it, close — Asterisk resumes the dialplan when the server
closes. At most ``max_connections`` at once (one more is closed at once, which the dialplan
sees as "no booking": it does not dial). Anything malformed or timed out closes that one
connection with a log line; the listener keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

import structlog

from simbank.addresses import is_loopback
from simbank.agi import dialplan
from simbank.agi.protocol import (
    MAX_ENVIRONMENT_LINES,
    MAX_LINE_BYTES,
    AgiProtocolError,
    parse_environment,
)
from simbank.agi.scripts import DEFAULT_AUTHORITY_TIMEOUT_S, SCRIPTS, Authorizer
from simbank.agi.session import DEFAULT_TIMEOUT_S, AgiSession, read_line
from simbank.errors import ConfigError
from simbank.listener import Listener

log = structlog.get_logger(__name__)

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 4573
"""FastAGI's port: ``agi://host`` without one connects here."""
DEFAULT_MAX_CONNECTIONS: Final = 32
DEFAULT_DIALOG_DEADLINE_S: Final = 30.0
"""A connection's whole dialog with Asterisk (the environment block and every command, the
daemon's own answer time not counted) ends within this: a peer that answers each line just
before the read timeout cannot hold one of the ``max_connections`` slots for minutes."""


def check_host(host: str, *, allow_remote: bool) -> None:
    """Refuse (:class:`ConfigError`) a non-loopback ``host`` unless ``allow_remote``: AGI has
    no authentication, and whoever reaches the port can book calls."""
    if not allow_remote and not is_loopback(host):
        raise ConfigError(
            f"agi.host: refusing to listen on non-loopback host {host!r} (FastAGI has no "
            "authentication: anyone who reaches the port books calls; set allow_remote)"
        )


class AgiServer(Listener):
    """The running endpoint: ``port`` (useful with port 0), ``close()``, ``wait_closed()``."""

    def __init__(
        self,
        authority: Authorizer,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        read_timeout_s: float = DEFAULT_TIMEOUT_S,
        authority_timeout_s: float = DEFAULT_AUTHORITY_TIMEOUT_S,
        dialog_deadline_s: float = DEFAULT_DIALOG_DEADLINE_S,
    ) -> None:
        super().__init__(MAX_LINE_BYTES)
        self._authority = authority
        self._max_connections = max_connections
        self._read_timeout_s = read_timeout_s
        self._authority_timeout_s = authority_timeout_s
        #: The most one connection lives: its dialog plus the longest the daemon may take.
        self.deadline_s = dialog_deadline_s + authority_timeout_s

    @property
    def connections(self) -> int:
        """Connections being served now."""
        return len(self._handlers)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        task = asyncio.current_task()
        if len(self._handlers) >= self._max_connections or task is None:
            log.warning("agi_connection_refused", peer=peer, limit=self._max_connections)
            await _close(writer)
            return
        self._handlers.add(task)
        try:
            async with asyncio.timeout(self.deadline_s):
                await self._serve(reader, writer)
        except AgiProtocolError as exc:
            log.warning("agi_connection_dropped", peer=peer, error=str(exc))
        except TimeoutError:
            log.warning(
                "agi_connection_timed_out",
                peer=peer,
                read_timeout_s=self._read_timeout_s,
                deadline_s=self.deadline_s,
            )
        except Exception:  # one connection's bug must not take the listener down
            log.exception("agi_connection_failed", peer=peer)
        except asyncio.CancelledError:
            # close() cancelled it: end quietly (asyncio 3.11 logs a handler task that ends
            # cancelled as "Exception in callback"); nobody else awaits this task
            log.debug("agi_connection_cancelled", peer=peer)
        finally:
            await _close(writer)
            self._handlers.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines: list[str] = []
        async with asyncio.timeout(self._read_timeout_s):
            while line := await read_line(reader, self._read_timeout_s):
                lines.append(line)
                if len(lines) > MAX_ENVIRONMENT_LINES:
                    raise AgiProtocolError("an environment block that never ends")
        env = parse_environment(lines)
        session = AgiSession(reader, writer, timeout_s=self._read_timeout_s)
        script = SCRIPTS.get(env.script)
        if script is None:
            message = f"unknown AGI script {env.script!r}: simbank serves " + ", ".join(
                f"agi://host:port/{name}" for name in SCRIPTS
            )
            log.warning("agi_unknown_script", script=env.script, channel=env.channel)
            await session.verbose(f"simbank: {message}")
            await session.set_all(dialplan.refusal(dialplan.UNAVAILABLE, message))
            return
        log.debug("agi_request", script=env.script, channel=env.channel)
        await script(session, env, self._authority, self._authority_timeout_s)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(DEFAULT_TIMEOUT_S):
            await writer.wait_closed()


async def serve(
    authority: Authorizer,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    allow_remote: bool = False,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    read_timeout_s: float = DEFAULT_TIMEOUT_S,
    authority_timeout_s: float = DEFAULT_AUTHORITY_TIMEOUT_S,
    dialog_deadline_s: float = DEFAULT_DIALOG_DEADLINE_S,
) -> AgiServer:
    """Listen for FastAGI on ``host:port``; close the returned server to stop. A non-loopback
    ``host`` is refused (:class:`ConfigError`) unless ``allow_remote``."""
    check_host(host, allow_remote=allow_remote)
    server = AgiServer(
        authority,
        max_connections=max_connections,
        read_timeout_s=read_timeout_s,
        authority_timeout_s=authority_timeout_s,
        dialog_deadline_s=dialog_deadline_s,
    )
    await server.start(host, port)
    log.info("agi_listening", host=host, port=server.port)
    return server
