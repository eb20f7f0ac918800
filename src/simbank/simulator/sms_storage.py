"""The SIM's message storage as a simulated modem shows it: ``AT+CMGR``, ``AT+CMGL``,
``AT+CMGD`` and ``AT+CPMS`` (27.005 §3.4.3, §3.4.2, §3.5.4, §3.2.2), in text and PDU mode.

PDU mode (``AT+CMGF=0``): ``<stat>`` is a number (0 received unread, 1 received read, 4 all;
a text-mode name such as ``"ALL"`` is ``+CMS ERROR: 302``), each entry is
``+CMGL: <index>,<stat>,,<length>`` / ``+CMGR: <stat>,,<length>`` and the PDU line (SMSC
prefix included, ``<length>`` counting the octets after it). Text mode shows each stored part
as its own message, as real modems do. Reading marks a message read in both modes.
``AT+CPMS="SR"`` switches the three commands to the status reports stored with ``<ds>`` = 2
(27.005 §3.4.1); a report reads in text mode as ``<stat>,<fo>,<mr>,"<ra>",<tora>,"<scts>",
"<dt>",<st>`` with no text line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simbank.simulator.at_server import Command, Kind
from simbank.simulator.deliver_pdu import deliver_parts
from simbank.simulator.reports import now_utc
from simbank.simulator.results import Reply, cms
from simbank.simulator.sim import StoredSms
from simbank.simulator.sim_gate import sim_ready
from simbank.simulator.sms_settings import MEMORIES

if TYPE_CHECKING:
    from simbank.simulator.modem import SimulatedModem

#: Entries each storage holds, as ``AT+CPMS`` reports it.
CAPACITY = 30
_TEXT_STAT = {False: "REC UNREAD", True: "REC READ"}
_ALL = 4


def stored_pdu(message: StoredSms) -> tuple[str, int]:
    """The PDU and TPDU length PDU mode shows for ``message``; one stored without a PDU
    (``SimCard.store_sms`` called directly) is encoded now, as much as fits one PDU."""
    if message.pdu:
        return message.pdu, message.tpdu_length
    first = deliver_parts(message.sender, message.text, now_utc())[0]
    return first.pdu, first.tpdu_length


class StorageCommands:
    """CMGR/CMGL/CMGD/CPMS of one modem, on the storage ``AT+CPMS`` selected."""

    def __init__(self, modem: SimulatedModem) -> None:
        self.m = modem

    def _store(self) -> dict[int, StoredSms]:
        sim = sim_ready(self.m, sms=True)
        return sim.reports if self.m.sms_settings.memory == "SR" else sim.sms

    def cmgr(self, c: Command) -> Reply:
        """``AT+CMGR=<index>``."""
        store = self._store()
        index = c.int_arg(0)
        message = store.get(index) if index is not None else None
        if message is None:
            raise cms(321)
        was_read, message.read = message.read, True
        if self.m.settings.cmgf == 0:
            pdu, length = stored_pdu(message)
            return Reply([f"+CMGR: {int(was_read)},,{length}", pdu])
        status = _TEXT_STAT[was_read]
        if message.report is not None:
            return Reply([f'+CMGR: "{status}",{message.report}'])
        header = f'+CMGR: "{status}","{message.sender}",,"{message.timestamp}"'
        return Reply([header, message.text])

    def cmgl(self, c: Command) -> Reply:
        """``AT+CMGL[=<stat>]`` (default: received unread)."""
        store = self._store()
        pdu_mode = self.m.settings.cmgf == 0
        if pdu_mode:
            raw = c.arg(0, "0") or "0"
            if not raw.isdigit() or int(raw) > _ALL:
                raise cms(302)
            wanted: int | str = int(raw)
        else:
            wanted = c.arg(0, "REC UNREAD") or "REC UNREAD"
        lines: list[str] = []
        for message in sorted(store.values(), key=lambda msg: msg.index):
            stat = int(message.read)
            status = _TEXT_STAT[message.read]
            if pdu_mode and wanted in (_ALL, stat):
                pdu, length = stored_pdu(message)
                lines += [f"+CMGL: {message.index},{stat},,{length}", pdu]
            elif not pdu_mode and wanted in ("ALL", status):
                if message.report is not None:
                    lines.append(f'+CMGL: {message.index},"{status}",{message.report}')
                else:
                    header = (
                        f'+CMGL: {message.index},"{status}","{message.sender}",,'
                        f'"{message.timestamp}"'
                    )
                    lines += [header, message.text]
            else:
                continue
            message.read = True
        return Reply(lines)

    def cmgd(self, c: Command) -> Reply:
        """``AT+CMGD=<index>[,<delflag>]``: 1-3 delete every read message, 4 every one."""
        store = self._store()
        index, flag = c.int_arg(0), c.int_arg(1, 0)
        if flag == _ALL:
            store.clear()
        elif flag in (1, 2, 3):
            for number in [n for n, message in store.items() if message.read]:
                del store[number]
        elif index is not None:
            store.pop(index, None)
        return Reply([])

    def cpms(self, c: Command) -> Reply:
        """``AT+CPMS?`` / ``AT+CPMS=<mem1>[,…]``: only ``<mem1>`` (read/list/delete) matters."""
        sim = sim_ready(self.m, sms=True)
        if c.kind is not Kind.READ:
            memory = (c.arg(0, "SM") or "SM").upper()
            if memory not in MEMORIES:
                raise cms(302)
            self.m.sms_settings.memory = memory
        memory = self.m.sms_settings.memory
        used = len(sim.reports if memory == "SR" else sim.sms)
        messages = len(sim.sms)
        if c.kind is Kind.READ:
            return Reply(
                [
                    f'+CPMS: "{memory}",{used},{CAPACITY},"SM",{messages},{CAPACITY},'
                    f'"SM",{messages},{CAPACITY}'
                ]
            )
        return Reply([f"+CPMS: {used},{CAPACITY},{messages},{CAPACITY},{messages},{CAPACITY}"])
