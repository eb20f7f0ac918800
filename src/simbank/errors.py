"""The domain error hierarchy: one root, a few branches that drive policy.

Every error carries its evidence: the raw line (if any), a cause code (if any) and when it
happened. Callers decide retry vs reset vs quarantine by branch, never by message text.
"""

from __future__ import annotations

import time


class SimbankError(Exception):
    """Root of every error simbank raises on purpose."""

    def __init__(self, message: str, *, raw: str | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.raw = raw
        self.code = code
        self.at = time.time()


class TransientError(SimbankError):
    """Worth retrying as is (a busy modem, a timeout that may pass)."""


class AtTimeout(TransientError):
    """A command got no final result within its timeout."""


class ModemUnresponsive(AtTimeout):
    """Given up without waiting: the modem let a command time out and then did not answer a
    plain ``AT`` either. Waiting longer (another poll of the SIM, say) is pointless."""


class ModemFault(SimbankError):
    """The modem misbehaves; the supervisor resets or reopens it."""


class PortLost(ModemFault):
    """The serial port went away (unplug, EIO) or was never there."""


class PortUnavailable(PortLost):
    """The serial device does not exist or cannot be opened."""


class CommandError(SimbankError):
    """The modem answered a command with ERROR / +CME ERROR / +CMS ERROR.

    The codec classifies the code with the named sets of ``simbank.at.codes``: ``sms`` says
    it is a +CMS code, ``retryable`` that the same command may succeed after a pause (a busy
    SIM, a network timeout); the router passes both to the client, who decides to retry."""

    def __init__(
        self,
        message: str,
        *,
        raw: str | None = None,
        code: int | None = None,
        sms: bool = False,
        retryable: bool = False,
    ) -> None:
        super().__init__(message, raw=raw, code=code)
        self.sms = sms
        self.retryable = retryable


class SimStateError(CommandError):
    """The modem refused a command because of the SIM: PIN or PUK required, absent, blocked,
    failed (``problem``: a ``simbank.at.codes.SimProblem`` value). Policy: the supervisor
    reads the card again at once, so a lock is found, quarantined and reported against the
    SIM really in the slot; the request is answered ``modem_error``."""

    def __init__(
        self,
        message: str,
        *,
        problem: str,
        raw: str | None = None,
        code: int | None = None,
        sms: bool = False,
    ) -> None:
        super().__init__(message, raw=raw, code=code, sms=sms)
        self.problem = problem


class ProtocolGarbage(SimbankError):
    """Bytes from the modem that cannot be parsed (noise, over-long lines)."""


class ConfigError(SimbankError):
    """The configuration is invalid; carries one line per problem."""

    def __init__(self, message: str, lines: list[str] | None = None) -> None:
        super().__init__(message)
        self.lines = lines or [message]


class Refused(SimbankError):
    """A request the daemon will not carry out; ``reason`` is an MQTT error code (contract)."""

    def __init__(self, reason: str, message: str, **data: object) -> None:
        super().__init__(message)
        self.reason = reason
        self.data = data


class LedgerError(SimbankError):
    """The ledger cannot be opened, migrated or written, or was asked something impossible."""


class StorageUnavailable(LedgerError):
    """The ledger's storage failed (disk full, read-only, an I/O error, a locked or corrupt
    file): nothing can be booked now. Answered ``storage_unavailable``; the daemon runs on.

    ``cause`` says which (``disk_full``, ``read_only``, ``io_error``, ``locked``, ``corrupt``
    or ``unknown``): the gateway's ``degraded`` reason, and for ``corrupt`` an integrity check."""

    def __init__(self, message: str, *, cause: str = "unknown") -> None:
        super().__init__(message)
        self.cause = cause
