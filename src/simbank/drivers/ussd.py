"""A USSD request over one channel (27.007 §7.15): the code sent in the form the modem
wants, the ``+CUSD`` that answers it told from the noise around it, the session closed.

**The request's form** (modem-realism §F5). Most modems take the code as text in their
character set (``AT+CUSD=1,"*100#",15``); Huawei wants packed GSM-7 as hex
(``AT+CUSD=1,"AA180C3602",15``: ModemManager ``plugins/huawei/mm-broadband-modem-huawei.c``
L2686-2712 encodes so for every Huawei), and so do some Qualcomm-based sticks. A dialect
names its first form (``packed_first``); a form the modem refuses — ``ERROR``, a ``+CME
ERROR`` of :data:`FORM_REFUSAL_CODES` or ``+CUSD: 4`` — is followed by one request in the
other form, and the form that got a real answer is kept in the capability
:data:`CAPABILITY` (``capabilities["ussd_packed"]``) for the connection, then used alone.
This is ModemManager's habit (``src/mm-broadband-modem.c`` L6332-6480 @ 9a2d5863: encoded
first, unencoded on an immediate error, the working one cached as ``use_unencoded_ussd``),
extended to ``+CUSD: 4``. A request that got a real answer is never sent again.

**The answer** (§B15, §F6; 27.007 ``<m>``), by :func:`verdict`:

* 0 (done) and 1 (further action): the text. After 1 the network keeps the session open: it
  is cancelled with ``AT+CUSD=2`` unless the caller asks to ``keep_open`` (then the reply is
  the next request, and the last one closes it — or the network times it out);
* 2 (ended by the network): the text when there is one (Quectel M35, Telit HE910-D and an
  Indonesian dump carry the real reply so). A bare ``+CUSD: 2`` — or 3, "another local
  client has responded" — before the reply is skipped and the wait goes on within the same
  timeout; one after the reply is never read (python-gsmmodem ``modem.py`` L1130-1150);
* 4 (not supported): :class:`CommandError` with ``code=4``, ``retryable=False`` — also when a
  ``+CME ERROR`` comes with it (the SIMCom habit, §F6);
* 5 (the network timed out): :class:`AtTimeout` with ``code=5`` (transient).

Several ``+CUSD`` lines read in one answer (before the ``OK``) are ranked: a final answer
(0/1) over a network release with text (2) over a refusal (4/5). python-gsmmodem issue 14
records Vodacom sending ``+CUSD: 2,"Initiating Release",15`` before the real reply.
The ``+CUSD`` may come inside the response (before ``OK``) or after it: both are read.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Final

import structlog

from simbank.at.channel import AtChannel
from simbank.at.codes import CmeError
from simbank.at.results import (
    LONG,
    MEDIUM,
    Command,
    FinalResult,
    Response,
    ResultKind,
    Urc,
    line_name,
)
from simbank.drivers.parse.messaging import parse_cusd
from simbank.drivers.types import UssdReply
from simbank.errors import AtTimeout, CommandError, SimbankError
from simbank.sms.ussd import encode_ussd_request

__all__ = [
    "CAPABILITY",
    "FORM_REFUSAL_CODES",
    "USSD_CODE",
    "Verdict",
    "form_refused",
    "pick_reply",
    "request_ussd",
    "verdict",
]

#: The capability holding the request form that got a real answer on this connection
#: (True: packed GSM-7 hex; absent: not known yet).
CAPABILITY: Final = "ussd_packed"
#: A USSD code or a reply in an open session: digits, ``*``, ``#`` and ``+``.
USSD_CODE: Final = re.compile(r"[0-9*#+]{1,160}")

#: ``+CME ERROR`` codes that may mean "not in this form" (the string, its characters or
#: length, the operation itself): worth one request in the other form. The others — SIM
#: state, no network, busy — say nothing about the form and are raised as they are.
FORM_REFUSAL_CODES: Final[frozenset[CmeError]] = frozenset(
    {
        CmeError.OPERATION_NOT_ALLOWED,
        CmeError.OPERATION_NOT_SUPPORTED,
        CmeError.TEXT_STRING_TOO_LONG,
        CmeError.INVALID_CHARACTERS_IN_TEXT_STRING,
        CmeError.INCORRECT_PARAMETERS,
        CmeError.LANGUAGE_OR_ALPHABET_NOT_SUPPORTED,
        CmeError.UNEXPECTED_DATA_VALUE,
        CmeError.UNKNOWN,
    }
)

_log = structlog.get_logger("simbank.drivers.ussd")


class Verdict(StrEnum):
    """What one ``+CUSD`` says about the request it answers."""

    ANSWER = "answer"  # m=0, 1, or 2 with text: the reply
    SKIP = "skip"  # a bare m=2, or m=3: not the reply; wait on
    UNSUPPORTED = "unsupported"  # m=4
    NETWORK_TIMEOUT = "network_timeout"  # m=5


def verdict(reply: UssdReply) -> Verdict:
    """The verdict on ``reply`` (an unknown ``<m>`` with text is an answer, without one it is
    skipped)."""
    if reply.status == 4:
        return Verdict.UNSUPPORTED
    if reply.status == 5:
        return Verdict.NETWORK_TIMEOUT
    if reply.status in (0, 1):
        return Verdict.ANSWER
    return Verdict.ANSWER if reply.text else Verdict.SKIP


def _rank(reply: UssdReply) -> int:
    found = verdict(reply)
    if found is Verdict.SKIP:
        return 0
    if found is not Verdict.ANSWER:
        return 1
    return 3 if reply.status in (0, 1) else 2


def pick_reply(lines: Iterable[str]) -> UssdReply | None:
    """The ``+CUSD`` that answers, from lines read in one response: the best ranked (a final
    answer over a release with text over a refusal; the first of equals), None when every
    line is to be skipped (or there is none)."""
    best: UssdReply | None = None
    for line in lines:
        reply = parse_cusd(line)
        if _rank(reply) and (best is None or _rank(reply) > _rank(best)):
            best = reply
    return best


def form_refused(final: FinalResult) -> bool:
    """True if a failed ``AT+CUSD=1`` may have failed for its form (plain ``ERROR``, ``COMMAND
    NOT SUPPORT``, or a code of :data:`FORM_REFUSAL_CODES`)."""
    if final.kind is ResultKind.ERROR:
        return True
    return final.kind is ResultKind.CME_ERROR and final.code in FORM_REFUSAL_CODES


def _wanted(urc: Urc) -> bool:
    return verdict(parse_cusd(urc.text)) is not Verdict.SKIP


def _unsupported(reply: UssdReply) -> CommandError:
    return CommandError(
        "USSD request not supported by the network", raw=reply.raw, code=4, retryable=False
    )


async def _exchange(
    channel: AtChannel, code: str, *, packed: bool, deadline: float
) -> UssdReply | Response:
    """One ``AT+CUSD=1`` and the ``+CUSD`` answering it (any verdict but SKIP), or the failed
    response when the modem refused the command without one. AtTimeout past ``deadline``."""
    string, dcs = encode_ussd_request(code, packed_hex=packed)
    loop = asyncio.get_running_loop()
    with channel.expect_urc("+CUSD", _wanted) as waiter:  # before sending: no race
        response = await channel.request(
            Command(f'AT+CUSD=1,"{string}",{dcs}', prefix="+CUSD", timeout=LONG), check=False
        )
        reply = pick_reply(line for line in response.lines if line_name(line) == "+CUSD")
        if reply is not None:
            return reply
        if not response.ok:
            return response
        urc = await waiter.wait(max(deadline - loop.time(), 0.0))
    return parse_cusd(urc.text)


async def _cancel(channel: AtChannel, log: structlog.typing.FilteringBoundLogger) -> None:
    """``AT+CUSD=2``; a failure is logged, not raised (oFono treats cancel as always done:
    its Huawei and Qualcomm drivers see every error as unexpected)."""
    try:
        response = await channel.request(Command("AT+CUSD=2", timeout=MEDIUM), check=False)
    except AtTimeout as exc:
        log.info("ussd_cancel_unanswered", error=str(exc))
        return
    if not response.ok:
        log.info("ussd_cancel_refused", final=response.final.raw)


async def request_ussd(
    channel: AtChannel,
    code: str,
    timeout: float,  # noqa: ASYNC109 (the driver API takes a timeout)
    *,
    capabilities: dict[str, bool],
    packed_first: bool = False,
    keep_open: bool = False,
    log: structlog.typing.FilteringBoundLogger = _log,
) -> str:
    """Send ``code`` and return the network's reply text ("" for an answer without one).

    ``capabilities`` is the driver's dict: :data:`CAPABILITY` in it fixes the form, else
    ``packed_first`` names the first form tried and the other is tried once if the modem
    refuses it (see the module docstring). ``timeout`` bounds the wait for the reply (both
    forms together); the command itself has the channel's LONG limit.

    Raises ValueError (not a USSD string), CommandError (``code=4``, ``retryable=False``:
    not supported; or the modem's own ``ERROR``/``+CME ERROR``, classified as for any
    command), AtTimeout (no reply within ``timeout``; ``code=5``: the network timed out),
    SimStateError (the SIM is locked or absent), PortLost.
    """
    if not USSD_CODE.fullmatch(code):
        raise ValueError("a USSD code is digits, *, # and +")
    known = capabilities.get(CAPABILITY)
    forms = (known,) if known is not None else (packed_first, not packed_first)
    deadline = asyncio.get_running_loop().time() + timeout
    errors: list[SimbankError] = []
    for packed in forms:
        outcome = await _exchange(channel, code, packed=packed, deadline=deadline)
        if isinstance(outcome, Response):
            try:
                outcome.raise_for_error()
            except CommandError as exc:
                if not form_refused(outcome.final):
                    raise  # the SIM, the network, a busy modem: not the form
                errors.append(exc)
            log.info("ussd_form_refused", packed_hex=packed, final=outcome.final.raw)
            continue
        found = verdict(outcome)
        if found is Verdict.UNSUPPORTED:
            errors.append(_unsupported(outcome))
            if not packed:
                # The network read the code and does not support it: a packed retry would
                # only send it hex it passes on literally (and might "learn" the wrong form).
                break
            # A packed request a text-only modem passed on literally: try the text form.
            log.info("ussd_form_refused", packed_hex=packed, final=outcome.raw)
            continue
        if found is Verdict.NETWORK_TIMEOUT:
            await _cancel(channel, log)  # no stale session for the next request
            raise AtTimeout("the network timed the USSD session out", raw=outcome.raw, code=5)
        if known is None:
            capabilities[CAPABILITY] = packed
            log.info("ussd_form_found", packed_hex=packed)
        if outcome.status == 1 and not keep_open:
            await _cancel(channel, log)
        return outcome.text or ""
    # every form refused: "not supported" is the network's word, preferred to a bare ERROR
    raise next((e for e in errors if e.code == 4), errors[-1])
