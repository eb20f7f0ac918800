"""Identity answers: ICCID (every vendor form and the +CRSM fallback), +CPIN, IMSI, IMEI, +COPS?,
and the free-text +CGMI/+CGMM/+CGMR lines."""

from __future__ import annotations

from simbank.at.codes import (
    SIM_ABSENT_CODES,
    SIM_BUSY_CODES,
    SIM_PIN2_CODES,
    SIM_PIN_CODES,
    SIM_PUK_CODES,
)
from simbank.drivers.parse.fields import body_of, is_decimal, opt_int, split_fields, to_int, unquote
from simbank.drivers.types import Operator, SimStatus
from simbank.errors import ProtocolGarbage

ICCID_PREFIXES: tuple[str, ...] = ("+CCID", "+QCCID", "+ICCID", "^ICCID", "+CICCID", "ICCID")


def luhn_valid(digits: str) -> bool:
    """True if the last digit is the Luhn check digit of the others (ITU-T E.118 ICCID)."""
    if not is_decimal(digits) or len(digits) < 2:
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


# Chinese issuers (MCC prefix 8986) use 20-character ICCIDs whose last digit is not a Luhn check
# digit, and China Mobile puts hex letters in the account part ("898602F9091830030220",
# ModemManager commit 099d54a4); neither is checked against Luhn.
_NO_LUHN_ISSUERS = ("8986",)
_HEX = frozenset("0123456789ABCDEF")
# ModemManager mm_3gpp_parse_iccid: hex letters only after "89" + country + issuer (index 6 on).
_ISSUER_DIGITS = 6
ICCID_MIN_LEN = 18
ICCID_MAX_LEN = 20

# EF_ICCID (2FE2 = 12258) read with +CRSM; status words that mean "data returned" (TS 51.011
# §9.4.1: 90 00 normal, 91 xx / 92 xx / 9F xx success with extra information), as ModemManager
# mm-base-sim.c parse_iccid accepts them.
CRSM_SUCCESS = 144
_CRSM_SUCCESS_SW1 = frozenset({0x91, 0x92, 0x9F})


def luhn_required(iccid: str) -> bool:
    """True when ``iccid`` should carry a Luhn check digit (E.118: 19-20 decimal digits)."""
    return len(iccid) >= 19 and is_decimal(iccid) and not iccid.startswith(_NO_LUHN_ISSUERS)


def iccid_checksum_ok(iccid: str) -> bool:
    """False only when ``iccid`` should carry a Luhn check digit and the digit is wrong.

    A failed check is a warning about the SIM (a corrupted read, or an issuer that ignores
    E.118), never a reason to refuse the ICCID: the parsers return it either way.
    """
    return not luhn_required(iccid) or luhn_valid(iccid)


def normalise_iccid(value: str, *, raw: str | None = None) -> str:
    """An ICCID as printed on the card, from any form a modem reports it in.

    Follows ModemManager's ``mm_3gpp_parse_iccid``: quotes and blanks dropped, upper-cased;
    a value starting ``98`` is the nibble-swapped EF_ICCID form (20 characters, swapped back);
    then ``89`` (E.118 telecom industry identifier), hex letters allowed after the first six
    digits (China Mobile), trailing ``F`` padding removed, 18-20 characters left. The Luhn
    check digit is *not* enforced: see :func:`iccid_checksum_ok`. Raises
    :class:`ProtocolGarbage` otherwise.
    """
    evidence = raw if raw is not None else value
    text = unquote(value).strip().upper()
    if not text or not set(text) <= _HEX:
        raise ProtocolGarbage("ICCID has a character that is not a hex digit", raw=evidence)
    if text.startswith("98"):
        if len(text) != ICCID_MAX_LEN:
            raise ProtocolGarbage("swapped ICCID must have 20 digits", raw=evidence)
        text = swap_bcd(text)
    elif not text.startswith("89"):
        raise ProtocolGarbage("not an ICCID (does not start with 89)", raw=evidence)
    text = text.rstrip("F")
    if not ICCID_MIN_LEN <= len(text) <= ICCID_MAX_LEN:
        raise ProtocolGarbage("ICCID must have 18-20 digits", raw=evidence)
    if not is_decimal(text[:_ISSUER_DIGITS]):
        raise ProtocolGarbage("ICCID issuer prefix is not decimal", raw=evidence)
    return text


def parse_iccid(line: str) -> str:
    """``+CCID: <iccid>``, ``+QCCID: …``, ``+ICCID: …``, ``^ICCID: …``, ``ICCID: …`` or bare digits.

    Quoted or not, with or without trailing ``F``/``f`` padding, swapped (``98…``) or not.
    """
    text = line.strip()
    if not text:
        raise ProtocolGarbage("empty ICCID line", raw=line)
    if text[0] in "+^" or text.upper().startswith("ICCID"):
        _prefix, body = body_of(text, ICCID_PREFIXES)
    else:
        body = text
    return normalise_iccid(split_fields(body, raw=line)[0], raw=line)


def swap_bcd(hex_digits: str) -> str:
    """Swap each pair of nibbles: ``"981014…"`` → ``"890141…"`` (SIM files store BCD swapped)."""
    if len(hex_digits) % 2:
        raise ProtocolGarbage("odd number of BCD digits", raw=hex_digits)
    return "".join(hex_digits[i + 1] + hex_digits[i] for i in range(0, len(hex_digits), 2))


def crsm_success(sw1: int, sw2: int) -> bool:
    """True for the status words of a +CRSM READ BINARY that returned the file's data."""
    return (sw1 == CRSM_SUCCESS and sw2 == 0) or sw1 in _CRSM_SUCCESS_SW1


def parse_crsm(line: str) -> tuple[int, int, str]:
    """``+CRSM: <sw1>,<sw2>[,<response>]`` → ``(sw1, sw2, HEX)``; data ``""`` when absent.

    Blanks and quotes around the data vary by modem (ModemManager test_crsm_response).
    """
    _prefix, body = body_of(line, ("+CRSM",))
    fields = split_fields(body, raw=line)
    if len(fields) < 2:
        raise ProtocolGarbage("+CRSM answer without status words", raw=line)
    sw1 = to_int(fields[0], raw=line, what="<sw1>")
    sw2 = to_int(fields[1], raw=line, what="<sw2>")
    data = unquote(fields[2]).upper() if len(fields) > 2 else ""
    if not set(data) <= _HEX:
        raise ProtocolGarbage("+CRSM data is not hex", raw=line)
    return sw1, sw2, data


def parse_crsm_iccid(line: str) -> str:
    """``+CRSM: 144,0,"98101430121181157002"`` (answer to ``AT+CRSM=176,12258,0,0,10``)."""
    sw1, sw2, data = parse_crsm(line)
    if not crsm_success(sw1, sw2):
        raise ProtocolGarbage(f"+CRSM status {sw1},{sw2}", raw=line, code=sw1)
    if not data:
        raise ProtocolGarbage("+CRSM answer without data", raw=line)
    return normalise_iccid(data, raw=line)


_CPIN: dict[str, SimStatus] = {
    "READY": SimStatus.READY,
    "SIM PIN": SimStatus.PIN,
    "SIM PUK": SimStatus.PUK,
    "PH-SIM PIN": SimStatus.PIN,
    "PH-FSIM PIN": SimStatus.PIN,
    "PH-FSIM PUK": SimStatus.PUK,
    "PH-NET PIN": SimStatus.PIN,
    "PH-NET PUK": SimStatus.PUK,
    # 27.007 §8.3: PIN2/PUK2 are asked for only after a failed PIN2 operation; the SIM itself
    # serves calls and SMS normally.
    "SIM PIN2": SimStatus.READY,
    "SIM PUK2": SimStatus.READY,
    # Non-standard answers seen from SIMCom and Fibocom firmware.
    "NOT READY": SimStatus.NOT_READY,
    "NOT INSERTED": SimStatus.ABSENT,
    "SIM REMOVED": SimStatus.ABSENT,
    "SIM NOT INSERTED": SimStatus.ABSENT,
}


def parse_cpin(line: str) -> SimStatus:
    """``+CPIN: <code>`` → :class:`SimStatus`."""
    _prefix, body = body_of(line, ("+CPIN",))
    code = " ".join(unquote(body).upper().split())
    try:
        return _CPIN[code]
    except KeyError:
        raise ProtocolGarbage(f"unknown +CPIN code {code!r}", raw=line) from None


def sim_status_from_cme(code: int | None) -> SimStatus:
    """The SIM status implied by a ``+CME ERROR: <code>`` answering ``AT+CPIN?``.

    Decided by the named sets of :mod:`simbank.at.codes` (the one table of SIM codes):
    absent → ABSENT, busy → NOT_READY, PIN/PUK (and the phone/personalisation locks) → PIN/PUK,
    PIN2/PUK2 → READY (27.007 §8.3: only PIN2-protected features need them), anything else
    (SIM failure, SIM wrong, blocked, incorrect password, unknown) → ERROR.
    """
    if code is None:
        return SimStatus.ERROR
    if code in SIM_ABSENT_CODES:
        return SimStatus.ABSENT
    if code in SIM_BUSY_CODES:
        return SimStatus.NOT_READY
    if code in SIM_PIN_CODES:
        return SimStatus.PIN
    if code in SIM_PUK_CODES:
        return SimStatus.PUK
    if code in SIM_PIN2_CODES:
        return SimStatus.READY
    return SimStatus.ERROR


def parse_imsi(line: str) -> str:
    """``AT+CIMI`` answer: 6..15 digits (some firmware prefixes ``+CIMI:``)."""
    text = line.strip()
    if text.upper().startswith("+CIMI"):
        _prefix, text = body_of(text, ("+CIMI",))
    digits = unquote(text)
    if not is_decimal(digits) or not 6 <= len(digits) <= 15:
        raise ProtocolGarbage("IMSI must be 6-15 digits", raw=line)
    return digits


def parse_imei(line: str) -> str | None:
    """``AT+CGSN`` answer: 14..17 digits (bare, quoted or ``+CGSN:``); ``None`` if it is none."""
    text = line.strip()
    if text.upper().startswith("+CGSN"):
        _prefix, text = body_of(text, ("+CGSN",))
    digits = unquote(split_fields(text, raw=line)[0])
    if is_decimal(digits) and 14 <= len(digits) <= 17:
        return digits
    return None


def clean_identity(line: str, prefix: str) -> str:
    """``+CGMI: Quectel`` / ``"Motorola"`` / ``Manufacturer: X`` → the bare value."""
    text = line.strip()
    for tag in (prefix, prefix.replace("+C", "+"), "Manufacturer:", "Model:", "Revision:"):
        if text.upper().startswith(tag.upper()):
            text = text[len(tag) :].lstrip(":").strip()
            break
    return unquote(text)


def parse_cops(line: str) -> Operator:
    """``+COPS: <mode>[,<format>,"<oper>"[,<AcT>]]``."""
    _prefix, body = body_of(line, ("+COPS",))
    fields = split_fields(body, raw=line)
    mode = to_int(fields[0], raw=line, what="<mode>")
    fmt = opt_int(fields[1]) if len(fields) > 1 else None
    name = unquote(fields[2]).strip() if len(fields) > 2 else ""
    act = opt_int(fields[3]) if len(fields) > 3 else None
    return Operator(name=name or None, mode=mode, act=act, format=fmt, raw=line.strip())
