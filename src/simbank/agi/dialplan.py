"""What the two scripts read from and write to the channel, as pure functions.

``authorize`` answers with channel variables (:data:`OUTPUTS`): a grant sets every one of them
(``SIMBANK_REFUSED`` and ``SIMBANK_ERROR`` to empty), anything else sets ``SIMBANK_REFUSED`` to
a code and empties the rest, so a second ``authorize`` on the same channel leaves nothing
stale. ``complete`` reads what Asterisk's ``Dial()`` left behind (``DIALSTATUS``,
``ANSWEREDTIME_MS``/``ANSWEREDTIME``, ``CDR(billsec)``, ``HANGUPCAUSE``; see Dial's documented
variables in ``apps/app_dial.c``) and turns it into the call's outcome, billed seconds and
cause.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Final, Literal

from simbank.agi.protocol import printable

Outcome = Literal["completed", "busy", "no_answer", "failed", "unknown"]
"""How a booked call ended (the contract's ``CallOutcome``, which ``call/complete`` takes)."""

DEVICE: Final = "SIMBANK_DEVICE"
MODEM: Final = "SIMBANK_MODEM"
ICCID: Final = "SIMBANK_ICCID"
BOOKING: Final = "SIMBANK_BOOKING"
MAX_DURATION: Final = "SIMBANK_MAX_DURATION"
EXPIRES_AT: Final = "SIMBANK_EXPIRES_AT"
REFUSED: Final = "SIMBANK_REFUSED"
ERROR: Final = "SIMBANK_ERROR"
COMPLETED: Final = "SIMBANK_COMPLETED"

OUTPUTS: Final = (DEVICE, MODEM, ICCID, MAX_DURATION, EXPIRES_AT, ERROR, REFUSED, BOOKING)
"""What ``authorize`` sets, every time. A grant is written in this order, the booking last; a
refusal writes the booking (empty) first. With the booking cleared before the daemon is asked,
a connection lost half-way leaves ``SIMBANK_BOOKING`` empty, never stale: the dialplan tests
the booking, so it does not dial."""

NUMBER_VARIABLES: Final = ("SIMBANK_NUMBER", "DIALEDNUMBER")
"""Where ``authorize`` looks for the number when the first argument is empty, in order."""

UNAVAILABLE: Final = "error"
"""``SIMBANK_REFUSED`` when simbank could not decide (timeout, crash, a malformed answer):
not a contract error code, so a dialplan can tell "no" from "don't know" (both: don't dial)."""

_MODEM_ID = re.compile(r"[a-z0-9_-]{1,64}")
MAX_DURATION_LIMIT: Final = 86400


class BadArgument(ValueError):
    """An AGI argument simbank cannot use; answered ``validation_error``."""


def parse_modem(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not _MODEM_ID.fullmatch(raw):
        raise BadArgument(f"modem {raw[:64]!r} is not a modem id (a-z, 0-9, '_', '-')")
    return raw


def parse_max_duration(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DURATION_LIMIT:
        raise BadArgument(f"max_duration_s {raw[:16]!r} is not 1-{MAX_DURATION_LIMIT} seconds")
    return int(raw)


def _text(value: object) -> str:
    return "" if value is None else printable(str(value))


def grant(answer: Mapping[str, object], requested_max_s: int | None) -> dict[str, str]:
    """The variables for a granted call, from the ``call/authorize`` answer (``device``,
    ``modem``, ``iccid``, ``booking``, ``max_duration_s``, ``expires_at``). An answer without
    a booking or a device is no grant: :class:`ValueError` (the caller refuses)."""
    booking, device = answer.get("booking"), answer.get("device")
    if not booking or not isinstance(booking, str):
        raise ValueError("the authorize answer has no booking")
    if not device or not isinstance(device, str):
        raise ValueError(
            f"modem {answer.get('modem')!r} has no PBX device configured (its [[modems]] device "
            "key): nothing to dial on"
        )
    max_s = answer.get("max_duration_s", requested_max_s)
    return {
        DEVICE: _text(device),
        MODEM: _text(answer.get("modem")),
        ICCID: _text(answer.get("iccid")),
        MAX_DURATION: _text(max_s),
        EXPIRES_AT: _text(answer.get("expires_at")),
        ERROR: "",
        REFUSED: "",
        BOOKING: _text(booking),
    }


def refusal(code: str, message: str) -> dict[str, str]:
    """The variables for "don't dial": ``SIMBANK_REFUSED`` = ``code`` (a contract error code
    such as ``quota_exhausted``, or :data:`UNAVAILABLE`), ``SIMBANK_ERROR`` = the message."""
    return {
        BOOKING: "",
        REFUSED: printable(code, 64) or UNAVAILABLE,
        ERROR: printable(message),
        **{name: "" for name in OUTPUTS if name not in (BOOKING, REFUSED, ERROR)},
    }


# -- complete -----------------------------------------------------------------------------

_OUTCOMES: Final[Mapping[str, Outcome]] = {
    "ANSWER": "completed",
    "BUSY": "busy",
    "NOANSWER": "no_answer",
    "CANCEL": "no_answer",  # the caller gave up while it rang: the SIM dialled, nobody answered
    "DONTCALL": "no_answer",
    "TORTURE": "no_answer",
    "CONGESTION": "failed",
    "CHANUNAVAIL": "failed",
    "INVALIDARGS": "failed",
}


def outcome_of(dialstatus: str | None) -> Outcome:
    """``DIALSTATUS`` → the outcome: unset (``Dial()`` never ran: nothing was dialled) →
    ``failed``; a value this table does not know → ``unknown``."""
    status = (dialstatus or "").strip().upper()
    if not status:
        return "failed"
    return _OUTCOMES.get(status, "unknown")


def _seconds(raw: str | None) -> int | None:
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw.strip())


def duration_of(
    answered_ms: str | None, answered_s: str | None, billsec: str | None
) -> tuple[int, str]:
    """The call's talk time in whole seconds, rounded up (a started second counts), and where
    it came from: ``ANSWEREDTIME_MS``, else ``ANSWEREDTIME``, else ``CDR(billsec)``, else 0."""
    if (ms := _seconds(answered_ms)) is not None:
        return math.ceil(ms / 1000), "ANSWEREDTIME_MS"
    if (seconds := _seconds(answered_s)) is not None:
        return seconds, "ANSWEREDTIME"
    if (seconds := _seconds(billsec)) is not None:
        return seconds, "CDR(billsec)"
    return 0, "none"


MAX_CAUSE: Final = 255


def cause_of(hangupcause: str | None) -> int | None:
    """``HANGUPCAUSE`` → the cause. Asterisk's causes are Q.850 numbers, which 3GPP 24.008's
    call-control causes (what ``call/complete`` takes) share: 16 normal clearing, 17 user busy,
    21 call rejected, 34 no circuit… 0, unset, not a number or over 255 → None."""
    cause = _seconds(hangupcause)
    return cause if cause and cause <= MAX_CAUSE else None
