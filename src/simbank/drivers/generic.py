"""GenericDriver: modem semantics over plain 3GPP TS 27.007 / 27.005 AT commands.

Vendor dialects subclass it and override only what differs: the ICCID command, the slot query
and select, extra URC parsers, and which registration commands the modem has. Everything here
goes through the AtChannel; the parsing is done by the pure functions of this package.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import ClassVar

import structlog

from simbank.at.channel import AtChannel
from simbank.at.codec import LONG, MEDIUM, SHORT, Command, Response, ResultKind, Urc, line_name
from simbank.at.codes import SIM_ABSENT_CODES
from simbank.drivers.parse.calls import parse_ceer, parse_clcc
from simbank.drivers.parse.fields import first_int
from simbank.drivers.parse.identity import (
    clean_identity,
    parse_cops,
    parse_cpin,
    parse_crsm_iccid,
    parse_iccid,
    parse_imei,
    parse_imsi,
    sim_status_from_cme,
)
from simbank.drivers.parse.messaging import (
    parse_cmgl,
    parse_cmgr,
    parse_cmgs,
    parse_cmti,
    parse_cusd,
)
from simbank.drivers.parse.plmn import EF_AD_READ, parse_ef_ad_mnc_length
from simbank.drivers.parse.registration import parse_registration
from simbank.drivers.parse.reject_causes import reject_cause_from_ceer
from simbank.drivers.parse.signal import parse_cesq, parse_csq
from simbank.drivers.types import (
    CallCause,
    CallInfo,
    Domain,
    ModemIdentity,
    NewSms,
    Operator,
    Registration,
    Signal,
    SimStatus,
    SmsMessage,
    UssdReply,
)
from simbank.errors import AtTimeout, CommandError, ModemUnresponsive, ProtocolGarbage

UrcEvent = Registration | Signal | SimStatus | CallCause | NewSms | UssdReply
UrcParser = Callable[[Urc], UrcEvent | None]

# EF_ICCID (file id 2FE2 = 12258) read as 10 bytes with READ BINARY (176).
CRSM_READ_ICCID = "AT+CRSM=176,12258,0,0,10"
_DIAL_STRING = re.compile(r"\+?[0-9*#]{1,40}")
_USSD_STRING = re.compile(r"[0-9*#+]{1,160}")
_SIM_POLL_INTERVAL = 0.5
# Answers to AT+CPIN? that will not change by waiting.
_FINAL_SIM_STATES = frozenset({SimStatus.READY, SimStatus.PIN, SimStatus.PUK})


def _no_sim(response: Response) -> bool:
    return response.final.kind is ResultKind.CME_ERROR and response.final.code in SIM_ABSENT_CODES


def info_lines(response: Response, prefix: str) -> list[str]:
    """The whole lines (prefix kept) of a response that carry ``prefix``."""
    return [line for line in response.lines if line_name(line) == prefix]


class GenericDriver:
    """A 27.007 modem. ``slots`` is how many SIM slots the box wires to it (1-based API)."""

    dialect: ClassVar[str] = "generic"
    # (command, answer prefix or None for a bare answer), tried before AT+CCID and +CRSM.
    iccid_commands: ClassVar[tuple[tuple[str, str | None], ...]] = ()
    # Registration domains to enable and query; C5GREG is tried and skipped on ERROR.
    domains: ClassVar[tuple[Domain, ...]] = (Domain.CS, Domain.PS, Domain.EPS, Domain.NR5G)

    def __init__(self, channel: AtChannel, slots: int = 1) -> None:
        if slots < 1:
            raise ValueError("a modem has at least one slot")
        self.channel = channel
        self.slots = slots
        self.identity: ModemIdentity | None = None
        self.reg_modes: dict[Domain, int] = {}  # the <n> accepted per domain by setup_urcs
        #: Optional features this modem turned out to have (probed once per session, see
        #: :meth:`probe_capabilities`): a dialect is a family, and its models differ.
        self.capabilities: dict[str, bool] = {}
        #: The CME code of the last ``AT+CPIN?`` that failed (None after a plain answer).
        self.last_sim_cme: int | None = None
        self._log = structlog.get_logger(__name__).bind(modem=channel.name, dialect=self.dialect)
        self._urc_parsers: dict[str, UrcParser] = {
            "+CREG": self._parse_registration_urc,
            "+CGREG": self._parse_registration_urc,
            "+CEREG": self._parse_registration_urc,
            "+C5GREG": self._parse_registration_urc,
            "+CSQ": lambda urc: parse_csq(urc.text),
            "+CESQ": lambda urc: parse_cesq(urc.text),
            "+CPIN": lambda urc: parse_cpin(urc.text),
            "+CMTI": lambda urc: parse_cmti(urc.text),
            "+CUSD": lambda urc: parse_cusd(urc.text),
            **self.vendor_urc_parsers(),
        }

    def vendor_urc_parsers(self) -> dict[str, UrcParser]:
        """Dialect hook: parsers for the vendor's own URCs, by URC name."""
        return {}

    # -- plumbing ----------------------------------------------------------------------------

    async def _request(self, command: Command | str, *, check: bool = True) -> Response:
        return await self.channel.request(command, check=check)

    async def _accepted(self, text: str, limit: float = SHORT) -> bool:
        """Send a set command (``limit``: its Command timeout); True on OK, False on ERROR."""
        response = await self._request(Command(text, timeout=limit), check=False)
        return response.ok

    # -- probe and setup ---------------------------------------------------------------------

    async def probe(self) -> ModemIdentity:
        """Re-sync with up to 3 ``AT``, echo off, numeric errors, then read the identity."""
        last: AtTimeout | None = None
        for attempt in range(3):
            try:
                await self._request(Command("AT", timeout=SHORT), check=False)
                break
            except AtTimeout as exc:
                self._log.debug("probe_at_timeout", attempt=attempt + 1)
                last = exc
                # Silence may be a modem still reading an SMS text from a client that died.
                self.channel.cancel_text_entry()
        else:
            assert last is not None
            raise last
        await self._request(Command("ATE0"), check=False)
        await self._request(Command("AT+CMEE=1"), check=False)
        manufacturer = await self._identity_line("AT+CGMI", "+CGMI")
        model = await self._identity_line("AT+CGMM", "+CGMM")
        revision = await self._identity_line("AT+CGMR", "+CGMR")
        imei = None
        response = await self._request(Command("AT+CGSN"), check=False)
        if response.ok:
            for line in response.lines:
                imei = parse_imei(line)
                if imei is not None:
                    break
        self.identity = ModemIdentity(manufacturer, model, revision, imei)
        self._log.info("modem_probed", manufacturer=manufacturer, model=model, revision=revision)
        return self.identity

    async def _identity_line(self, text: str, prefix: str) -> str:
        response = await self._request(Command(text), check=False)
        if not response.ok:
            return ""
        lines = [clean_identity(line, prefix) for line in response.lines]
        return next((line for line in lines if line), "")

    async def setup_urcs(self) -> None:
        """Registration URCs at n=3 where accepted else n=2; SMS text mode and +CMTI routing."""
        self.reg_modes = {}
        for domain in self.domains:
            for n in (3, 2):
                if await self._accepted(f"AT{domain.command}={n}"):
                    self.reg_modes[domain] = n
                    break
            else:
                self._log.info("registration_urc_unsupported", domain=domain.value)
        await self._request(Command("AT+CMGF=1"))
        if not await self._accepted("AT+CNMI=2,1,0,0,0"):
            await self._request(Command("AT+CNMI=2,1"))

    # -- capabilities -------------------------------------------------------------------------

    async def probe_capabilities(self) -> dict[str, bool]:
        """Probe the optional features once (test or read forms) and cache them.

        An optional command answered ``ERROR``, ``COMMAND NOT SUPPORT``, a ``+CME ERROR`` or
        nothing at all means "absent": logged once here, never a modem fault. With one slot
        wired (``slots = 1``) no slot command is ever sent. Call after :meth:`setup_urcs`.
        """
        self.capabilities.pop("slot_switch", None)
        caps: dict[str, bool] = {"slot_switch": await self._slot_switching()}
        for domain in self.domains:
            caps[domain.command.lstrip("+").lower()] = domain in self.reg_modes
        caps["reject_causes"] = any(n == 3 for n in self.reg_modes.values())
        caps["ceer"] = await self._supports("AT+CEER=?")
        caps["cesq"] = await self._supports("AT+CESQ=?")
        caps.update(await self._probe_vendor_capabilities())
        self.capabilities = caps
        absent = sorted(name for name, present in caps.items() if not present)
        self._log.info("modem_capabilities", absent=absent, slots=self.slots)
        if self.slots > 1 and not caps["slot_switch"]:
            self._log.warning("slot_switch_unsupported", configured_slots=self.slots)
        return caps

    async def _supports(self, text: str) -> bool:
        """True if the modem accepts ``text`` (a test or read form); False on any error or
        silence. A silent modem is checked by the channel's liveness AT before the next long
        command, so one unanswered probe does not count against it."""
        try:
            response = await self._request(Command(text, timeout=SHORT), check=False)
        except (AtTimeout, ProtocolGarbage) as exc:
            self._log.info("capability_probe_unanswered", command=text, error=str(exc))
            return False
        return response.ok

    async def _answers(self, text: str, prefix: str) -> bool:
        """True if the read form ``text`` is answered OK with a ``prefix`` line (a slot probe:
        single-SIM models answer ERROR or COMMAND NOT SUPPORT)."""
        response = await self._request(Command(text, prefix=prefix, timeout=MEDIUM), check=False)
        return response.ok and bool(info_lines(response, prefix))

    async def _slot_switching(self) -> bool:
        """Whether slots can be switched, probed on first need (never with one slot)."""
        if "slot_switch" not in self.capabilities:
            try:
                switching = self.slots > 1 and await self._probe_slot_switch()
            except (AtTimeout, ProtocolGarbage) as exc:
                # Silence (EP06-E leaves AT+QUIMSLOT=? unanswered) or garbage: absent.
                self._log.info("capability_probe_unanswered", command="slot", error=str(exc))
                switching = False
            self.capabilities["slot_switch"] = switching
        return self.capabilities["slot_switch"]

    async def _probe_slot_switch(self) -> bool:
        """Dialect hook: whether the modem can switch SIM slots (only asked when ``slots > 1``).
        A generic 27.007 modem has no slot command."""
        return False

    async def _probe_vendor_capabilities(self) -> dict[str, bool]:
        """Dialect hook: the vendor's own optional features."""
        return {}

    @property
    def can_switch_slots(self) -> bool:
        return self.capabilities.get("slot_switch", False)

    @property
    def usable_slots(self) -> int:
        """The slots this modem can reach: all wired ones if it switches, else the first."""
        return self.slots if self.can_switch_slots else 1

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
                Command(text, prefix=prefix, timeout=MEDIUM), check=False
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

    def parse_urc(self, urc: Urc) -> UrcEvent | None:
        """A typed event for the URCs drivers understand; ``None`` for the others.

        A URC that cannot be parsed is logged and dropped: noise never kills the reader.
        """
        parser = self._urc_parsers.get(urc.name)
        if parser is None:
            return None
        try:
            return parser(urc)
        except ProtocolGarbage as exc:
            self._log.warning("urc_unparsable", urc=urc.name, reason=str(exc), raw=urc.text)
            return None

    def _parse_registration_urc(self, urc: Urc) -> Registration:
        return parse_registration(urc.text)

    async def signal(self) -> Signal:
        """``AT+CSQ``."""
        response = await self._request(Command("AT+CSQ", prefix="+CSQ"))
        return parse_csq(self._one(response, "+CSQ"))

    async def operator(self) -> Operator:
        """``AT+COPS?``."""
        response = await self._request(Command("AT+COPS?", prefix="+COPS", timeout=MEDIUM))
        return parse_cops(self._one(response, "+COPS"))

    @staticmethod
    def _one(response: Response, prefix: str) -> str:
        lines = info_lines(response, prefix)
        if not lines:
            raise ProtocolGarbage(f"no {prefix} line in the answer", raw=response.final.raw)
        return lines[0]

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

    async def list_calls(self) -> list[CallInfo]:
        """``AT+CLCC``."""
        response = await self._request(Command("AT+CLCC", prefix="+CLCC", sensitive=True))
        return [parse_clcc(line) for line in info_lines(response, "+CLCC")]

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

    async def send_sms(self, number: str, text: str) -> int:
        """Text-mode ``AT+CMGS="<number>"`` + text + Ctrl-Z; returns the message reference."""
        if not _DIAL_STRING.fullmatch(number):
            raise ValueError("an SMS destination is +, digits, * and #")
        if "\x1a" in text or "\x1b" in text:
            raise ValueError("SMS text must not contain Ctrl-Z or ESC")
        command = Command(
            f'AT+CMGS="{number}"', prefix="+CMGS", timeout=LONG, payload=text, sensitive=True
        )
        response = await self._request(command)
        return parse_cmgs(self._one(response, "+CMGS"))

    async def read_sms(self, index: int) -> SmsMessage:
        """Text-mode ``AT+CMGR=<index>`` (the header line, then the message text)."""
        response = await self._request(
            Command(f"AT+CMGR={index}", prefix="+CMGR", timeout=MEDIUM, sensitive=True)
        )
        for position, line in enumerate(response.lines):
            if line_name(line) == "+CMGR":
                text = "\n".join(response.lines[position + 1 :])
                return parse_cmgr(line, text)
        raise ProtocolGarbage(f"AT+CMGR={index}: no +CMGR header", raw=response.final.raw)

    async def list_sms(self) -> list[tuple[int, SmsMessage]]:
        """Every received message in storage (text-mode ``AT+CMGL="ALL"``), as (index, message).

        The pickup after a restart or a SIM switch: messages that arrived while nobody listened
        (no daemon, a missed +CMTI, a crash before the delete). Stored outgoing messages
        (``STO …``) are left out; an unparsable entry is logged and skipped.
        """
        response = await self._request(
            Command('AT+CMGL="ALL"', prefix="+CMGL", timeout=LONG, sensitive=True)
        )
        lines = response.lines
        starts = [n for n, line in enumerate(lines) if line_name(line) == "+CMGL"]
        found: list[tuple[int, SmsMessage]] = []
        for number, start in enumerate(starts):
            end = starts[number + 1] if number + 1 < len(starts) else len(lines)
            try:
                index, message = parse_cmgl(lines[start], "\n".join(lines[start + 1 : end]))
            except ProtocolGarbage as exc:
                self._log.warning("sms_list_entry_unparsable", reason=str(exc))
                continue
            if message.status.upper().startswith("REC"):
                found.append((index, message))
        return found

    async def delete_sms(self, index: int) -> None:
        """``AT+CMGD=<index>``."""
        await self._request(Command(f"AT+CMGD={index}", timeout=MEDIUM))

    async def ussd(self, code: str, timeout: float = 30.0) -> str:  # noqa: ASYNC109 (API contract)
        """``AT+CUSD=1,"<code>",15`` and the ``+CUSD`` that answers it (in the response or later).

        Raises CommandError when the network says the request is unsupported (``<m>`` = 4)
        and AtTimeout when no +CUSD arrives within ``timeout``.
        """
        if not _USSD_STRING.fullmatch(code):
            raise ValueError("a USSD code is digits, *, # and +")
        loop = asyncio.get_running_loop()
        arrived: asyncio.Future[Urc] = loop.create_future()

        def on_cusd(urc: Urc) -> None:
            if not arrived.done():
                arrived.set_result(urc)

        unsubscribe = self.channel.subscribe("+CUSD", on_cusd)  # before sending: no race
        try:
            response = await self._request(
                Command(f'AT+CUSD=1,"{code}",15', prefix="+CUSD", timeout=LONG)
            )
            lines = info_lines(response, "+CUSD")
            if lines:
                line = lines[0]
            else:
                try:
                    async with asyncio.timeout(timeout):
                        line = (await arrived).text
                except TimeoutError:
                    raise AtTimeout(f"no +CUSD within {timeout:g} s") from None
        finally:
            unsubscribe()
        reply = parse_cusd(line)
        if reply.status == 4:
            raise CommandError("USSD request not supported by the network", raw=line, code=4)
        return reply.text or ""
