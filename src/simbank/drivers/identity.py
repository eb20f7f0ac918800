"""Identity answers: ICCID (every vendor form and the +CRSM fallback), +CPIN, IMSI, IMEI, +COPS?,
and the free-text +CGMI/+CGMM/+CGMR lines."""

from __future__ import annotations

import re

from simbank.drivers.fields import body_of, is_decimal, opt_int, split_fields, to_int, unquote
from simbank.drivers.types import Operator, SimStatus
from simbank.errors import ProtocolGarbage

ICCID_PREFIXES: tuple[str, ...] = ("+CCID", "+QCCID", "+ICCID", "^ICCID", "+CICCID", "ICCID")

# EF_ICCID (2FE2 = 12258) read with +CRSM answers sw1 144 (0x90) = success.
CRSM_SUCCESS = 144


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
# digit, and China Mobile puts hex letters in the body ("898604071118C0501150"); both are real
# (seen in Quectel +QCCID logs), so they are accepted without the Luhn check.
_NO_LUHN_ISSUERS = ("8986",)
_ICCID_CHARS = re.compile(r"89[0-9A-F]{16,18}")


def luhn_required(iccid: str) -> bool:
    """True when ``iccid`` must carry a valid Luhn check digit (E.118, 19-20 decimal digits)."""
    return len(iccid) >= 19 and is_decimal(iccid) and not iccid.startswith(_NO_LUHN_ISSUERS)


def normalise_iccid(value: str, *, raw: str | None = None) -> str:
    """Digits of an ICCID: quotes and trailing ``F`` padding removed, then validated.

    18..20 characters starting with ``89`` (E.118 telecom major industry identifier); a
    19-20 digit ICCID must pass the Luhn check (catches a corrupted read) unless its issuer is
    known not to use one (see ``_NO_LUHN_ISSUERS``). Raises :class:`ProtocolGarbage` otherwise.
    """
    evidence = raw if raw is not None else value
    digits = unquote(value).strip().upper().rstrip("F")
    if not _ICCID_CHARS.fullmatch(digits):
        raise ProtocolGarbage("not an ICCID (89 + 16-18 digits)", raw=evidence)
    if digits.startswith(_NO_LUHN_ISSUERS):
        if not re.fullmatch(r"[0-9A-E]+", digits):
            raise ProtocolGarbage("ICCID has padding inside", raw=evidence)
    elif not is_decimal(digits):
        raise ProtocolGarbage("ICCID is not decimal", raw=evidence)
    if luhn_required(digits) and not luhn_valid(digits):
        raise ProtocolGarbage("ICCID fails the Luhn check", raw=evidence)
    return digits


def parse_iccid(line: str) -> str:
    """``+CCID: <iccid>``, ``+QCCID: …``, ``+ICCID: …``, ``^ICCID: …``, ``ICCID: …`` or bare digits.

    Quoted or not, with or without trailing ``F`` padding.
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


def parse_crsm_iccid(line: str) -> str:
    """``+CRSM: 144,0,"98101430121181157002"`` (answer to ``AT+CRSM=176,12258,0,0,10``)."""
    _prefix, body = body_of(line, ("+CRSM",))
    fields = split_fields(body, raw=line)
    if len(fields) < 3:
        raise ProtocolGarbage("+CRSM answer without data", raw=line)
    sw1 = to_int(fields[0], raw=line, what="<sw1>")
    sw2 = to_int(fields[1], raw=line, what="<sw2>")
    if sw1 != CRSM_SUCCESS:
        raise ProtocolGarbage(f"+CRSM status {sw1},{sw2}", raw=line, code=sw1)
    data = unquote(fields[2]).upper()
    if not re.fullmatch(r"[0-9A-F]+", data):
        raise ProtocolGarbage("+CRSM data is not hex", raw=line)
    return normalise_iccid(swap_bcd(data), raw=line)


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

# +CME ERROR codes an AT+CPIN? may answer with (27.007 §9.2.1).
_CPIN_CME: dict[int, SimStatus] = {
    10: SimStatus.ABSENT,  # SIM not inserted
    11: SimStatus.PIN,  # SIM PIN required
    12: SimStatus.PUK,  # SIM PUK required
    13: SimStatus.ERROR,  # SIM failure
    14: SimStatus.NOT_READY,  # SIM busy
    15: SimStatus.ERROR,  # SIM wrong
    16: SimStatus.ERROR,  # incorrect password
    17: SimStatus.READY,  # SIM PIN2 required
    18: SimStatus.READY,  # SIM PUK2 required
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
    """The SIM status implied by a ``+CME ERROR: <code>`` answering ``AT+CPIN?``."""
    if code is None:
        return SimStatus.ERROR
    return _CPIN_CME.get(code, SimStatus.ERROR)


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
