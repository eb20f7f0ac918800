"""DriverBase: what every modem driver does around its operations: the channel plumbing, the
probe (identity), URC setup, the probe of optional features (capabilities), and URC parsing
(the vendor's URC names and parsers).

The operations themselves (SIM, network, radio and slots, calls, SMS, USSD) are in
:class:`simbank.drivers.generic.GenericDriver`, which every dialect subclasses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import structlog

from simbank.at.channel import AtChannel
from simbank.at.results import MEDIUM, SHORT, Command, Response, Urc, line_name
from simbank.drivers.parse.calls import CallReport, parse_clcc_report
from simbank.drivers.parse.identity import clean_identity, parse_cpin, parse_imei
from simbank.drivers.parse.incoming import CallerId, Ring, parse_clip, parse_ring
from simbank.drivers.parse.messaging import (
    parse_cds,
    parse_cdsi,
    parse_cmgf_modes,
    parse_cmti,
    parse_cusd,
)
from simbank.drivers.parse.registration import parse_registration
from simbank.drivers.parse.signal import parse_cesq, parse_csq
from simbank.drivers.types import (
    CallCause,
    DeliveryReport,
    Domain,
    ModemIdentity,
    NewSms,
    Registration,
    Signal,
    SimStatus,
    UssdReply,
)
from simbank.errors import AtTimeout, ProtocolGarbage

UrcEvent = (
    Registration
    | Signal
    | SimStatus
    | CallCause
    | NewSms
    | UssdReply
    | DeliveryReport
    | Ring
    | CallerId
    | CallReport
)
UrcParser = Callable[[Urc], UrcEvent | None]


def info_lines(response: Response, prefix: str) -> list[str]:
    """The whole lines (prefix kept) of a response that carry ``prefix``."""
    return [line for line in response.lines if line_name(line) == prefix]


class DriverBase:
    """A modem driver's session over one channel. ``slots`` is how many SIM slots the box
    wires to the modem (1-based API)."""

    dialect: ClassVar[str] = "generic"
    # (command, answer prefix or None for a bare answer), tried before AT+CCID and +CRSM.
    iccid_commands: ClassVar[tuple[tuple[str, str | None], ...]] = ()
    # Registration domains to enable and query; C5GREG is tried and skipped on ERROR.
    domains: ClassVar[tuple[Domain, ...]] = (Domain.CS, Domain.PS, Domain.EPS, Domain.NR5G)
    #: The vendor's own URC names (the codec knows the 27.007/27.005 ones): lines that are URCs
    #: even in the middle of an answer. ``open_port`` gives every channel the names of all
    #: dialects (``registry.VENDOR_URC_NAMES``). Here: boot URCs of modem families with no
    #: dialect of their own (Cinterion ``^SYSSTART``).
    urc_names: ClassVar[frozenset[str]] = frozenset({"^SYSSTART"})
    #: The command that makes the modem report every call's changes as ``+CLCC`` URCs on
    #: this port (SIMCom ``AT+CLCC=1``); None: the dialect has none (calls are polled).
    call_reports_command: ClassVar[str | None] = None

    def __init__(self, channel: AtChannel, slots: int = 1) -> None:
        if slots < 1:
            raise ValueError("a modem has at least one slot")
        self.channel = channel
        self.slots = slots
        self.identity: ModemIdentity | None = None
        self.reg_modes: dict[Domain, int] = {}  # the <n> accepted per domain by setup_urcs
        #: The +CNMI ``<ds>`` setup_urcs got accepted: 1 (+CDS), 2 (+CDSI) or 0 (no reports).
        self.report_mode = 0
        #: Optional features this modem turned out to have (probed once per session, see
        #: :meth:`probe_capabilities`): a dialect is a family, and its models differ.
        self.capabilities: dict[str, bool] = {}
        #: The CME code of the last ``AT+CPIN?`` that failed (None after a plain answer).
        self.last_sim_cme: int | None = None
        self._log = structlog.get_logger("simbank.drivers.generic").bind(
            modem=channel.name, dialect=self.dialect
        )
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
            "+CDS": lambda urc: parse_cds(urc.text, urc.body),
            "+CDSI": lambda urc: parse_cdsi(urc.text),
            "RING": lambda urc: parse_ring(urc.text),
            "+CRING": lambda urc: parse_ring(urc.text),
            "+CLIP": lambda urc: parse_clip(urc.text),
            "+CLCC": lambda urc: parse_clcc_report(urc.text),
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
        """Registration URCs at n=3 where accepted else n=2; SMS text mode, +CMTI routing and
        delivery reports.

        ``AT+CNMI`` (27.005 §3.4.1) is tried down a ladder: ``2,1,0,1,0`` (``<ds>``=1: a status
        report comes as a ``+CDS`` URC, its form following ``AT+CMGF`` at that moment), then
        ``2,1,0,2,0`` (``<ds>``=2: it is stored and announced as ``+CDSI: <mem>,<index>``),
        then without reports (``2,1,0,0,0``, then ``2,1``). The ``<ds>`` accepted is kept in
        :attr:`report_mode` (capability ``delivery_reports``). ``AT+CSMS`` is left at its
        default 0, so no ``AT+CNMA`` acknowledgement is owed for a ``+CDS``.
        """
        self.reg_modes = {}
        for domain in self.domains:
            for n in (3, 2):
                if await self._accepted(f"AT{domain.command}={n}"):
                    self.reg_modes[domain] = n
                    break
            else:
                self._log.info("registration_urc_unsupported", domain=domain.value)
        await self._request(Command("AT+CMGF=1"))
        self.report_mode = 0
        for ds in (1, 2):
            if await self._accepted(f"AT+CNMI=2,1,0,{ds},0"):
                self.report_mode = ds
                break
        self.capabilities["delivery_reports"] = self.report_mode > 0
        if self.report_mode:
            return
        self._log.info("sms_delivery_reports_unsupported")
        if not await self._accepted("AT+CNMI=2,1,0,0,0"):
            await self._request(Command("AT+CNMI=2,1"))

    async def setup_caller_id(self) -> dict[str, bool]:
        """Ask for the caller's number with every ring (``AT+CLIP=1``) and for typed rings
        (``AT+CRC=1``: ``+CRING: VOICE`` instead of ``RING``); capabilities ``caller_id`` and
        ``typed_ring``. Probed, never assumed: a modem that refuses either (or says nothing)
        keeps working, its rings then come without a number, or as plain ``RING``. Call after
        :meth:`probe_capabilities` (which rebuilds the capabilities)."""
        found: dict[str, bool] = {}
        for name, text in (("caller_id", "AT+CLIP=1"), ("typed_ring", "AT+CRC=1")):
            try:
                found[name] = await self._accepted(text)
            except (AtTimeout, ProtocolGarbage) as exc:
                self._log.info("capability_probe_unanswered", command=text, error=str(exc))
                found[name] = False
        if not found["caller_id"]:
            self._log.info("caller_id_unsupported")
        self.capabilities.update(found)
        return found

    async def setup_call_reports(self) -> bool:
        """Ask for a ``+CLCC`` URC at every change of a call (:attr:`call_reports_command`,
        SIMCom's ``AT+CLCC=1``); capability ``call_reports``. Probed, never assumed: a refusal,
        garbage or silence means absent (the calls are still polled with ``AT+CLCC``), and
        the URCs may be routed to the modem's other port all the same. Call after
        :meth:`probe_capabilities` (which rebuilds the capabilities)."""
        command = self.call_reports_command
        present = False
        if command is not None:
            try:
                present = await self._accepted(command)
            except (AtTimeout, ProtocolGarbage) as exc:
                self._log.info("capability_probe_unanswered", command=command, error=str(exc))
            if not present:
                self._log.info("call_reports_unsupported")
        self.capabilities["call_reports"] = present
        return present

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
        caps["delivery_reports"] = self.report_mode > 0
        caps.update(await self._probe_vendor_capabilities())
        if "pdu_mode" in self.capabilities:  # probed already (by a send): kept
            caps["pdu_mode"] = self.capabilities["pdu_mode"]
        else:
            caps["pdu_mode"] = await self._probe_pdu_mode()
            if caps["pdu_mode"]:  # the probe left PDU mode on: back to text mode (setup_urcs)
                await self._request(Command("AT+CMGF=1"), check=False)
        if "ussd_packed" in self.capabilities:  # the USSD form learnt: kept (drivers/ussd.py)
            caps["ussd_packed"] = self.capabilities["ussd_packed"]
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

    async def _probe_pdu_mode(self) -> bool:
        """Whether the modem has SMS PDU mode (27.005): ``AT+CMGF=?`` lists 0 and ``AT+CMGF=0``
        is accepted. True leaves the modem in PDU mode (the caller switches back to text mode);
        an ERROR, garbage or silence means absent, logged once. Probed by
        :meth:`probe_capabilities` (so the first read already uses PDU mode), else on the
        first send."""
        try:
            response = await self._request(
                Command("AT+CMGF=?", prefix="+CMGF", timeout=SHORT), check=False
            )
            lines = info_lines(response, "+CMGF") if response.ok else []
            listed = bool(lines) and 0 in parse_cmgf_modes(lines[0])
            present = listed and await self._accepted("AT+CMGF=0")
        except (AtTimeout, ProtocolGarbage) as exc:
            self._log.info("capability_probe_unanswered", command="AT+CMGF", error=str(exc))
            return False
        if not present:
            self._log.info("sms_pdu_mode_absent", listed=listed)
        return present

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

    @staticmethod
    def _one(response: Response, prefix: str) -> str:
        lines = info_lines(response, prefix)
        if not lines:
            raise ProtocolGarbage(f"no {prefix} line in the answer", raw=response.final.raw)
        return lines[0]
