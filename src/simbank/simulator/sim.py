"""Simulated SIM cards: identity, lock state, network behaviour and the SMS store."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field


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
    """One message in the SIM's SM storage."""

    index: int
    sender: str
    text: str
    timestamp: str
    read: bool = False


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
    lock: LockState = LockState.READY
    pin_attempts: int = 3
    sms: dict[int, StoredSms] = field(default_factory=dict)
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
    def store_sms(self, sender: str, text: str, timestamp: str) -> int:
        """Store an inbound SMS; return its index (1-based, lowest free)."""
        index = 1
        while index in self.sms:
            index += 1
        self.sms[index] = StoredSms(index, sender, text, timestamp)
        return index
