"""The dashboard's web process: the page's static files and the WebSocket relay.

:class:`Dashboard` runs it inside an event loop (``simbank-web``, the demo, the tests):

    async with Dashboard(MqttConfig(port=1883), "simbank") as dashboard:
        print(dashboard.url)

Guards: a request whose ``Host`` is not one of the dashboard's own names gets 421 (DNS
rebinding, see :mod:`simbank.web.hosts`); a browser WebSocket from another ``Origin`` gets
403; past ``max_sessions`` open WebSockets a new one gets 503; a WebSocket that has not
logged in after ``RelaySettings.login_wait_s`` is closed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import structlog
from aiohttp import WSCloseCode, web
from aiohttp.typedefs import Middleware

from simbank.config.models import MqttConfig
from simbank.web.hosts import HostPolicy
from simbank.web.protocol import MAX_FRAME_BYTES
from simbank.web.session import LOGIN_WAIT_S, RelaySettings, Session
from simbank.web.throttle import LoginThrottle

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

#: WebSockets open at once (logged in or not) before new ones are refused with 503
MAX_SESSIONS = 64

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


def _host_guard(hosts: HostPolicy) -> Middleware:
    """Serve nothing to a request whose ``Host`` is not one of ours (DNS rebinding)."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host")
        if hosts.allows(host):
            return await handler(request)
        log.warning("web_host_refused", host=host, path=request.path, peer=request.remote)
        return web.Response(
            status=421,
            text=f"misdirected request: this dashboard answers only to {', '.join(hosts.names())}"
            " (a reverse proxy's name needs simbank-web --public-host)\n",
        )

    return guard


def make_app(
    settings: RelaySettings,
    hosts: HostPolicy,
    *,
    throttle: LoginThrottle | None = None,
    max_sessions: int = MAX_SESSIONS,
) -> web.Application:
    """The aiohttp application: ``/`` the page, ``/static/`` its files, ``/ws`` the relay."""
    app = web.Application(middlewares=[_headers, _host_guard(hosts)])
    sessions: set[web.WebSocketResponse] = set()
    logins = throttle if throttle is not None else LoginThrottle()

    async def index(_: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def relay(request: web.Request) -> web.StreamResponse:
        if not _same_origin(request):
            log.warning("web_origin_refused", origin=request.headers.get("Origin"))
            raise web.HTTPForbidden(text="cross-origin WebSocket refused")
        if len(sessions) >= max_sessions:
            log.warning("web_sessions_full", sessions=len(sessions), peer=request.remote)
            raise web.HTTPServiceUnavailable(
                text=f"the dashboard has {max_sessions} sessions open, its limit: try again later\n"
            )
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4 * MAX_FRAME_BYTES)
        sessions.add(ws)
        try:
            await ws.prepare(request)
            await Session(ws, settings, request.remote or "?", logins).run()
        finally:
            await ws.close()
            sessions.discard(ws)
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
    takes a free port). ``public_hosts``: the names (``NAME`` or ``NAME:PORT``) it answers
    besides its listen address and loopback, e.g. a reverse proxy's; ``login_throttle``
    paces logins per peer (one on the system clock by default)."""

    def __init__(
        self,
        mqtt: MqttConfig,
        base_topic: str = "simbank",
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        response_timeout_s: float = 30.0,
        public_hosts: Iterable[str] = (),
        max_sessions: int = MAX_SESSIONS,
        login_wait_s: float = LOGIN_WAIT_S,
        login_throttle: LoginThrottle | None = None,
    ) -> None:
        self._settings = RelaySettings(
            mqtt, base_topic, response_timeout_s=response_timeout_s, login_wait_s=login_wait_s
        )
        self._hosts = HostPolicy(listen_host, public_hosts)
        self._throttle = login_throttle
        self._max_sessions = max_sessions
        self._host = listen_host
        self._port = listen_port
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> Self:
        app = make_app(
            self._settings, self._hosts, throttle=self._throttle, max_sessions=self._max_sessions
        )
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self._hosts.bind(port)
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
