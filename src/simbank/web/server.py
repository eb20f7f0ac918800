"""The dashboard's web process: the page's static files and the WebSocket relay.

:class:`Dashboard` runs it inside an event loop (``simbank-web``, the demo, the tests):

    async with Dashboard(MqttConfig(port=1883), "simbank") as dashboard:
        print(dashboard.url)
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import structlog
from aiohttp import WSCloseCode, web

from simbank.config.models import MqttConfig
from simbank.web.protocol import MAX_FRAME_BYTES
from simbank.web.session import RelaySettings, Session

log = structlog.get_logger("simbank.web")

STATIC = Path(str(resources.files("simbank.web") / "static"))
#: the page loads only its own files and talks only to its own origin
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if not response.prepared:
        response.headers.update(SECURITY_HEADERS)
    return response


def _same_origin(request: web.Request) -> bool:
    """A browser's WebSocket from another site's page carries that site's Origin: refused.
    (The login is in the WebSocket, not a cookie, but a foreign page has no business here.)"""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser
    return urlsplit(origin).netloc.lower() == request.host.lower()


def make_app(settings: RelaySettings) -> web.Application:
    """The aiohttp application: ``/`` the page, ``/static/`` its files, ``/ws`` the relay."""
    app = web.Application(middlewares=[_headers])
    sessions: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()

    async def index(_: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def relay(request: web.Request) -> web.StreamResponse:
        if not _same_origin(request):
            log.warning("web_origin_refused", origin=request.headers.get("Origin"))
            raise web.HTTPForbidden(text="cross-origin WebSocket refused")
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4 * MAX_FRAME_BYTES)
        await ws.prepare(request)
        sessions.add(ws)
        try:
            await Session(ws, settings, request.remote or "?").run()
        finally:
            await ws.close()
        return ws

    async def close_sessions(_: web.Application) -> None:
        for ws in list(sessions):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    app.router.add_get("/", index)
    app.router.add_get("/ws", relay)
    app.router.add_static("/static/", STATIC, follow_symlinks=False)
    app.on_shutdown.append(close_sessions)
    return app


class Dashboard:
    """``simbank-web`` as an async context manager; ``url`` once entered (``listen_port=0``
    takes a free port)."""

    def __init__(
        self,
        mqtt: MqttConfig,
        base_topic: str = "simbank",
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        response_timeout_s: float = 30.0,
    ) -> None:
        self._settings = RelaySettings(mqtt, base_topic, response_timeout_s=response_timeout_s)
        self._host = listen_host
        self._port = listen_port
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> Self:
        runner = web.AppRunner(make_app(self._settings), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}/"
        log.info("web_listening", url=self.url)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
