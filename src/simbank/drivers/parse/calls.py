"""Voice calls: +CLCC (27.007 §7.18; also as a URC after SIMCom's ``AT+CLCC=1``), +CEER text → 3GPP TS 24.008 cause number (Annex H, table
10.5.123), Quectel's ``"CC INFO"`` form, Huawei ``^CEND``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from simbank.drivers.parse.causes import CALL_CAUSES
from simbank.drivers.parse.fields import body_of, is_decimal, opt_int, split_fields, to_int, unquote
from simbank.drivers.types import CallCause, CallDirection, CallInfo, CallState
from simbank.errors import ProtocolGarbage

# 24.008 Annex H cause values and their names (the one table: drivers.parse.causes).
CAUSE_NAMES: dict[int, str] = CALL_CAUSES

# Spellings modems use besides the 24.008 names.
_ALIASES: dict[str, int] = {
    "unassigned number": 1,
    "unallocated number": 1,
    "no user response": 18,
    "no answer": 19,
    "user alerting no answer": 19,
    "call rejected by user": 21,
    "invalid number format": 28,
    "incomplete number": 28,
    "normal unspecified": 31,
    "no circuit channel available": 34,
    "requested circuit channel not available": 44,
    "bearer capability not authorised": 57,
    "acm equal or greater than acmmax": 68,
    "recovery on timer expiry timer number": 102,
}


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


# Longest names first so "Call rejected due to feature…" wins over "Call rejected".
_NAME_TABLE: list[tuple[str, int]] = sorted(
    [(_norm(name), code) for code, name in CAUSE_NAMES.items()] + list(_ALIASES.items()),
    key=lambda item: len(item[0]),
    reverse=True,
)


def cause_from_text(text: str) -> int | None:
    """The 24.008 cause number named in a free text, or ``None``."""
    norm = _norm(text)
    if not norm:
        return None
    padded = f" {norm} "
    for name, code in _NAME_TABLE:
        if f" {name} " in padded:
            return code
    return None


def parse_ceer(line: str) -> CallCause:
    """``+CEER: <report>`` in the forms modems use.

    ``+CEER: "Normal call clearing"`` / ``+CEER: Normal call clearing`` (27.007 free text),
    ``+CEER: "CC INFO","User busy"`` (Quectel), ``+CEER: 17`` or ``+CEER: CC,17`` style numbers,
    ``+CEER: No cause information available`` (no code).
    """
    _prefix, body = body_of(line, ("+CEER",))
    fields = [unquote(f).strip() for f in split_fields(body, raw=line)]
    fields = [f for f in fields if f]
    if fields and fields[0].upper() in {"CC INFO", "SM INFO", "MM INFO", "EMM INFO", "ESM INFO"}:
        fields = fields[1:]
    text = ", ".join(fields)
    code = cause_from_text(text)
    if code is None:
        numbers = [int(f) for f in fields if is_decimal(f) and len(f) <= 3]
        if numbers and 0 < numbers[0] <= 127:
            code = numbers[0]
    if code is not None and not text:
        text = CAUSE_NAMES.get(code, "")
    if code is not None and is_decimal(text):
        text = CAUSE_NAMES.get(code, text)
    return CallCause(code=code, text=text)


def parse_cend(line: str) -> CallCause:
    """Huawei ``^CEND: <call_x>,<duration>,<end_status>[,<cc_cause>]``.

    ``cc_cause`` is the 24.008 cause; it is absent when the call ended before reaching the
    network, then ``end_status`` (Huawei's own code) is kept in the text.
    """
    _prefix, body = body_of(line, ("^CEND",))
    fields = split_fields(body, raw=line)
    if len(fields) < 3:
        raise ProtocolGarbage("^CEND needs at least 3 fields", raw=line)
    to_int(fields[0], raw=line, what="<call_x>")
    end_status = to_int(fields[2], raw=line, what="<end_status>")
    cc_cause = opt_int(fields[3]) if len(fields) > 3 else None
    if cc_cause is None:
        return CallCause(code=None, text=f"end_status {end_status}")
    return CallCause(code=cc_cause, text=CAUSE_NAMES.get(cc_cause, f"cause {cc_cause}"))


def parse_cend_duration(line: str) -> int:
    """Seconds the call lasted, from ``^CEND``."""
    _prefix, body = body_of(line, ("^CEND",))
    fields = split_fields(body, raw=line)
    if len(fields) < 2:
        raise ProtocolGarbage("^CEND without duration", raw=line)
    return to_int(fields[1], raw=line, what="<duration>")


def parse_clcc(line: str) -> CallInfo:
    """``+CLCC: <id>,<dir>,<stat>,<mode>,<mpty>[,<number>,<type>[,<alpha>…]]``."""
    _prefix, body = body_of(line, ("+CLCC",))
    fields = split_fields(body, raw=line)
    if len(fields) < 5:
        raise ProtocolGarbage("+CLCC needs at least 5 fields", raw=line)
    call_id = to_int(fields[0], raw=line, what="<id>")
    direction = to_int(fields[1], raw=line, what="<dir>")
    state = to_int(fields[2], raw=line, what="<stat>")
    mode = to_int(fields[3], raw=line, what="<mode>")
    mpty = to_int(fields[4], raw=line, what="<mpty>")
    if direction not in (0, 1) or mpty not in (0, 1):
        raise ProtocolGarbage("+CLCC <dir>/<mpty> out of range", raw=line)
    try:
        call_state = CallState(state)
    except ValueError:
        raise ProtocolGarbage(f"+CLCC <stat> {state} unknown", raw=line) from None
    number = unquote(fields[5]) if len(fields) > 5 else ""
    return CallInfo(
        id=call_id,
        direction=CallDirection.MOBILE_TERMINATED if direction else CallDirection.MOBILE_ORIGINATED,
        state=call_state,
        mode=mode,
        multiparty=bool(mpty),
        number=number or None,
        number_type=opt_int(fields[6]) if len(fields) > 6 else None,
    )


#: ``<stat>`` SIMCom's ``+CLCC`` URC gives a call that has just ended (27.007 stops at 5).
DISCONNECTED = 6


@dataclass(frozen=True, slots=True)
class CallReport:
    """One ``+CLCC:`` URC (SIMCom after ``AT+CLCC=1``): a call's new state, reported when it
    changes. ``info`` is None for a call that has just ended (``<stat>`` 6)."""

    call_id: int
    info: CallInfo | None


def parse_clcc_report(line: str) -> CallReport:
    """``+CLCC: <id>,<dir>,<stat>,…`` as a URC: the 27.007 line, or ``<stat>`` 6 (ended)."""
    _prefix, body = body_of(line, ("+CLCC",))
    fields = split_fields(body, raw=line)
    if len(fields) < 3:
        raise ProtocolGarbage("+CLCC needs at least 3 fields", raw=line)
    call_id = to_int(fields[0], raw=line, what="<id>")
    if to_int(fields[2], raw=line, what="<stat>") == DISCONNECTED:
        return CallReport(call_id, None)
    return CallReport(call_id, parse_clcc(line))
