"""Which ``Host`` headers the dashboard answers: its defence against DNS rebinding.

A page on ``evil.example`` whose name the attacker re-points at 127.0.0.1 is, to the
browser, same-origin with ``http://evil.example:8080/``: its ``Origin`` and ``Host`` agree,
so comparing the two proves nothing. Only the ``Host`` tells the name the browser used, so
the relay serves nothing (page, files or WebSocket) unless that name is one of its own:

- the address it listens on, ``localhost``, ``127.0.0.1`` and ``[::1]``, each with the
  listening port (no port in the header means 80);
- the names given with ``--public-host`` (the name a reverse proxy serves the page under):
  ``NAME`` matches that name on any port, ``NAME:PORT`` only on that port.

Pure logic: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
DEFAULT_HTTP_PORT = 80

_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_.-]{0,252})$")
_IPV6 = re.compile(r"^[0-9a-f:.]{2,45}$")


def split_host(value: str) -> tuple[str, int | None]:
    """A ``Host`` header (``name``, ``name:port``, ``[v6]:port``) as ``(name, port)``: the name
    in lower case without brackets or a trailing dot, the port or None; ValueError when it
    is not one."""
    text = value.strip().lower()
    port: int | None = None
    if text.startswith("["):
        name, bracket, rest = text[1:].partition("]")
        if not bracket or not _IPV6.match(name):
            raise ValueError(f"not a host: {value!r}")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"not a host: {value!r}")
            port = _port(rest[1:], value)
        return name, port
    name, colon, port_text = text.partition(":")
    if colon:
        port = _port(port_text, value)
    name = name.removesuffix(".")
    if not _NAME.match(name) or ".." in name:
        raise ValueError(f"not a host: {value!r}")
    return name, port


def _port(text: str, value: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 65535:
        raise ValueError(f"not a host: {value!r}")
    return int(text)


class HostPolicy:
    """The ``Host`` headers one dashboard answers; :meth:`bind` tells it the listening port
    once the socket is open (``--listen …:0`` picks one)."""

    def __init__(self, listen_host: str, public_hosts: Iterable[str] = ()) -> None:
        self._own = {*LOOPBACK_NAMES, listen_host.strip("[]").lower()}
        self._public: set[tuple[str, int | None]] = set()
        for name in public_hosts:
            self._public.add(split_host(name))
        self._port: int | None = None

    def bind(self, port: int) -> None:
        self._port = port

    def allows(self, host_header: str | None) -> bool:
        """True when a request with this ``Host`` header is meant for this dashboard."""
        if not host_header:
            return False
        try:
            name, port = split_host(host_header)
        except ValueError:
            return False
        if (name, None) in self._public or (name, port) in self._public:
            return True
        if port is None:
            port = DEFAULT_HTTP_PORT
        return name in self._own and port == self._port

    def names(self) -> list[str]:
        """What it answers, for the refusal's text and the log."""
        port = f":{self._port}" if self._port is not None else ""
        own = [f"[{n}]{port}" if ":" in n else f"{n}{port}" for n in sorted(self._own)]
        public = [n if p is None else f"{n}:{p}" for n, p in sorted(self._public, key=str)]
        return own + public
