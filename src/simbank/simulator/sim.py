"""Simulated SIM cards: identity, lock state, network behaviour and the SMS store."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from simbank.simulator.ussd import (
    DEFAULT_BALANCE_NOTICE,
    Answer,
    UssdService,
    balance_notice,
    network_answer,
)


class Behaviour(enum.StrEnum):
    """How the network treats a SIM (or ``absent`` for an empty slot)."""

    HOME = "home"  # registers (stat 1) after a delay
    ROAMING = "roaming"  # registers roaming (stat 5)
    DENIED = "denied"  # stat 3 with a reject cause
    SEARCHING = "searching"  # stat 2 forever
    PIN = "pin"  # locked: +CPIN: SIM PIN until the PIN is entered
    PUK = "puk"  # locked: +CPIN: SIM PUK
    ABSENT = "absent"  # empty slot
    BARRED = "barred"  # registers, outgoing calls fail with cause 8


class LockState(enum.StrEnum):
    """What ``AT+CPIN?`` reports."""

    READY = "READY"
    SIM_PIN = "SIM PIN"
    SIM_PUK = "SIM PUK"


@dataclass
class StoredSms:
    """One message in the SIM's SM storage (or a status report in its SR storage).

    ``text`` is what text mode shows (a part of a concatenated message shows alone, as real
    modems do), ``pdu`` what PDU mode shows (the SMS-DELIVER or SMS-STATUS-REPORT with its
    SMSC prefix; ``tpdu_length`` counts the octets after it). ``report`` holds a status
    report's text-mode fields (``<fo>,<mr>,"<ra>",<tora>,"<scts>","<dt>",<st>``).
    """

    index: int
    sender: str
    text: str
    timestamp: str
    read: bool = False
    pdu: str = ""
    tpdu_length: int = 0
    report: str | None = None


def swapped_bcd(iccid: str) -> str:
    """The ICCID as stored in EF_ICCID (nibble-swapped BCD, padded with F), 20 hex digits."""
    digits = iccid.ljust(20, "F")
    return "".join(digits[i + 1] + digits[i] for i in range(0, 20, 2))


@dataclass
class SimCard:
    """One SIM. Identity is the ICCID; slots are only positions."""

    iccid: str
    imsi: str
    behaviour: Behaviour = Behaviour.HOME
    mnc_length: int = 2  # EF_AD byte 4, low nibble (TS 31.102 §4.2.18)
    operator: str = "test"
    pin: str = "1234"
    puk: str = "12345678"
    reject_cause: int = 7
    registration_delay_s: float = 3.0
    ussd_reply: str = "Your balance is 10.00 TEST"
    # Prepaid balance (None: none; the balance code then answers ``ussd_reply``) and its notice.
    balance: float | None = 10.0
    currency: str = "TEST"
    balance_text: str = DEFAULT_BALANCE_NOTICE
    valid_till: str = "2027-01-31"
    ussd_service: UssdService = field(default_factory=UssdService)
    ussd_session: str | None = None  # the menu the network awaits a reply to
    ussd_override: str | None = None  # answers every request (``bank.set_ussd_reply``)
    call_cost: float = 0.0  # taken from the balance per answered call (``charge_call``)
    lock: LockState = LockState.READY
    pin_attempts: int = 3
    sms: dict[int, StoredSms] = field(default_factory=dict)
    reports: dict[int, StoredSms] = field(default_factory=dict)  # the "SR" storage
    listener: Callable[[SimCard], None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.lock = self._initial_lock()

    def _initial_lock(self) -> LockState:
        if self.behaviour is Behaviour.PIN:
            return LockState.SIM_PIN
        if self.behaviour is Behaviour.PUK:
            return LockState.SIM_PUK
        return LockState.READY

    @property
    def present(self) -> bool:
        """False for an empty slot."""
        return self.behaviour is not Behaviour.ABSENT

    def _changed(self) -> None:
        if self.listener is not None:
            self.listener(self)

    # -- fault / operator API -------------------------------------------------------------
    def set_behaviour(self, behaviour: Behaviour | str, *, reject_cause: int | None = None) -> None:
        """Change the network behaviour at run time (the holding modem re-registers)."""
        self.behaviour = Behaviour(behaviour)
        if reject_cause is not None:
            self.reject_cause = reject_cause
        self.lock = self._initial_lock()
        self.pin_attempts = 3
        self._changed()

    def deny(self, cause: int = 7) -> None:
        """Registration denied (stat 3) with ``cause``."""
        self.set_behaviour(Behaviour.DENIED, reject_cause=cause)

    def searching(self) -> None:
        """Stuck searching (stat 2)."""
        self.set_behaviour(Behaviour.SEARCHING)

    def bar(self) -> None:
        """Outgoing calls barred (cause 8)."""
        self.set_behaviour(Behaviour.BARRED)

    # -- USSD ------------------------------------------------------------------------------
    def balance_notice(self) -> str | None:
        """The carrier's balance notice for this SIM (None without a prepaid balance)."""
        if self.balance is None:
            return None
        return balance_notice(self.balance_text, self.balance, self.currency, self.valid_till)

    def charge_call(self) -> None:
        """An answered call costs ``call_cost`` (a prepaid balance runs down, below zero too)."""
        if self.balance is not None and self.call_cost:
            self.balance = round(self.balance - self.call_cost, 2)

    def ussd(self, request: str) -> Answer:
        """The network's answer to a USSD request from this SIM (its session follows it)."""
        answer = network_answer(
            request,
            service=self.ussd_service,
            session=self.ussd_session,
            balance_text=self.balance_notice(),
            reply=self.ussd_reply,
            override=self.ussd_override,
        )
        self.ussd_session = answer.session
        return answer

    # -- PIN handling ----------------------------------------------------------------------
    def enter_pin(self, code: str, new_pin: str | None = None) -> bool:
        """``AT+CPIN=<pin>`` or ``AT+CPIN=<puk>,<newpin>``; True when the SIM unlocked."""
        if self.lock is LockState.SIM_PIN and code == self.pin:
            self.lock = LockState.READY
            self.pin_attempts = 3
            return True
        if self.lock is LockState.SIM_PUK and code == self.puk and new_pin:
            self.pin = new_pin
            self.lock = LockState.READY
            self.pin_attempts = 3
            return True
        if self.lock is LockState.SIM_PIN:
            self.pin_attempts -= 1
            if self.pin_attempts <= 0:
                self.lock = LockState.SIM_PUK
        return False

    # -- SMS storage -----------------------------------------------------------------------
    def store_sms(
        self, sender: str, text: str, timestamp: str, *, pdu: str = "", tpdu_length: int = 0
    ) -> int:
        """Store an inbound SMS (one part of one); return its index (1-based, lowest free)."""
        index = _free_index(self.sms)
        self.sms[index] = StoredSms(
            index, sender, text, timestamp, pdu=pdu, tpdu_length=tpdu_length
        )
        return index

    def store_report(
        self, recipient: str, report: str, timestamp: str, *, pdu: str, tpdu_length: int
    ) -> int:
        """Store a status report in "SR"; return its index (1-based, lowest free)."""
        index = _free_index(self.reports)
        self.reports[index] = StoredSms(
            index, recipient, "", timestamp, pdu=pdu, tpdu_length=tpdu_length, report=report
        )
        return index


def _free_index(store: dict[int, StoredSms]) -> int:
    index = 1
    while index in store:
        index += 1
    return index
