"""GenericDriver: modem operations over plain 3GPP TS 27.007 / 27.005 AT commands (SIM,
network, radio and slots, calls, SMS, USSD).

Vendor dialects subclass it and override only what differs: the ICCID command, the slot query
and select, extra URC names and parsers, and which registration commands the modem has. The
probe, URC setup and capability probe are in :mod:`simbank.drivers.base`. Everything here goes
through the AtChannel; the parsing is done by the pure functions of ``drivers.parse``.

Past 400 lines: it is the one 27.007 operation set every dialect inherits; the parsing and the
SMS codec already live elsewhere, and splitting the operations by area would scatter the
overrides a dialect must find in one class. SMS in both 27.005 modes (sending, reading,
storage selection) is the largest part; each step is a short method over the pure parsers.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import ClassVar

from simbank.at.codes import SIM_ABSENT_CODES
from simbank.at.results import LONG, MEDIUM, Command, Response, ResultKind, line_name
from simbank.drivers.base import DriverBase, info_lines
from simbank.drivers.parse.calls import parse_ceer, parse_clcc_report
from simbank.drivers.parse.fields import first_int
from simbank.drivers.parse.identity import (
    parse_cops,
    parse_cpin,
    parse_crsm_iccid,
    parse_iccid,
    parse_imsi,
    sim_status_from_cme,
)
from simbank.drivers.parse.messaging import (
    RECEIVED_STATS,
    parse_cmgl,
    parse_cmgl_pdu,
    parse_cmgr,
    parse_cmgr_pdu,
    parse_cmgs,
    text_report,
)
from simbank.drivers.parse.plmn import EF_AD_READ, parse_ef_ad_mnc_length
from simbank.drivers.parse.registration import parse_registration
from simbank.drivers.parse.reject_causes import reject_cause_from_ceer
from simbank.drivers.parse.signal import parse_csq
from simbank.drivers.types import (
    CallCause,
    CallInfo,
    DeliveryReport,
    Operator,
    Registration,
    Signal,
    SimStatus,
    SmsMessage,
)
from simbank.drivers.ussd import request_ussd
from simbank.errors import (
    AtTimeout,
    CommandError,
    ModemUnresponsive,
    ProtocolGarbage,
    SimbankError,
)
from simbank.sms.dcs import Coding
from simbank.sms.pdu import encode_submit
from simbank.sms.segments import segment

__all__ = ["CRSM_READ_ICCID", "GenericDriver"]

# EF_ICCID (file id 2FE2 = 12258) read as 10 bytes with READ BINARY (176).
CRSM_READ_ICCID = "AT+CRSM=176,12258,0,0,10"
_DIAL_STRING = re.compile(r"\+?[0-9*#]{1,40}")
_USSD_STRING = re.compile(r"[0-9*#+]{1,160}")
_SIM_POLL_INTERVAL = 0.5
_STORAGE = re.compile(r"[A-Z]{2}")
# 27.005 §3.3.2 AT+CSMP <fo> of a text-mode SMS-SUBMIT: 17 = relative validity period;
# 49 = the same with TP-SRR (a status report requested). <vp> 167 = 24 hours.
_CSMP_REPORT = "AT+CSMP=49,167,0,0"
_CSMP_PLAIN = "AT+CSMP=17,167,0,0"
# Answers to AT+CPIN? that will not change by waiting.
_FINAL_SIM_STATES = frozenset({SimStatus.READY, SimStatus.PIN, SimStatus.PUK})


def _no_sim(response: Response) -> bool:
    return response.final.kind is ResultKind.CME_ERROR and response.final.code in SIM_ABSENT_CODES


class GenericDriver(DriverBase):
    """A 27.007 modem. ``slots`` is how many SIM slots the box wires to it (1-based API)."""

    #: Send a USSD code as packed GSM-7 hex first (a vendor that wants it says so).
    ussd_packed_first = False

    dialect: ClassVar[str] = "generic"
    #: The concatenation reference of the last multipart SMS (23.040: 0..255, one per message).
    _concat_ref: int = 0

    # -- SIM ---------------------------------------------------------------------------------

    async def sim_status(self) -> SimStatus:
        """``AT+CPIN?``; ``+CME ERROR: 10`` → ABSENT, 14 → NOT_READY (busy)."""
        response = await self._request(
            Command("AT+CPIN?", prefix="+CPIN", timeout=MEDIUM), check=False
        )
        self.last_sim_cme = None
        if response.ok:
            lines = info_lines(response, "+CPIN")
            if not lines:
                raise ProtocolGarbage("AT+CPIN? answered OK without +CPIN", raw=response.final.raw)
            return parse_cpin(lines[0])
        if response.final.kind is ResultKind.CME_ERROR:
            self.last_sim_cme = response.final.code
            return sim_status_from_cme(response.final.code)
        return SimStatus.ERROR

    async def read_iccid(self) -> str | None:
        """The dialect's ICCID command, then ``AT+CCID``, then ``AT+CRSM`` (EF_ICCID).

        ``None`` when the modem says there is no SIM (``+CME ERROR: 10``).
        """
        candidates = [*self.iccid_commands, ("AT+CCID", "+CCID")]
        seen: set[str] = set()
        problem: Exception | None = None
        for text, prefix in candidates:
            if text in seen:
                continue
            seen.add(text)
            response = await self._request(
                Command(text, prefix=prefix, timeout=MEDIUM, answers=True), check=False
            )
            if _no_sim(response):
                return None
            if not response.ok:
                continue
            for line in response.lines:
                try:
                    return parse_iccid(line)
                except ProtocolGarbage as exc:
                    problem = exc
        response = await self._request(
            Command(CRSM_READ_ICCID, prefix="+CRSM", timeout=MEDIUM), check=False
        )
        if _no_sim(response):
            return None
        if response.ok:
            lines = info_lines(response, "+CRSM")
            if lines:
                return parse_crsm_iccid(lines[0])
        if problem is not None:
            raise problem
        response.raise_for_error()
        raise ProtocolGarbage("no ICCID in any answer", raw=response.final.raw)

    async def read_imsi(self) -> str | None:
        """``AT+CIMI``; ``None`` without a SIM."""
        response = await self._request(Command("AT+CIMI", timeout=MEDIUM), check=False)
        if not response.ok:
            if response.final.kind is ResultKind.CME_ERROR:
                return None
            response.raise_for_error()
        for line in response.lines:
            try:
                return parse_imsi(line)
            except ProtocolGarbage:
                continue
        raise ProtocolGarbage("AT+CIMI: no IMSI in the answer", raw="\n".join(response.lines))

    async def read_mnc_length(self) -> int | None:
        """The MNC length (2 or 3) from EF_AD via ``AT+CRSM``; None when it cannot be read
        (the home network then comes from the MCC table: see :mod:`simbank.drivers.parse.plmn`)."""
        try:
            response = await self._request(
                Command(EF_AD_READ, prefix="+CRSM", timeout=MEDIUM), check=False
            )
        except AtTimeout:
            return None
        lines = info_lines(response, "+CRSM") if response.ok else []
        if not lines:
            return None
        try:
            return parse_ef_ad_mnc_length(lines[0])
        except ProtocolGarbage:
            return None

    async def wait_sim_ready(self, timeout: float) -> SimStatus:  # noqa: ASYNC109 (API contract)
        """Poll ``AT+CPIN?`` until READY, PIN or PUK, or ``timeout``; returns the last status.

        ABSENT and NOT_READY are waited out: right after a slot switch modems report both
        while the SIM initialises.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        status = SimStatus.NOT_READY
        while True:
            try:
                status = await self.sim_status()
            except ModemUnresponsive:
                raise  # not a SIM still initialising: the modem itself stopped answering
            except AtTimeout:
                status = SimStatus.NOT_READY
            if status in _FINAL_SIM_STATES or loop.time() + _SIM_POLL_INTERVAL > deadline:
                return status
            await asyncio.sleep(_SIM_POLL_INTERVAL)

    # -- network -----------------------------------------------------------------------------

    async def registrations(self) -> list[Registration]:
        """Current registration in every domain the modem answers for."""
        out: list[Registration] = []
        for domain in self.domains:
            if self.reg_modes and domain not in self.reg_modes:
                continue
            prefix = domain.command
            response = await self._request(Command(f"AT{prefix}?", prefix=prefix), check=False)
            if not response.ok:
                continue
            for line in info_lines(response, prefix):
                # A URC of the same prefix can arrive while the query is pending and land
                # among its answer lines; it has the unsolicited form, so try that too.
                try:
                    out.append(parse_registration(line, solicited=True))
                except ProtocolGarbage:
                    try:
                        out.append(parse_registration(line, solicited=False))
                    except ProtocolGarbage as exc:
                        self._log.warning("registration_unparsable", reason=str(exc), raw=line)
        return out

    async def signal(self) -> Signal:
        """``AT+CSQ``."""
        response = await self._request(Command("AT+CSQ", prefix="+CSQ"))
        return parse_csq(self._one(response, "+CSQ"))

    async def operator(self) -> Operator:
        """``AT+COPS?``."""
        response = await self._request(Command("AT+COPS?", prefix="+COPS", timeout=MEDIUM))
        return parse_cops(self._one(response, "+COPS"))

    # -- radio and slots ---------------------------------------------------------------------

    async def set_radio(self, on: bool) -> None:
        """``AT+CFUN=1`` or ``AT+CFUN=4`` (radio off, SIM kept powered)."""
        await self._request(Command(f"AT+CFUN={1 if on else 4}", timeout=LONG))

    async def ensure_radio_on(self) -> bool:
        """``AT+CFUN?``, then ``AT+CFUN=1`` if the radio is off (0 or 4); True if it was off.

        A daemon killed in the middle of a slot switch leaves the radio off: the next session
        must put the modem back on air rather than wait for a registration that never comes.
        """
        response = await self._request(
            Command("AT+CFUN?", prefix="+CFUN", timeout=MEDIUM), check=False
        )
        lines = info_lines(response, "+CFUN") if response.ok else []
        if not lines or first_int(lines[0], "+CFUN") not in (0, 4):
            return False
        await self.set_radio(True)
        self._log.info("radio_was_off_turned_on")
        return True

    async def reboot(self) -> None:
        """``AT+CFUN=1,1``: the modem resets; the port stays open and the boot URCs follow."""
        await self._request(Command("AT+CFUN=1,1", timeout=MEDIUM))

    async def active_slot(self) -> int:
        """The selected SIM slot, 1-based; 1 without slot switching (no command sent)."""
        if not await self._slot_switching():
            return 1
        return await self._active_slot()

    async def _active_slot(self) -> int:
        """Dialect hook: ask the modem which slot is selected (only with slot switching)."""
        return 1

    async def select_slot(self, slot: int) -> None:
        """Radio off, the dialect's slot select, radio on (also when the select fails)."""
        if not 1 <= slot <= self.slots:
            raise ValueError(f"slot {slot} outside 1..{self.slots}")
        if slot != 1 and not await self._slot_switching():
            raise CommandError(f"this {self.dialect} modem cannot switch SIM slots")
        await self.set_radio(False)
        try:
            await self._select_slot(slot)
        finally:
            await self.set_radio(True)
        self._log.info("slot_selected", slot=slot)

    async def _select_slot(self, slot: int) -> None:
        """Dialect hook: switch the SIM interface to ``slot`` (1-based), radio already off."""
        if slot != 1:
            raise CommandError(f"{self.dialect} modems have a single SIM slot")

    # -- calls, SMS, USSD --------------------------------------------------------------------

    async def dial(self, number: str) -> None:
        """``ATD<number>;`` — returns once the call is set up; the end arrives as a URC."""
        if not _DIAL_STRING.fullmatch(number):
            raise ValueError("a dial string is +, digits, * and #")
        await self._request(Command(f"ATD{number};", timeout=LONG, sensitive=True))

    async def hangup(self) -> None:
        """``ATH``."""
        await self._request(Command("ATH", timeout=MEDIUM))

    async def reject_call(self) -> str:
        """Refuse a ringing call: ``AT+CHUP`` (27.007 §6.5), else ``ATH`` (V.250, which some
        modems do not apply to a call not yet answered, and all older ones know). Returns the
        command that was accepted; ``CommandError`` when neither was."""
        if await self._accepted("AT+CHUP", MEDIUM):
            return "AT+CHUP"
        await self._request(Command("ATH", timeout=MEDIUM))
        return "ATH"

    async def list_calls(self) -> list[CallInfo]:
        """``AT+CLCC``: the calls listed. A line that cannot be read (a ``<stat>`` 27.007 does
        not know, a field missing) is logged and skipped, not the whole answer; so is a call
        listed as just ended (SIMCom's ``<stat>`` 6)."""
        response = await self._request(Command("AT+CLCC", prefix="+CLCC", sensitive=True))
        calls: list[CallInfo] = []
        for line in info_lines(response, "+CLCC"):
            try:
                report = parse_clcc_report(line)
            except ProtocolGarbage:  # neither the line nor the error: they may hold a number
                self._log.warning("clcc_line_skipped", reason="unreadable", length=len(line))
                continue
            if report.info is None:
                self._log.info("clcc_line_skipped", call_id=report.call_id, reason="ended")
                continue
            calls.append(report.info)
        return calls

    async def _ceer_line(self) -> str | None:
        """The ``+CEER`` line; None from a modem without ``+CEER``, or one that answers it
        with an error or a bare ``OK``."""
        if not self.capabilities.get("ceer", True):
            return None
        response = await self._request(Command("AT+CEER", prefix="+CEER"), check=False)
        lines = info_lines(response, "+CEER") if response.ok else []
        return lines[0] if lines else None

    async def last_call_cause(self) -> CallCause:
        """``AT+CEER``, mapped to the 24.008 cause number; unknown without an answer line."""
        line = await self._ceer_line()
        return parse_ceer(line) if line is not None else CallCause(None, "")

    async def last_reject_cause(self) -> tuple[int | None, str]:
        """``AT+CEER`` after a denial without a cause: the 24.008/24.301 reject cause it names
        (None when it names none: empty, a bare OK, a call's clearing cause) and the line."""
        line = await self._ceer_line()
        if line is None:
            return None, ""
        return reject_cause_from_ceer(line), line

    async def send_sms(self, number: str, text: str, *, status_report: bool = False) -> list[int]:
        """Send ``text`` to ``number``; the message reference of each segment, in order.

        PDU mode (27.005 ``AT+CMGF=0``) when the modem has it: one SMS-SUBMIT per segment
        (``simbank.sms``: GSM-7 or UCS-2, concatenated under one reference per message, a
        counter per driver), each ``AT+CMGS=<tpdu length>`` + the PDU hex. The modem rests in
        text mode: it is switched to PDU mode for this send only (as for a read) and back to
        text mode (``AT+CMGF=1``) afterwards, failure or not. The caller holds the modem's lock, so nothing
        interleaves. PDU mode is probed on the first send (``AT+CMGF=?`` lists 0 and
        ``AT+CMGF=0`` is accepted) and kept in ``capabilities["pdu_mode"]``.

        Text mode is the fallback: a one-segment GSM-7 text as ``AT+CMGS="<number>"``; a longer
        GSM-7 text as one plain message per segment (no concatenation header exists in text
        mode); a text outside GSM-7 cannot be sent (``CommandError`` before anything is). A
        status report is requested in text mode through the first octet ``AT+CSMP`` sets
        (27.005 §3.3.2: ``49`` = SUBMIT + relative validity + TP-SRR, ``17`` without it, put
        back after); a modem that refuses it sends without one (logged).

        A segment that fails raises (the caller booked every segment before); the log names
        which segment failed and how many went before it (never the number or the text).
        """
        if not _DIAL_STRING.fullmatch(number):
            raise ValueError("an SMS destination is +, digits, * and #")
        if "\x1a" in text or "\x1b" in text:
            raise ValueError("SMS text must not contain Ctrl-Z or ESC")
        if await self._pdu_mode():
            try:
                references = await self._send_pdus(number, text, status_report)
            except (CommandError, ProtocolGarbage):
                await self._text_mode_again()
                raise
            await self._text_mode_again()
            return references
        split = segment(text)
        if split.coding is not Coding.GSM7:
            raise CommandError(
                f"this {self.dialect} modem has no PDU mode: a text outside GSM-7 cannot be sent"
            )
        parts = [text] if split.count == 1 else list(split.parts)
        commands = [
            Command(
                f'AT+CMGS="{number}"', prefix="+CMGS", timeout=LONG, payload=part, sensitive=True
            )
            for part in parts
        ]
        if not status_report:
            return await self._submit_each(commands, mode="text")
        # Text mode takes TP-SRR from the first octet AT+CSMP sets (27.005 §3.3.2).
        requested = await self._accepted(_CSMP_REPORT)
        if not requested:
            self._log.info("sms_status_report_not_requested", reason="AT+CSMP refused")
        try:
            references = await self._submit_each(commands, mode="text")
        except (CommandError, ProtocolGarbage):
            await self._plain_submits_again(requested)
            raise
        await self._plain_submits_again(requested)
        return references

    async def _plain_submits_again(self, requested: bool) -> None:
        """Text mode's first octet without TP-SRR again, after a send that ended with an
        answer (not after a timeout or a lost port: see :meth:`_text_mode_again`)."""
        if requested and not await self._accepted(_CSMP_PLAIN):
            self._log.warning("sms_csmp_not_restored")

    async def _pdu_mode(self) -> bool:
        """Put the modem in PDU mode for a send; False (text mode kept) if it has none."""
        known = self.capabilities.get("pdu_mode")
        if known is None:
            present = await self._probe_pdu_mode()  # True leaves the modem in PDU mode
            self.capabilities["pdu_mode"] = present
            return present
        if known:
            await self._request(Command("AT+CMGF=0"))
        return known

    async def _send_pdus(self, number: str, text: str, status_report: bool) -> list[int]:
        self._concat_ref = (self._concat_ref + 1) % 256
        pdus = encode_submit(number, text, reference=self._concat_ref, status_report=status_report)
        commands = [
            Command(
                f"AT+CMGS={pdu.tpdu_length}",
                prefix="+CMGS",
                timeout=LONG,
                payload=pdu.hex,
                sensitive=True,
            )
            for pdu in pdus
        ]
        return await self._submit_each(commands, mode="pdu")

    async def _submit_each(self, commands: list[Command], *, mode: str) -> list[int]:
        """Send each ``AT+CMGS`` in order; their message references. A failure is logged with
        the segment it struck (1-based) and raised."""
        references: list[int] = []
        for command in commands:
            try:
                response = await self._request(command)
                references.append(parse_cmgs(self._one(response, "+CMGS")))
            except SimbankError as exc:
                self._log.warning(
                    "sms_segment_failed",
                    mode=mode,
                    segment=len(references) + 1,
                    segments=len(commands),
                    sent=len(references),
                    error=type(exc).__name__,
                    code=exc.code,
                )
                raise
        return references

    # -- reading stored SMS ----------------------------------------------------------------

    @asynccontextmanager
    async def _reading_mode(self) -> AsyncIterator[bool]:
        """PDU mode (``AT+CMGF=0``) for one read when the modem has it (True), text mode
        (False) otherwise; back to text mode (``AT+CMGF=1``) after, failure or not, as a send
        does. Only a ``pdu_mode`` already probed (by :meth:`probe_capabilities` or a send)
        counts: a read never probes, so a modem never asked stays in text mode."""
        if self.capabilities.get("pdu_mode") is not True:
            yield False
            return
        await self._request(Command("AT+CMGF=0"))
        try:
            yield True
        except (CommandError, ProtocolGarbage):
            await self._text_mode_again()
            raise
        await self._text_mode_again()

    async def _text_mode_again(self) -> None:
        """Back to text mode after a PDU-mode send or read that ended with an answer (good or
        bad). Not after a timeout, a lost port or a cancellation: the modem is not answering
        (or we are going away), and the session's re-sync sets the mode again anyway."""
        restored = await self._request(Command("AT+CMGF=1"), check=False)
        if not restored.ok:
            self._log.warning("sms_text_mode_not_restored", answer=restored.final.raw)

    @asynccontextmanager
    async def _storage(self, storage: str | None) -> AsyncIterator[None]:
        """Read and delete from ``storage`` (``AT+CPMS="SR"``: 27.005 §3.2.2 ``<mem1>``) for one
        operation, then back to the ``<mem1>`` that ``AT+CPMS?`` named before. None: as is."""
        if storage is None:
            yield
            return
        if not _STORAGE.fullmatch(storage):
            raise ValueError("a message storage is two capital letters (SM, ME, SR, MT)")
        response = await self._request(Command("AT+CPMS?", prefix="+CPMS", timeout=MEDIUM))
        before = self._one(response, "+CPMS").partition(":")[2].split(",")[0].strip().strip('"')
        if before == storage:
            yield
            return
        await self._request(Command(f'AT+CPMS="{storage}"', prefix="+CPMS", timeout=MEDIUM))
        try:
            yield
        finally:
            if not _STORAGE.fullmatch(before) or not await self._accepted(
                f'AT+CPMS="{before}"', MEDIUM
            ):
                self._log.warning("sms_storage_not_restored", storage=storage)

    def _kept(self, message: SmsMessage | DeliveryReport, index: int) -> None:
        """Log (without content) a stored PDU that did not decode: it is handed on as hex."""
        if isinstance(message, SmsMessage) and message.undecodable:
            self._log.warning("sms_pdu_undecodable", index=index, octets=len(message.text) // 2)

    async def read_sms(self, index: int, storage: str | None = None) -> SmsMessage | DeliveryReport:
        """``AT+CMGR=<index>``: the message, or the status report, stored at ``index``.

        PDU mode when the modem has it (27.005 §3.4.3: ``+CMGR: <stat>,[<alpha>],<length>``
        and the PDU line, decoded by :mod:`simbank.sms`): multipart parts carry ``concat``,
        UCS-2 is decoded, a stored SMS-STATUS-REPORT is a :class:`DeliveryReport`, a PDU that
        does not decode is an ``SmsMessage(undecodable=True)`` holding its hex. Text mode
        otherwise (the header line, then the text; a status report's header is read as one).
        ``storage`` ("SR" after a ``+CDSI: "SR",<index>``) is selected for this read only.
        """
        async with self._storage(storage), self._reading_mode() as pdu:
            response = await self._request(
                Command(f"AT+CMGR={index}", prefix="+CMGR", timeout=MEDIUM, sensitive=True)
            )
        for position, line in enumerate(response.lines):
            if line_name(line) != "+CMGR":
                continue
            body = response.lines[position + 1 :]
            if pdu:
                if not body:
                    break
                _stat, message = parse_cmgr_pdu(line, body[0])
                self._kept(message, index)
                return message
            return text_report(line, "+CMGR", 1) or parse_cmgr(line, "\n".join(body))
        raise ProtocolGarbage(f"AT+CMGR={index}: no +CMGR answer", raw=response.final.raw)

    async def list_sms(self) -> list[tuple[int, SmsMessage | DeliveryReport]]:
        """Every received message in storage, as (index, message); status reports the modem
        stored there too, as (index, report).

        The pickup after a restart or a SIM switch: messages that arrived while nobody listened
        (no daemon, a missed +CMTI, a crash before the delete). PDU mode when the modem has it
        (``AT+CMGL=4``, 27.005 §3.4.2: ``+CMGL: <index>,<stat>,[<alpha>],<length>`` and the
        PDU line), else text mode (``AT+CMGL="ALL"``). Stored outgoing messages (``<stat>``
        2/3, ``STO …``) are left out; an unparsable entry is logged and skipped; a PDU that
        does not decode is kept as an ``SmsMessage(undecodable=True)`` and logged.
        """
        async with self._reading_mode() as pdu:
            response = await self._request(
                Command(
                    "AT+CMGL=4" if pdu else 'AT+CMGL="ALL"',
                    prefix="+CMGL",
                    timeout=LONG,
                    sensitive=True,
                )
            )
        lines = response.lines
        starts = [n for n, line in enumerate(lines) if line_name(line) == "+CMGL"]
        found: list[tuple[int, SmsMessage | DeliveryReport]] = []
        for number, start in enumerate(starts):
            end = starts[number + 1] if number + 1 < len(starts) else len(lines)
            try:
                entry = self._list_entry(lines[start], lines[start + 1 : end], pdu)
            except ProtocolGarbage as exc:
                self._log.warning("sms_list_entry_unparsable", reason=str(exc))
                continue
            if entry is not None:
                found.append(entry)
        return found

    def _list_entry(
        self, header: str, body: tuple[str, ...], pdu: bool
    ) -> tuple[int, SmsMessage | DeliveryReport] | None:
        """One ``+CMGL`` entry; None for a stored outgoing message."""
        if pdu:
            if not body:
                raise ProtocolGarbage("+CMGL entry without its PDU line", raw=header)
            index, stat, message = parse_cmgl_pdu(header, body[0])
            if stat not in RECEIVED_STATS:
                return None
            self._kept(message, index)
            return index, message
        report = text_report(header, "+CMGL", 2)
        if report is not None:
            return first_int(header, "+CMGL"), report
        index, text_message = parse_cmgl(header, "\n".join(body))
        if not text_message.status.upper().startswith("REC"):
            return None
        return index, text_message

    async def delete_sms(self, index: int, storage: str | None = None) -> None:
        """``AT+CMGD=<index>``; in ``storage`` ("SR") for this delete only, when given."""
        async with self._storage(storage):
            await self._request(Command(f"AT+CMGD={index}", timeout=MEDIUM))

    async def ussd(
        self,
        code: str,
        timeout: float = 30.0,  # noqa: ASYNC109 (API contract)
        *,
        keep_open: bool = False,
    ) -> str:
        """``AT+CUSD=1,"<code>",15`` and the text of the ``+CUSD`` that answers it (before or
        after the ``OK``), decoded by dcs and content; the session logic is
        :func:`simbank.drivers.ussd.request_ussd`. The code goes as text first; a modem that
        refuses it gets it once as packed GSM-7 hex, and the form that worked is kept in
        ``capabilities["ussd_packed"]``. A session left open (``<m>`` = 1) is cancelled with
        ``AT+CUSD=2`` unless ``keep_open``: then the next ``ussd(reply)`` answers the menu.

        Raises CommandError ``code=4`` (``retryable=False``) when the network does not support
        the request, AtTimeout when no reply comes within ``timeout`` (``code=5``: the
        network timed the session out), CommandError/SimStateError for the modem's own
        refusal, ValueError for a string that is not a USSD code.
        """
        if not _USSD_STRING.fullmatch(code):
            raise ValueError("a USSD code is digits, *, # and +")
        return await request_ussd(
            self.channel,
            code,
            timeout,
            capabilities=self.capabilities,
            packed_first=self.ussd_packed_first,
            keep_open=keep_open,
            log=self._log,
        )
