"""A test "PBX": the client that dials on a modem's second AT port, as chan_quectel would.

A call centre's PBX holds one AT port of a modem and simbankd the other (docs/pbx.md). End to
end tests play that PBX with :class:`Pbx`: ask simbank ``call/authorize``, dial on the port it
names (``SimulatedBank.aux_port``), wait until the far end answers, hang up, send
``call/complete``::

    async with Pbx(bank.aux_port("m1")) as pbx:
        await pbx.dial("+15550100123")
        await pbx.wait_connected()
        await pbx.hangup()

It opens the port through pyserial-asyncio-fast, as the daemon does, turns echo off and sends
one command at a time, each bounded by ``timeout_s`` (real seconds). Lines that come between
commands (``NO CARRIER``, ``BUSY``, URCs when the port is the modem's URC port) are kept in
``unsolicited``. On a modem's URC port after ``AT+CLCC=1`` a ``+CLCC`` URC cannot be told from a
line of an ``AT+CLCC`` answer: there, read the URCs (``wait_unsolicited``) instead of polling. The helper talks to any AT port, simulated or not, and knows nothing of the
simulator's insides.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import serial_asyncio_fast

#: Final results of an ordinary command.
FINALS = re.compile(r"^(OK|ERROR|\+CME ERROR:.*|\+CMS ERROR:.*|COMMAND NOT SUPPORT)$")
#: What else may end an ``ATD`` (B2: late finals; ``CONNECT`` on ZTE-like models).
DIAL_FINALS = re.compile(r"^(NO CARRIER|BUSY|NO ANSWER|NO DIALTONE|CONNECT.*)$")
CLCC_LINE = re.compile(r'^\+CLCC: (\d+),([01]),(\d+),(\d+),(\d+)(?:,"([^"]*)",(\d+))?')
#: ``+CLCC`` stats (6: SIMCom's "disconnected", in its URC only).
ACTIVE, DIALING, ALERTING, DISCONNECTED = 0, 2, 3, 6
DEFAULT_TIMEOUT_S = 10.0
POLL_S = 0.05


class PbxError(Exception):
    """A command failed, or the call ended: ``result`` is the line that said so (``BUSY``,
    ``+CME ERROR: 30``…; ``""`` for a timeout or a call that vanished without a line)."""

    def __init__(self, message: str, result: str = "") -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class ListedCall:
    """One ``+CLCC`` line."""

    index: int
    incoming: bool
    stat: int
    number: str

    @classmethod
    def parse(cls, line: str) -> ListedCall | None:
        """The call on a ``+CLCC:`` line, or None if the line is no call (or garbled)."""
        found = CLCC_LINE.match(line)
        if found is None:
            return None
        return cls(int(found[1]), found[2] == "1", int(found[3]), found[6] or "")


class Pbx:
    """An AT client on one port that places voice calls (an asyncio context manager)."""

    def __init__(
        self,
        path: Path | str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        poll_s: float = POLL_S,
        baudrate: int = 115200,
    ) -> None:
        self.path = str(path)
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.baudrate = baudrate
        #: Lines that arrived outside a command's answer, oldest first.
        self.unsolicited: list[str] = []
        #: The number of the call this PBX placed (None before ``dial``).
        self.number: str | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lines: asyncio.Queue[str] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def open(self) -> None:
        """Open the port, sync with ``AT`` and turn echo off."""
        async with asyncio.timeout(self.timeout_s):
            self._reader, self._writer = await serial_asyncio_fast.open_serial_connection(
                url=self.path, baudrate=self.baudrate
            )
        self._pump = asyncio.get_running_loop().create_task(
            self._read_lines(), name=f"pbx-{self.path}"
        )
        await self.command("AT")
        await self.command("ATE0")

    async def close(self) -> None:
        """Stop reading and close the port (a call in progress is left as it is)."""
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await self._writer.wait_closed()
            self._writer = None

    async def __aenter__(self) -> Self:
        try:
            await self.open()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _read_lines(self) -> None:
        reader = self._reader
        assert reader is not None
        while True:
            try:
                raw = await reader.readline()
            except OSError:  # pyserial's SerialException: the port is gone (unplugged)
                return
            if not raw:
                return  # the port is gone: a pending command times out
            text = raw.decode("latin-1").strip()
            if text:
                self._lines.put_nowait(text)

    async def wait_unsolicited(self, pattern: str) -> str:
        """The first line outside a command's answer that matches ``pattern`` (a regex, from
        the line's start): taken from ``unsolicited`` (and removed) or awaited."""
        wanted = re.compile(pattern)
        try:
            async with asyncio.timeout(self.timeout_s):
                while True:
                    while not self._lines.empty():
                        self.unsolicited.append(self._lines.get_nowait())
                    for index, line in enumerate(self.unsolicited):
                        if wanted.match(line):
                            del self.unsolicited[index]
                            return line
                    self.unsolicited.append(await self._lines.get())
        except TimeoutError:
            raise PbxError(f"{self.path}: no line like {pattern!r}") from None

    # -- commands --------------------------------------------------------------------------
    async def command(self, text: str, *, dial: bool = False) -> list[str]:
        """Send ``text`` and return its information lines; ``PbxError`` unless it ends ``OK``
        (with ``dial``, ``NO CARRIER``/``BUSY``/``NO ANSWER`` also end it, as failures)."""
        writer = self._writer
        if writer is None:
            raise PbxError(f"{self.path}: not open")
        while not self._lines.empty():
            self.unsolicited.append(self._lines.get_nowait())
        writer.write(text.encode("latin-1") + b"\r")
        lines: list[str] = []
        try:
            async with asyncio.timeout(self.timeout_s):
                while True:
                    line = await self._lines.get()
                    if line == text:
                        continue  # our own echo (before ATE0 took effect)
                    if FINALS.match(line) or (dial and DIAL_FINALS.match(line)):
                        break
                    if DIAL_FINALS.match(line):
                        self.unsolicited.append(line)  # a call ended while we asked
                        continue
                    lines.append(line)
        except TimeoutError:
            raise PbxError(f"{self.path}: {text}: no final result") from None
        if line != "OK" and not line.startswith("CONNECT"):
            raise PbxError(f"{self.path}: {text}: {line}", line)
        return lines

    async def dial(self, number: str) -> None:
        """``ATD<number>;``: returns once the modem accepted it (``OK``; ``CONNECT`` on a model
        that answers the dial late), else ``PbxError`` with the result."""
        self.number = number
        await self.command(f"ATD{number};", dial=True)

    async def calls(self) -> list[ListedCall]:
        """``AT+CLCC``: every call the modem carries, whichever port placed it."""
        listed = (ListedCall.parse(line) for line in await self.command("AT+CLCC"))
        return [call for call in listed if call is not None]

    async def placed_call(self) -> ListedCall | None:
        """The outgoing call this PBX dialled, as ``AT+CLCC`` lists it now (None: gone)."""
        for call in await self.calls():
            if call.stat == DISCONNECTED:
                continue  # a SIMCom +CLCC URC taken for a line of the answer: the call is gone
            if not call.incoming and (self.number is None or call.number == self.number):
                return call
        return None

    async def wait_state(self, *stats: int) -> ListedCall | None:
        """Poll ``AT+CLCC`` until the dialled call is in one of ``stats`` (its entry) or gone
        (None); ``PbxError`` after ``timeout_s``."""
        try:
            async with asyncio.timeout(self.timeout_s):
                while True:
                    call = await self.placed_call()
                    if call is None or call.stat in stats:
                        return call
                    await asyncio.sleep(self.poll_s)
        except TimeoutError:
            raise PbxError(f"{self.path}: the call never reached stat {stats}") from None

    async def wait_connected(self) -> ListedCall:
        """Wait until the far end answers (``+CLCC`` stat 0); ``PbxError`` if the call ends
        first (``result``: the line that ended it, e.g. ``BUSY``, if one came)."""
        call = await self.wait_state(ACTIVE)
        if call is None:
            ended = next((x for x in reversed(self.unsolicited) if DIAL_FINALS.match(x)), "")
            raise PbxError(f"{self.path}: the call ended before it was answered", ended)
        return call

    async def hangup(self) -> None:
        """``ATH``: end the modem's call (OK with no call too)."""
        await self.command("ATH")
