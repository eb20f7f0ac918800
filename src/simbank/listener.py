"""A small TCP listener on ``asyncio.start_server`` that knows its connections: ``port``
(useful with port 0), ``close()`` ends them too, ``wait_closed()`` waits for them; an async
context manager. The metrics endpoint and the FastAGI endpoint are both one."""

from __future__ import annotations

import asyncio
from typing import Self


class Listener:
    """Subclasses implement :meth:`_handle` and register its task in ``_handlers``."""

    def __init__(self, line_limit: int) -> None:
        self._line_limit = line_limit
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._handle, host, port, limit=self._line_limit)

    def close(self) -> None:
        """Stop listening and end the connections being served."""
        if self._server is not None:
            self._server.close()
        for task in self._handlers:
            task.cancel()

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_closed()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError
