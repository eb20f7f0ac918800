"""Typed values the drivers hand upward: registration, signal, identity, SIM, calls, SMS.

Numbers and names follow 3GPP TS 27.007 (registration stat, access technology, +CLCC) and
TS 24.008 Annex H (call cause values). Every value keeps the raw line it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum


class RegStat(IntEnum):
    """``<stat>`` of +CREG / +CGREG / +CEREG / +C5GREG (27.007 §7.2, §10.1.20, §10.1.22)."""

    NOT_REGISTERED = 0  # not registered, MT is not searching
    HOME = 1  # registered, home network
    SEARCHING = 2  # not registered, MT is searching / trying to attach
    DENIED = 3  # registration denied
    UNKNOWN = 4  # unknown (e.g. out of coverage)
    ROAMING = 5  # registered, roaming
    HOME_SMS_ONLY = 6  # registered for "SMS only", home network
    ROAMING_SMS_ONLY = 7  # registered for "SMS only", roaming
    EMERGENCY_ONLY = 8  # attached for emergency bearer services only
    HOME_CSFB_NOT_PREFERRED = 9  # registered for "CSFB not preferred", home network
    ROAMING_CSFB_NOT_PREFERRED = 10  # registered for "CSFB not preferred", roaming
    RLOS = 11  # attached for access to RLOS (restricted local operator services)


_STATE_NAMES: dict[RegStat, str] = {
    RegStat.NOT_REGISTERED: "not_registered",
    RegStat.HOME: "registered_home",
    RegStat.SEARCHING: "searching",
    RegStat.DENIED: "denied",
    RegStat.UNKNOWN: "unknown",
    RegStat.ROAMING: "roaming",
    RegStat.HOME_SMS_ONLY: "registered_home_sms_only",
    RegStat.ROAMING_SMS_ONLY: "roaming_sms_only",
    RegStat.EMERGENCY_ONLY: "emergency_only",
    RegStat.HOME_CSFB_NOT_PREFERRED: "registered_home_csfb_not_preferred",
    RegStat.ROAMING_CSFB_NOT_PREFERRED: "roaming_csfb_not_preferred",
    RegStat.RLOS: "rlos_only",
}

REGISTERED_STATS: frozenset[RegStat] = frozenset(
    {
        RegStat.HOME,
        RegStat.ROAMING,
        RegStat.HOME_SMS_ONLY,
        RegStat.ROAMING_SMS_ONLY,
        RegStat.HOME_CSFB_NOT_PREFERRED,
        RegStat.ROAMING_CSFB_NOT_PREFERRED,
    }
)
ROAMING_STATS: frozenset[RegStat] = frozenset(
    {RegStat.ROAMING, RegStat.ROAMING_SMS_ONLY, RegStat.ROAMING_CSFB_NOT_PREFERRED}
)


class Domain(StrEnum):
    """Which registration a report is about; the value is the command name in lower case."""

    CS = "creg"
    PS = "cgreg"
    EPS = "cereg"
    NR5G = "c5greg"

    @property
    def command(self) -> str:
        """The AT command name, e.g. ``+CEREG``."""
        return "+" + self.value.upper()


class Act(IntEnum):
    """``<AcT>`` access technology (27.007 §7.3 +COPS)."""

    GSM = 0
    GSM_COMPACT = 1
    UTRAN = 2
    GSM_EGPRS = 3
    UTRAN_HSDPA = 4
    UTRAN_HSUPA = 5
    UTRAN_HSPA = 6
    EUTRAN = 7
    EC_GSM_IOT = 8
    EUTRAN_NB_S1 = 9
    EUTRA_5GCN = 10
    NR = 11  # NR connected to a 5G core
    NG_RAN = 12
    EUTRA_NR_DC = 13

    @property
    def label(self) -> str:
        """Lower-case name for payloads (``"eutran"``, ``"nr"``...)."""
        return self.name.lower()


def act_or_none(value: int | None) -> Act | None:
    """The :class:`Act` for a number, ``None`` for absent or unknown numbers."""
    if value is None:
        return None
    try:
        return Act(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Registration:
    """One registration report (solicited or unsolicited) for one domain."""

    domain: Domain
    stat: RegStat
    lac: str | None = None  # LAC or TAC, upper-case hex without quotes
    ci: str | None = None  # cell id, upper-case hex without quotes
    act: int | None = None  # 27.007 <AcT>; see .access_tech
    reject_cause: int | None = None  # n=3 <reject_cause>
    raw: str = ""
    cause_type: int | None = None  # n=3 <cause_type>: 0 = 24.008/24.301 cause, 1 = vendor
    rac: str | None = None  # +CGREG <rac>, hex
    n: int | None = None  # the <n> setting echoed by a solicited answer

    @property
    def state(self) -> str:
        """Snake-case name of the stat, e.g. ``"registered_home"``."""
        return _STATE_NAMES[self.stat]

    @property
    def registered(self) -> bool:
        """True when the MT is registered (home or roaming, any variant)."""
        return self.stat in REGISTERED_STATS

    @property
    def roaming(self) -> bool:
        """True when registered on a visited network."""
        return self.stat in ROAMING_STATS

    @property
    def access_tech(self) -> Act | None:
        """The access technology as :class:`Act`, if known."""
        return act_or_none(self.act)


@dataclass(frozen=True, slots=True)
class Signal:
    """Signal strength; fields a report does not carry are ``None``."""

    rssi_dbm: int | None
    quality: int | None  # 0..100 %
    raw: str = ""
    ber: int | None = None  # 0..7 (27.007 RXQUAL)
    rsrp_dbm: int | None = None
    rsrq_db: float | None = None
    rscp_dbm: int | None = None
    ecno_db: float | None = None
    sinr_db: float | None = None


@dataclass(frozen=True, slots=True)
class ModemIdentity:
    """What AT+CGMI / +CGMM / +CGMR / +CGSN reported."""

    manufacturer: str
    model: str
    revision: str
    imei: str | None


class SimStatus(StrEnum):
    """What AT+CPIN? (or its +CME ERROR) says about the SIM."""

    READY = "ready"
    PIN = "pin"
    PUK = "puk"
    ABSENT = "absent"
    NOT_READY = "not_ready"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Operator:
    """AT+COPS? answer."""

    name: str | None  # long/short alphanumeric or numeric MCC+MNC, per .format
    mode: int
    act: int | None
    format: int | None = None  # 0 long alphanumeric, 1 short, 2 numeric
    raw: str = ""


class CallDirection(StrEnum):
    """``<dir>`` of +CLCC."""

    MOBILE_ORIGINATED = "mo"
    MOBILE_TERMINATED = "mt"


class CallState(IntEnum):
    """``<stat>`` of +CLCC (27.007 §7.18)."""

    ACTIVE = 0
    HELD = 1
    DIALING = 2
    ALERTING = 3
    INCOMING = 4
    WAITING = 5


@dataclass(frozen=True, slots=True)
class CallInfo:
    """One +CLCC line. ``number`` is a phone number: never log it unmasked."""

    id: int
    direction: CallDirection
    state: CallState
    mode: int  # 0 voice, 1 data, 2 fax, 9 unknown
    multiparty: bool
    number: str | None = None
    number_type: int | None = None


@dataclass(frozen=True, slots=True)
class CallCause:
    """Why the last call ended: 24.008 cause number (if known) and the modem's text."""

    code: int | None
    text: str


@dataclass(frozen=True, slots=True)
class UssdReply:
    """A +CUSD report. ``status``: 0 done, 1 further action, 2 ended by network, 4 unsupported, 5 timeout."""

    status: int
    text: str | None
    dcs: int | None
    raw: str = ""


@dataclass(frozen=True, slots=True)
class SmsMessage:
    """A stored short message (``+CMGR``/``+CMGL``, text or PDU mode). ``sender`` is a phone
    number ("+" and digits when international, digits otherwise) or an alphanumeric name:
    mask it in logs.

    PDU mode adds what only the PDU carries: ``concat`` (reference, total, sequence) for a part
    of a concatenated message, ``coding`` ("gsm7", "ucs2", "8bit"). A PDU that does not decode
    is kept: ``undecodable`` True, ``text`` the PDU as hex, ``sender`` None. Text mode leaves
    the three at their defaults.
    """

    status: str  # "REC UNREAD", "REC READ", "STO UNSENT", "STO SENT"
    sender: str | None
    timestamp: datetime | None
    text: str
    raw: str = ""
    concat: tuple[int, int, int] | None = None  # (reference, total, sequence)
    coding: str | None = None  # simbank.sms.dcs.Coding value; None in text mode
    undecodable: bool = False


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """An SMS-STATUS-REPORT (23.040 §9.2.2.3): what became of the message we sent with
    message reference ``reference`` (TP-MR, as ``+CMGS`` answered it). From a ``+CDS`` URC
    (PDU or text mode) or read from storage (``+CMGR``/``+CMGL`` in PDU mode).

    ``status`` is TP-ST (§9.2.3.15); ``outcome`` its class: "delivered", "pending" (the SMSC
    still tries), "failed" or "expired" (:class:`simbank.sms.pdu.DeliveryStatus`).
    ``recipient`` is a phone number: mask it in logs. ``raw`` is the PDU hex or the text-mode
    line (it holds the number too: never log it).
    """

    reference: int
    status: int
    outcome: str
    recipient: str | None
    discharged: datetime | None
    raw: str = ""

    @property
    def final(self) -> bool:
        """False while the SMSC is still trying (a later report follows)."""
        return self.outcome != "pending"


@dataclass(frozen=True, slots=True)
class NewSms:
    """A +CMTI report: a message was stored at ``index`` in ``storage``; or a +CDSI report:
    a status report was stored there (``storage`` often "SR": read it with
    ``read_sms(index, storage=...)``)."""

    storage: str
    index: int
