"""A private mosquitto on a free loopback port, for the demo and the tests.

Never used in production: there the operator's broker is configured in [mqtt]. Starting it
blocks for the fraction of a second mosquitto needs to listen, so the async face runs the
start in a worker thread.

The security tests need the broker a production gateway runs: a password file made by
``mosquitto_passwd`` (:func:`make_password_file`), an ACL file, and a TLS listener next to
the plain one (:class:`TlsListener`). Every listener binds 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from simbank.errors import SimbankError

INSTALL_HINT = "mosquitto is not installed: run `sudo apt-get install -y mosquitto`"
START_TIMEOUT_S = 10.0
PASSWD_TIMEOUT_S = 10.0
DEFAULT_LOG_TYPES = ("error", "warning", "notice")


def find_mosquitto() -> str:
    """Path of the mosquitto binary (Debian puts it in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise SimbankError(INSTALL_HINT)
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_password_file(path: Path, users: Mapping[str, str]) -> Path:
    """Write a mosquitto password file for ``users`` (name → password) with ``mosquitto_passwd``,
    hashed exactly as an operator would make it; returns ``path``."""
    tool = shutil.which("mosquitto_passwd") or shutil.which(
        "mosquitto_passwd", path="/usr/bin:/usr/sbin:/usr/local/bin"
    )
    if not tool:
        raise SimbankError(INSTALL_HINT)
    path.parent.mkdir(parents=True, exist_ok=True)
    for index, (user, password) in enumerate(users.items()):
        create = ["-c"] if index == 0 else []
        result = subprocess.run(
            [tool, "-b", *create, str(path), user, password],
            capture_output=True,
            timeout=PASSWD_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            # The command line holds the password: report the user and the tool's own words.
            detail = result.stderr.decode(errors="replace").strip()
            raise SimbankError(f"mosquitto_passwd failed for user {user!r}: {detail}")
    path.chmod(0o600)
    return path


@dataclass(frozen=True, slots=True)
class TlsListener:
    """A TLS listener on its own loopback port: the server's certificate and key, and the CA
    that client certificates must chain to (required with ``require_certificate``)."""

    cafile: Path
    certfile: Path
    keyfile: Path
    require_certificate: bool = False
    use_identity_as_username: bool = False

    def conf(self, port: int) -> str:
        return (
            f"listener {port} 127.0.0.1\n"
            f"cafile {self.cafile}\n"
            f"certfile {self.certfile}\n"
            f"keyfile {self.keyfile}\n"
            f"require_certificate {str(self.require_certificate).lower()}\n"
            f"use_identity_as_username {str(self.use_identity_as_username).lower()}\n"
        )


class PrivateMosquitto:
    """A mosquitto listening on 127.0.0.1:``port``; ``start()``/``stop()`` or ``async with``.

    With ``password_file`` anonymous clients are refused (unless ``allow_anonymous`` says
    otherwise); ``acl_file`` limits what each user may read and write; ``tls`` adds a TLS
    listener on ``tls_port``. ``extra_conf`` goes after the general settings, before the TLS
    listener, so listener options in it apply to the plain listener as they always did.

    ``template`` is a complete mosquitto.conf used instead (a shipped example, rewritten by a
    test): ``{port}``, ``{tls_port}`` and ``{log_path}`` in it are filled in, and a TLS port is
    picked when it names ``{tls_port}``.
    """

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        extra_conf: str = "",
        *,
        password_file: Path | None = None,
        acl_file: Path | None = None,
        tls: TlsListener | None = None,
        allow_anonymous: bool | None = None,
        log_types: tuple[str, ...] = DEFAULT_LOG_TYPES,
        template: str | None = None,
    ) -> None:
        self.directory = directory
        self._fixed_port = port is not None
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self._extra = extra_conf
        self.password_file = password_file
        self.acl_file = acl_file
        self.tls = tls
        self._template = template
        wants_tls = tls is not None or (template is not None and "{tls_port}" in template)
        self.tls_port: int | None = self._other_port() if wants_tls else None
        self.allow_anonymous = password_file is None if allow_anonymous is None else allow_anonymous
        self._log_types = log_types
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_path = directory / "mosquitto.log"

    def _other_port(self) -> int:
        while (port := free_port()) == self.port:
            pass
        return port

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_text(self) -> str:
        """What mosquitto logged so far ("" before it started)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        """Start mosquitto; with a port we picked ourselves, retry on another if it was taken
        between our check and mosquitto's bind (tests run in parallel workers)."""
        for attempt in range(5):
            try:
                self._start_once()
            except SimbankError:
                if self._fixed_port or attempt == 4:
                    raise
                self.port = free_port()
                if self.tls_port is not None:
                    self.tls_port = self._other_port()
            else:
                return

    def _conf(self) -> str:
        # Run as root (a container, CI) mosquitto would become the "mosquitto" user, who
        # cannot read a test's private directory: its log, password and ACL files.
        as_root = "user root\n" if os.geteuid() == 0 else ""
        if self._template is not None:
            filled = (
                self._template.replace("{port}", str(self.port))
                .replace("{tls_port}", str(self.tls_port))
                .replace("{log_path}", str(self.log_path))
            )
            return f"{filled}\n{as_root}"
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {str(self.allow_anonymous).lower()}",
            "persistence false",
            f"log_dest file {self.log_path}",
            *(f"log_type {kind}" for kind in self._log_types),
        ]
        if self.password_file is not None:
            lines.append(f"password_file {self.password_file}")
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        conf = "\n".join(lines) + f"\n{as_root}{self._extra}\n"
        if self.tls is not None and self.tls_port is not None:
            conf += self.tls.conf(self.tls_port)
        return conf

    def _start_once(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "mosquitto.conf"
        conf.write_text(self._conf(), encoding="utf-8")
        proc = subprocess.Popen(
            [find_mosquitto(), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its own session: a terminal's Ctrl-C (sent to the whole foreground process
            # group) stops the demo, which then stops its broker, not the broker under it.
            start_new_session=True,
        )
        self._proc = proc
        ports = [self.port] if self.tls_port is None else [self.port, self.tls_port]
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SimbankError(f"mosquitto exited with {proc.returncode}: {self.log_text()}")
            try:
                for port in ports:
                    socket.create_connection((self.host, port), timeout=0.5).close()
            except OSError:
                time.sleep(0.05)
                continue
            return
        self.stop()
        raise SimbankError(f"mosquitto did not listen on {self.host}:{ports}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash or a power cut would."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    async def astart(self) -> None:
        await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    async def __aenter__(self) -> Self:
        await self.astart()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(OSError):
            await self.astop()
