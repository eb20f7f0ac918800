"""A modem's second AT port: its own PTY, framer, echo and CMEE, the modem's one radio.

Real modems expose several AT-capable USB interfaces (Quectel ``ttyUSB2`` "AT" and ``ttyUSB3``
"modem", SIMCom ``ttyUSB2``/``3``, Huawei ``pcui`` and ``modem``). A PBX (chan_quectel,
chan_dongle) holds one of them while simbankd holds the other. Each interface frames its own
command lines, has its own echo and ``AT+CMEE`` setting and its own pending output; everything
else is the modem's: the SIM, the registration, the call (``ATD``/``ATH``/``ATA``/``AT+CLCC``
on either port act on the same call), the settings that decide URCs. Unsolicited lines go to
one port only, the modem's ``urc_port``.

The link is ``<directory>/<modem id>.at2`` (``SimulatedModem.aux_link``). Commands run through
the modem's own handlers (``SimulatedModem.handle_event`` with port 2); this class is only the
wire. It has none of port 1's byte habits (gluing, chunking): it is the clean interface.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from simbank.simulator.at_server import Event, LineFramer
from simbank.simulator.pty import PtyPort
from simbank.simulator.results import Reply

if TYPE_CHECKING:
    from simbank.simulator.modem import SimulatedModem

#: Command lines (events) queued on the port before input is dropped, as on port 1.
MAX_QUEUED = 32
#: This port's number on its modem.
PORT = 2


class AuxPort:
    """The second AT interface of one ``SimulatedModem``."""

    def __init__(self, modem: SimulatedModem, link: Path) -> None:
        self.modem = modem
        self.link = link
        self.echo = True
        self.cmee = 0
        self._port = PtyPort(link, self._on_data)
        self._framer = LineFramer()
        self._events: asyncio.Queue[Event] = asyncio.Queue(MAX_QUEUED)

    @property
    def plugged(self) -> bool:
        """True while the PTY exists."""
        return self._port.is_open

    def open(self) -> None:
        """Create the PTY and point the link at it."""
        self._port.open()

    def close(self) -> None:
        """Remove the PTY and the link (unplug)."""
        self._port.close()

    def reset_settings(self) -> None:
        """``ATZ`` on this port, or the modem's boot: echo on (unless the model keeps it), CMEE 0."""
        if self.modem.habits.echo_after_reset:
            self.echo = True
        self.cmee = 0

    def reset_input(self) -> None:
        """Forget a half-typed line and queued commands (boot, replug)."""
        self._framer = LineFramer()
        while not self._events.empty():
            self._events.get_nowait()

    # -- output ----------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Raw bytes to this port's client (nothing while unplugged)."""
        if self.plugged:
            self._port.write(data)

    def line(self, text: str) -> None:
        """An unsolicited line (or a call's end) framed as the model frames URCs."""
        m = self.modem
        if m.hung or m.booting or not self.plugged:
            return
        end = "\r\r\n" if m.habits.crcrlf else "\r\n"
        self.write(f"{end}{text}{end}".encode("latin-1"))

    def _reply(self, reply: Reply) -> None:
        self.write(reply.framed().encode("latin-1"))

    # -- input -----------------------------------------------------------------------------
    def _on_data(self, data: bytes) -> None:
        m = self.modem
        if m.hung or m.booting:
            return
        if self.echo:
            self.write(data)
        for event in self._framer.feed(data):
            try:
                self._events.put_nowait(event)
            except asyncio.QueueFull:
                m.log.warning("simulator_input_dropped", port=PORT)

    async def process(self) -> None:
        """The port's command loop (a task of the modem's): one command line at a time."""
        m = self.modem
        while True:
            event = await self._events.get()
            if m.hung or m.booting:
                continue
            if m.slow_s > 0:
                await asyncio.sleep(m.slow_s)
            reply = m.handle_event(event, PORT)
            if reply is not None and not m.hung:
                self._reply(reply)
                if reply.prompt:
                    self._framer.enter_text_mode()
