"""The two FastAGI scripts, ``authorize`` and ``complete``, against an injected authority.

``agi://…/authorize[,number[,modem[,max_duration_s]]]`` asks :meth:`Authorizer.authorize`
and answers with channel variables (see :mod:`simbank.agi.dialplan`); the number is the first
argument, else the channel variable ``SIMBANK_NUMBER``, else ``DIALEDNUMBER``.
``agi://…/complete[,booking]`` (from the hangup handler) settles the booking named by its
argument or ``SIMBANK_BOOKING`` with what ``Dial()`` left on the channel.

A refusal (:class:`~simbank.errors.Refused`, its ``reason`` a contract error code) becomes
``SIMBANK_REFUSED=<code>``; a modem that timed out or failed, ``timeout`` or ``modem_error``
(as the MQTT router answers them); anything else that goes wrong (a timeout, a crash behind the
authority) becomes ``SIMBANK_REFUSED=error`` and a log line — the PBX never dials on a
"maybe". The authority is a protocol so that this package never imports the daemon: the
daemon hands in an adapter over its ``call/authorize`` and ``call/complete`` commands.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Final, Protocol

import structlog

from simbank.agi import dialplan
from simbank.agi.protocol import AgiProtocolError, Environment, printable
from simbank.agi.session import AgiClosed, AgiSession
from simbank.errors import AtTimeout, Refused, SimbankError, StorageUnavailable

log = structlog.get_logger(__name__)

DEFAULT_AUTHORITY_TIMEOUT_S: Final = 120.0
RELEASE_WHEN_CUT_S: Final = 5.0
"""How long releasing a booking may take when the connection was cut off mid-grant."""


class Authorizer(Protocol):
    """What the scripts ask; the daemon's adapter answers as its MQTT commands would."""

    async def authorize(
        self, number: str, modem: str | None, max_duration_s: int | None
    ) -> Mapping[str, object]:
        """The ``call/authorize`` answer (``device``, ``modem``, ``iccid``, ``booking``,
        ``max_duration_s``, ``expires_at``), or :class:`Refused`."""
        ...

    async def complete(
        self, booking: str, duration_s: int, outcome: str, cause: int | None
    ) -> Mapping[str, object]:
        """Settle ``booking`` (the ``call/complete`` answer), or :class:`Refused`."""
        ...


Script = Callable[[AgiSession, Environment, Authorizer, float], Awaitable[None]]


async def _first_number(session: AgiSession, env: Environment) -> str | None:
    if (number := env.arg(1)) is not None:
        return number.strip() or None
    for name in dialplan.NUMBER_VARIABLES:
        if (value := await session.get(name)) is not None and value.strip():
            return value.strip()
    return None


async def authorize(
    session: AgiSession, env: Environment, authority: Authorizer, timeout_s: float
) -> None:
    """The ``authorize`` script: ask, then set the variables (grant or refusal)."""
    await session.set(dialplan.BOOKING, "")  # nothing stale survives a lost connection
    try:
        number = await _first_number(session, env)
        modem = dialplan.parse_modem(env.arg(2))
        max_s = dialplan.parse_max_duration(env.arg(3))
    except dialplan.BadArgument as exc:
        await session.set_all(dialplan.refusal("validation_error", str(exc)))
        log.info("agi_authorize_refused", reason="validation_error", channel=env.channel)
        return
    if number is None:
        message = (
            "no number: pass it as the first argument, or set SIMBANK_NUMBER (or DIALEDNUMBER)"
        )
        await session.set_all(dialplan.refusal("validation_error", message))
        log.info("agi_authorize_refused", reason="validation_error", channel=env.channel)
        return
    try:
        async with asyncio.timeout(timeout_s):
            answer = await authority.authorize(number, modem, max_s)
    except Refused as exc:
        variables = dialplan.refusal(exc.reason, str(exc))
        log.info("agi_authorize_refused", reason=exc.reason, channel=env.channel)
    except AtTimeout as exc:  # as the MQTT router answers these three
        variables = dialplan.refusal("timeout", f"the modem did not answer: {exc}")
        log.warning("agi_authorize_refused", reason="timeout", channel=env.channel)
    except StorageUnavailable as exc:
        variables = dialplan.refusal("storage_unavailable", str(exc))
        log.warning("agi_authorize_refused", reason="storage_unavailable", channel=env.channel)
    except SimbankError as exc:
        variables = dialplan.refusal("modem_error", str(exc))
        log.warning("agi_authorize_refused", reason="modem_error", channel=env.channel)
    except TimeoutError:
        variables = dialplan.refusal(dialplan.UNAVAILABLE, f"no answer within {timeout_s:g} s")
        log.warning("agi_authorize_timed_out", channel=env.channel, timeout_s=timeout_s)
    except ValueError as exc:  # pydantic's ValidationError too: the request was not valid
        variables = dialplan.refusal("validation_error", str(exc))
        log.info("agi_authorize_refused", reason="validation_error", channel=env.channel)
    except Exception as exc:  # a failure behind the authority must not leave "maybe"
        variables = dialplan.refusal(dialplan.UNAVAILABLE, f"simbank failed: {exc!r}")
        log.exception("agi_authorize_failed", channel=env.channel)
    else:
        variables = await _grant(env, authority, answer, max_s, timeout_s)
    booking = variables.get(dialplan.BOOKING, "")
    try:
        if booking and session.hung_up:
            raise AgiClosed("the caller hung up while simbank authorized")
        await session.set_all(variables)
        if booking and session.hung_up:
            raise AgiClosed("the caller hung up as the booking was set")
    except (AgiProtocolError, OSError, TimeoutError, asyncio.CancelledError) as exc:
        if booking:
            # The dialplan will never dial nor run its hangup handler: settle the booking
            # unused now rather than hold the modem until it expires. Cut off (the
            # connection's deadline, or the server closing), it is released in a short while.
            cut = isinstance(exc, asyncio.CancelledError)
            await _release_unused(
                authority, booking, min(timeout_s, RELEASE_WHEN_CUT_S) if cut else timeout_s
            )
        raise


async def _release_unused(authority: Authorizer, booking: str, timeout_s: float) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            await authority.complete(booking, 0, "failed", None)
        log.info("agi_booking_released_unused", booking=booking)
    except Exception:  # it expires and is settled then: book-before-act holds
        log.warning("agi_unused_booking_kept", booking=booking, exc_info=True)


async def _grant(
    env: Environment,
    authority: Authorizer,
    answer: Mapping[str, object],
    max_s: int | None,
    timeout_s: float,
) -> dict[str, str]:
    try:
        variables = dialplan.grant(answer, max_s)
    except ValueError as exc:
        # booked but unusable (no PBX device): settle it unused at once rather than hold it
        # until it expires, and don't dial
        log.error("agi_authorize_unusable", channel=env.channel, error=str(exc))  # noqa: TRY400 -- a bad answer, not a crash: no traceback
        booking = answer.get("booking")
        if isinstance(booking, str) and booking:
            await _release_unused(authority, booking, timeout_s)
        return dialplan.refusal(dialplan.UNAVAILABLE, str(exc))
    log.info(
        "agi_authorized",
        channel=env.channel,
        modem=variables[dialplan.MODEM],
        booking=variables[dialplan.BOOKING],
    )
    return variables


async def complete(
    session: AgiSession, env: Environment, authority: Authorizer, timeout_s: float
) -> None:
    """The ``complete`` script: read what ``Dial()`` left, settle the booking."""
    booking = env.arg(1) or await session.get(dialplan.BOOKING)
    if not booking:
        log.info("agi_complete_without_booking", channel=env.channel)
        await session.set(dialplan.ERROR, "no SIMBANK_BOOKING on this channel: nothing to settle")
        return
    outcome = dialplan.outcome_of(await session.get("DIALSTATUS"))
    answered_ms = await session.get("ANSWEREDTIME_MS")
    answered_s = None if answered_ms else await session.get("ANSWEREDTIME")
    billsec = None if answered_ms or answered_s else await session.get("CDR(billsec)")
    duration_s, source = dialplan.duration_of(answered_ms, answered_s, billsec)
    cause = dialplan.cause_of(await session.get("HANGUPCAUSE"))
    try:
        async with asyncio.timeout(timeout_s):
            await authority.complete(booking, duration_s, outcome, cause)
    except Refused as exc:
        await session.set(dialplan.ERROR, printable(f"{exc.reason}: {exc}"))
        log.warning("agi_complete_refused", booking=booking, reason=exc.reason)
        return
    except TimeoutError:
        await session.set(dialplan.ERROR, f"no answer within {timeout_s:g} s")
        log.warning("agi_complete_timed_out", booking=booking, timeout_s=timeout_s)
        return
    except Exception as exc:
        await session.set(dialplan.ERROR, printable(f"simbank failed: {exc!r}"))
        log.exception("agi_complete_failed", booking=booking)
        return
    await session.set(dialplan.COMPLETED, outcome)
    log.info(
        "agi_completed",
        booking=booking,
        outcome=outcome,
        duration_s=duration_s,
        duration_from=source,
        cause=cause,
        hung_up=session.hung_up,
    )


SCRIPTS: Final[Mapping[str, Script]] = {"authorize": authorize, "complete": complete}
