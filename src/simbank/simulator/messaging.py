"""SMS (27.005 text and PDU mode) and USSD commands of a simulated modem."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from simbank.simulator.at_server import DIAL_RE, Command, Kind
from simbank.simulator.pdu import PduError, Submit, decode_submit
from simbank.simulator.reports import now_utc, report_later
from simbank.simulator.results import Reply, cme, cms, plain
from simbank.simulator.sim import Behaviour
from simbank.simulator.sim_gate import sim_ready
from simbank.simulator.sms_storage import StorageCommands
from simbank.simulator.ussd import cusd_line, decode_request

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
        self.storage = StorageCommands(modem)
        self.table: dict[str, Callable[[Command], Reply]] = {
            "+CMGF": self._cmgf,
            "+CMGS": self._cmgs,
            "+CNMI": self._cnmi,
            "+CMGR": self.storage.cmgr,
            "+CMGD": self.storage.cmgd,
            "+CMGL": self.storage.cmgl,
            "+CPMS": self.storage.cpms,
            "+CSCS": lambda c: _ok('+CSCS: "GSM"') if c.kind is Kind.READ else _ok(),
            "+CSMP": self._csmp,
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
        if value == 0 and not self.m.habits.has_pdu_mode:
            raise cms(303)  # a text-only model (its AT+CMGF=? says (1))
        self.m.settings.cmgf = int(value or 0)
        return _ok()

    def _cnmi(self, c: Command) -> Reply:
        """``AT+CNMI=<mode>,<mt>,<bm>,<ds>,<bfr>``: ``<mt>`` routes new messages, ``<ds>``
        status reports (0 none, 1 ``+CDS``, 2 stored and ``+CDSI``; see ``reports``)."""
        sms = self.m.sms_settings
        if c.kind is Kind.READ:
            return _ok(f"+CNMI: 2,{self.m.settings.cnmi_mt},0,{sms.ds},0")
        mt, ds = c.int_arg(1, 0), c.int_arg(3, 0)
        if mt not in (0, 1, 2, 3) or ds not in (0, 1, 2):
            raise cms(302)
        self.m.settings.cnmi_mt = mt
        sms.ds = int(ds or 0)
        return _ok()

    def _csmp(self, c: Command) -> Reply:
        """``AT+CSMP=<fo>,<vp>,<pid>,<dcs>``: a text-mode SUBMIT's first octet (0x20 asks a
        status report) and validity; PID and DCS are taken and ignored."""
        sms = self.m.sms_settings
        if c.kind is Kind.READ:
            return _ok(f"+CSMP: {sms.first_octet},{sms.validity},0,0")
        first, validity = c.int_arg(0, sms.first_octet), c.int_arg(1, sms.validity)
        if first is None or validity is None or not 0 <= first <= 255 or not 0 <= validity <= 255:
            raise cms(302)
        if first & 0x03 != 0x01:
            raise cms(302)  # text mode sends SMS-SUBMITs only
        sms.first_octet, sms.validity = first, validity
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
            return Reply(final=cms(331).render(m.cmee))
        submit: Submit | None = None
        if number == PDU_TARGET:
            try:
                submit = decode_submit(text, self._pdu_length)
            except PduError as error:
                m.log.info("simulator_bad_pdu", reason=str(error))
                return Reply(final=cms(304).render(m.cmee))
            number, text = submit.destination, submit.text
        m.carrier.sms_attempt(sim.iccid, sim.operator)
        if m.carrier.is_blocked(sim.iccid) or sim.behaviour is Behaviour.BARRED:
            m.carrier.stats.sms_rejected += 1
            return Reply(final=cms(500).render(m.cmee))
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
        wants_report = (
            submit.status_report if submit is not None else bool(m.sms_settings.first_octet & 0x20)
        )
        if wants_report:
            m.spawn(report_later(m, sim, m.message_ref, number, now_utc()), "status-report")
        return _ok(f"+CMGS: {m.message_ref}")

    # -- USSD --------------------------------------------------------------------------------
    def _cusd(self, c: Command) -> Reply:
        """``AT+CUSD=<n>[,<str>[,<dcs>]]``: the request decoded as the model wants it
        (``Habits.ussd_request``), answered by the network (``SimCard.ussd``) and presented in
        the model's coding, after the ``OK`` or before it (``Habits``; modem-realism §B15, F4-F6).
        ``AT+CUSD=2`` cancels the session."""
        m = self.m
        if c.kind is Kind.READ:
            return _ok(f"+CUSD: {m.settings.cusd_n}")
        n = c.int_arg(0, 0)
        if n not in (0, 1, 2):
            raise cme(50)
        m.settings.cusd_n = n
        code = c.arg(1)
        if n == 2:
            m.cancel("ussd")
            if m.sim is not None:
                m.sim.ussd_session = None
            return _ok()
        if code is None:
            return _ok()
        sim = sim_ready(self.m)
        if not m.reg.registered:
            raise cme(30)
        habits = m.habits
        request = decode_request(code, habits.ussd_request)
        if request is None:  # text to a model that wants packed GSM-7 hex (A10, F5)
            raise plain()
        m.carrier.stats.ussd += 1
        answer = sim.ussd(request)
        line = cusd_line(answer, habits.ussd_coding)
        if answer.status == 4 and habits.ussd_unsupported_cme:
            return Reply([line], cme(100).render(m.cmee))
        m.run_named("ussd", self._ussd_reply(line, m.serving_port, release=answer.status == 0))
        return Reply(final=None) if habits.ussd_before_ok else _ok()

    async def _ussd_reply(self, line: str, port: int, *, release: bool = False) -> None:
        """The network's answer after ``Timing.ussd_s``: a URC after the ``OK``, or the
        ``+CUSD`` line then the held ``OK`` on the asking ``port`` (B15); a bare ``+CUSD: 2``
        after a completed answer on a model that releases the session so (F6)."""
        m = self.m
        await m.clock.sleep(m.timing.ussd_s)
        if m.habits.ussd_before_ok:
            m.late_answer(line, "OK", port)
        else:
            m.urc(line)
        if release and m.habits.ussd_extra_release:
            m.urc("+CUSD: 2")
