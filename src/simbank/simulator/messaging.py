"""SMS (27.005 text and PDU mode) and USSD commands of a simulated modem."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from simbank.simulator.at_server import DIAL_RE, Command, Kind
from simbank.simulator.pdu import PduError, Submit, decode_submit
from simbank.simulator.results import Reply, cme, cms
from simbank.simulator.sim import Behaviour
from simbank.simulator.sim_gate import sim_ready

if TYPE_CHECKING:
    from simbank.simulator.modem import SimulatedModem


# ``awaiting_sms`` while a PDU-mode prompt is open (never a valid text-mode destination).
PDU_TARGET = "pdu"


def _ok(*lines: str) -> Reply:
    return Reply(list(lines))


class MessagingCommands:
    """CMGF/CMGS/CNMI/CMGR/CMGD/CMGL/CPMS/CSCA/CSCS/CSMP and CUSD."""

    def __init__(self, modem: SimulatedModem) -> None:
        self.m = modem
        self._pdu_length = 0  # the TPDU length the open PDU-mode prompt expects
        self.table: dict[str, Callable[[Command], Reply]] = {
            "+CMGF": self._cmgf,
            "+CMGS": self._cmgs,
            "+CNMI": self._cnmi,
            "+CMGR": self._cmgr,
            "+CMGD": self._cmgd,
            "+CMGL": self._cmgl,
            "+CPMS": self._cpms,
            "+CSCS": lambda c: _ok('+CSCS: "GSM"') if c.kind is Kind.READ else _ok(),
            "+CSMP": lambda _c: _ok(),
            "+CSCA": lambda c: _ok('+CSCA: "+15550100000",145') if c.kind is Kind.READ else _ok(),
            "+CUSD": self._cusd,
        }

    # -- SMS ---------------------------------------------------------------------------------
    def _cmgf(self, c: Command) -> Reply:
        if c.kind is Kind.READ:
            return _ok(f"+CMGF: {self.m.settings.cmgf}")
        value = c.int_arg(0, 0)
        if value not in (0, 1):
            raise cms(302)
        self.m.settings.cmgf = int(value or 0)
        return _ok()

    def _cnmi(self, c: Command) -> Reply:
        if c.kind is Kind.READ:
            return _ok(f"+CNMI: 2,{self.m.settings.cnmi_mt},0,0,0")
        mt = c.int_arg(1, 0)
        if mt not in (0, 1, 2, 3):
            raise cms(302)
        self.m.settings.cnmi_mt = mt
        return _ok()

    def _cmgs(self, c: Command) -> Reply:
        if c.kind is not Kind.SET or not c.args:
            raise cms(302)
        sim_ready(self.m, sms=True)
        if self.m.settings.cmgf == 1:
            target = c.arg(0, "") or ""
            if not DIAL_RE.match(target):
                raise cms(305)
        else:
            length = c.int_arg(0)
            if length is None or not 1 <= length <= 255:
                raise cms(304)
            target = PDU_TARGET
            self._pdu_length = length
        if not self.m.reg.registered:
            raise cms(331)
        self.m.awaiting_sms = target
        return Reply(final=None, prompt=True)

    def sms_submitted(self, number: str, text: str) -> Reply:
        """Text (or, in PDU mode, the hex PDU) typed after the prompt was sent with Ctrl-Z.

        PDU mode: the PDU is decoded by the modem's own decoder (``simulator.pdu``); a bad
        one is ``+CMS ERROR: 304`` and never reaches the carrier. Each accepted segment
        counts as one SMS against the carrier's limits, exactly like a text-mode SMS.
        """
        m = self.m
        sim = m.sim
        if sim is None or not m.reg.registered:
            return Reply(final=cms(331).render(m.settings.cmee))
        submit: Submit | None = None
        if number == PDU_TARGET:
            try:
                submit = decode_submit(text, self._pdu_length)
            except PduError as error:
                m.log.info("simulator_bad_pdu", reason=str(error))
                return Reply(final=cms(304).render(m.settings.cmee))
            number, text = submit.destination, submit.text
        m.carrier.sms_attempt(sim.iccid, sim.operator)
        if m.carrier.is_blocked(sim.iccid) or sim.behaviour is Behaviour.BARRED:
            m.carrier.stats.sms_rejected += 1
            return Reply(final=cms(500).render(m.settings.cmee))
        m.message_ref = (m.message_ref + 1) % 256
        m.sent_sms.append((number, text))
        concat = submit.concat if submit is not None else None
        m.carrier.record_segment(
            sim.iccid,
            number,
            text,
            coding=submit.coding.value if submit is not None else "text",
            message_reference=m.message_ref,
            concat=(concat.reference, concat.total, concat.sequence) if concat else None,
            status_report=submit.status_report if submit is not None else False,
        )
        return _ok(f"+CMGS: {m.message_ref}")

    def _cmgr(self, c: Command) -> Reply:
        sim = sim_ready(self.m, sms=True)
        index = c.int_arg(0)
        message = sim.sms.get(index) if index is not None else None
        if message is None:
            raise cms(321)
        if self.m.settings.cmgf == 0:
            raise cms(303)
        status = "REC READ" if message.read else "REC UNREAD"
        message.read = True
        return _ok(f'+CMGR: "{status}","{message.sender}",,"{message.timestamp}"', message.text)

    def _cmgd(self, c: Command) -> Reply:
        sim = sim_ready(self.m, sms=True)
        index, flag = c.int_arg(0), c.int_arg(1, 0)
        if flag == 4:
            sim.sms.clear()
        elif index is not None:
            sim.sms.pop(index, None)
        return _ok()

    def _cmgl(self, c: Command) -> Reply:
        sim = sim_ready(self.m, sms=True)
        if self.m.settings.cmgf == 0:
            raise cms(303)
        wanted = c.arg(0, "REC UNREAD")
        lines: list[str] = []
        for message in sorted(sim.sms.values(), key=lambda msg: msg.index):
            status = "REC READ" if message.read else "REC UNREAD"
            if wanted not in ("ALL", status):
                continue
            lines += [
                f'+CMGL: {message.index},"{status}","{message.sender}",,"{message.timestamp}"',
                message.text,
            ]
            message.read = True
        return Reply(lines)

    def _cpms(self, c: Command) -> Reply:
        sim = sim_ready(self.m, sms=True)
        used = len(sim.sms)
        if c.kind is Kind.READ:
            return _ok(f'+CPMS: "SM",{used},30,"SM",{used},30,"SM",{used},30')
        return _ok(f"+CPMS: {used},30,{used},30,{used},30")

    # -- USSD --------------------------------------------------------------------------------
    def _cusd(self, c: Command) -> Reply:
        m = self.m
        if c.kind is Kind.READ:
            return _ok(f"+CUSD: {m.settings.cusd_n}")
        n = c.int_arg(0, 0)
        if n not in (0, 1, 2):
            raise cme(50)
        m.settings.cusd_n = n
        code = c.arg(1)
        if n == 2 or code is None:
            return _ok()
        sim = sim_ready(self.m)
        if not m.reg.registered:
            raise cme(30)
        m.carrier.stats.ussd += 1
        m.run_named("ussd", self._ussd_reply(sim.ussd_reply))
        return _ok()

    async def _ussd_reply(self, text: str) -> None:
        await self.m.clock.sleep(self.m.timing.ussd_s)
        self.m.urc(f'+CUSD: 0,"{text}",15')
