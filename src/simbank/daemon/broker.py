"""A private mosquitto on a free loopback port, for the demo and the tests.

Never used in production: there the operator's broker is configured in [mqtt]. Starting it
blocks for the fraction of a second mosquitto needs to listen, so the async face runs the
start in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from simbank.errors import SimbankError

INSTALL_HINT = "mosquitto is not installed: run `sudo apt-get install -y mosquitto`"
START_TIMEOUT_S = 10.0


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


class PrivateMosquitto:
    """A mosquitto listening on 127.0.0.1:``port``; ``start()``/``stop()`` or ``async with``."""

    def __init__(self, directory: Path, port: int | None = None, extra_conf: str = "") -> None:
        self.directory = directory
        self._fixed_port = port is not None
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self._extra = extra_conf
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_path = directory / "mosquitto.log"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

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
            else:
                return

    def _start_once(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            f"log_dest file {self.log_path}\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            f"{self._extra}\n",
            encoding="utf-8",
        )
        proc = subprocess.Popen(
            [find_mosquitto(), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._proc = proc
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log = self.log_path.read_text() if self.log_path.exists() else ""
                raise SimbankError(f"mosquitto exited with {proc.returncode}: {log}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
            except OSError:
                time.sleep(0.05)
                continue
            return
        self.stop()
        raise SimbankError(f"mosquitto did not listen on {self.host}:{self.port}")

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
