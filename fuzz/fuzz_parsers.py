"""Fuzz target: the drivers' pure parsers, each dialect's URC parsing, and the drivers' command
flows fed with fuzzed answers through the real codec.

``check(data)`` is the oracle, shared by the atheris run (fuzz/libfuzzer.py) and the default test suite
(tests/unit/test_fuzz_parsers.py replays every file in fuzz/regressions/parsers/ through it).

Input layout: byte 0 picks a parser (or, past the parsers, a driver flow), byte 1 says how to
build the text (prepend one of the parser's own prefixes so the fuzzer gets past the prefix
check at once; Latin-1 or UTF-8 decoding); the rest is the text. A parser must return a value of
its documented type within its documented ranges, or raise ``ProtocolGarbage`` — never anything
else. A driver flow (``probe``, ``read_iccid``, ``registrations``...) may also raise the other
domain errors (``CommandError`` for an ERROR answer, ``AtTimeout`` for no answer), never a bare
``ValueError``/``IndexError``/``KeyError``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from simbank.at.channel import AtChannel
from simbank.at.codec import AtCodec
from simbank.at.codes import describe, error_code, is_retryable, sim_problem
from simbank.at.results import Command, Response, Urc, line_name, parse_final
from simbank.drivers import parse as p
from simbank.drivers.generic import GenericDriver
from simbank.drivers.parse.fields import body_of, first_int, opt_hex, opt_int, split_fields
from simbank.drivers.parse.messaging import parse_cmgl
from simbank.drivers.registry import DRIVERS, driver_for_identity
from simbank.drivers.types import (
    Domain,
    ModemIdentity,
    Operator,
    Registration,
    RegStat,
    Signal,
    SimStatus,
)
from simbank.errors import AtTimeout, ProtocolGarbage, SimbankError

HEADER = 2
# Separates the answers a driver flow gets, one per command it sends (ASCII record separator).
ANSWER_SEPARATOR = b"\x1e"


def _dbm_ok(value: int | None, low: int, high: int) -> bool:
    return value is None or low <= value <= high


def _check_signal(s: Signal | None) -> None:
    if s is None:
        return
    assert isinstance(s, Signal)
    assert s.quality is None or 0 <= s.quality <= 100, s
    assert _dbm_ok(s.rssi_dbm, -121, -25), s
    assert _dbm_ok(s.rsrp_dbm, -141, -44), s
    assert _dbm_ok(s.rscp_dbm, -121, -25), s
    assert s.ber is None or 0 <= s.ber <= 7, s


def _check_registration(r: Registration) -> None:
    assert isinstance(r, Registration)
    assert isinstance(r.stat, RegStat)
    assert isinstance(r.domain, Domain)
    assert isinstance(r.state, str)
    assert isinstance(r.registered, bool)
    r.access_tech  # noqa: B018 - the property must not raise on any parsed value
    for hex_field in (r.lac, r.ci, r.rac):
        assert hex_field is None or (hex_field.isalnum() and hex_field == hex_field.upper())


def _check_iccid(iccid: str) -> None:
    assert 18 <= len(iccid) <= 20, iccid
    assert iccid.startswith("89"), iccid
    assert iccid.isascii(), iccid
    assert iccid.isalnum(), iccid


def _has_evidence(exc: ProtocolGarbage) -> None:
    if exc.raw is None:
        raise AssertionError(f"ProtocolGarbage without its raw line: {exc}") from exc


def _each(*calls: Callable[[], object]) -> None:
    """Run every call; each may return or raise ProtocolGarbage (with its raw line)."""
    for call in calls:
        try:
            call()
        except ProtocolGarbage as exc:
            _has_evidence(exc)


def _registration(text: str) -> None:
    _each(
        *(
            lambda s=solicited: _check_registration(p.parse_registration(text, solicited=s))
            for solicited in (None, True, False)
        )
    )


def _registration_bare(text: str) -> None:
    _each(
        *(
            lambda d=domain: _check_registration(p.parse_registration(text, domain=d))
            for domain in Domain
        )
    )


def _registration_mode(text: str) -> None:
    assert p.parse_registration_mode(text) >= 0


def _fields(text: str) -> None:
    fields = split_fields(text)
    assert len(fields) == text.count(",") - _quoted_commas(text) + 1
    for f in fields:
        opt_int(f)
        opt_hex(f)
    p.is_solicited(fields)


def _quoted_commas(text: str) -> int:
    quoted = False
    count = 0
    for char in text:
        if char == '"':
            quoted = not quoted
        elif char == "," and quoted:
            count += 1
    return count


def _cesq(text: str) -> None:
    s = p.parse_cesq(text)
    _check_signal(s)
    assert s.rsrq_db is None or -20 <= s.rsrq_db <= -3, s
    assert s.ecno_db is None or -24.5 <= s.ecno_db <= 0, s


def _hcsq(text: str) -> None:
    s = p.parse_hcsq(text)
    _check_signal(s)
    # 0..251 → -20.2 + v/5 dB (ModemManager's get_sinr_db): 0 is "below -20 dB", shown -20.2.
    assert s.sinr_db is None or -20.2 <= s.sinr_db <= 30.0, s


def _iccid(text: str) -> None:
    _check_iccid(p.parse_iccid(text))


def _normalise_iccid(text: str) -> None:
    _check_iccid(p.normalise_iccid(text))


def _crsm(text: str) -> None:
    _check_iccid(p.parse_crsm_iccid(text))


def _swap_bcd(text: str) -> None:
    swapped = p.swap_bcd(text)
    assert len(swapped) == len(text)
    assert p.swap_bcd(swapped) == text


def _cpin(text: str) -> None:
    assert isinstance(p.parse_cpin(text), SimStatus)


def _imsi(text: str) -> None:
    imsi = p.parse_imsi(text)
    assert imsi.isascii(), imsi
    assert imsi.isdigit(), imsi
    assert 6 <= len(imsi) <= 15, imsi


def _imei(text: str) -> None:
    imei = p.parse_imei(text)
    assert imei is None or (imei.isascii() and imei.isdigit() and 14 <= len(imei) <= 17)


def _identity(text: str) -> None:
    for prefix in ("+CGMI", "+CGMM", "+CGMR"):
        assert isinstance(p.clean_identity(text, prefix), str)
    assert issubclass(driver_for_identity(text, text[::-1]), GenericDriver)


def _cops(text: str) -> None:
    assert isinstance(p.parse_cops(text), Operator)


def _luhn(text: str) -> None:
    assert isinstance(p.luhn_valid(text), bool)
    assert isinstance(p.luhn_required(text), bool)


def _ceer(text: str) -> None:
    cause = p.parse_ceer(text)
    assert cause.code is None or 0 < cause.code <= 127, cause
    assert isinstance(cause.text, str)


def _cend(text: str) -> None:
    _each(lambda: p.parse_cend(text).text, lambda: p.parse_cend_duration(text) >= 0)


def _clcc(text: str) -> None:
    call = p.parse_clcc(text)
    assert call.id >= 0
    assert call.mode >= 0


def _cause_from_text(text: str) -> None:
    code = p.cause_from_text(text)
    assert code is None or code in p.CAUSE_NAMES or 0 < code <= 127


def _cmti(text: str) -> None:
    assert p.parse_cmti(text).index >= 0


def _cmgr(text: str) -> None:
    header, _, body = text.partition("\n")
    message = p.parse_cmgr(header, body)
    assert message.text == body
    assert message.timestamp is None or message.timestamp.tzinfo is not None


def _cmgl(text: str) -> None:
    header, _, body = text.partition("\n")
    index, message = parse_cmgl(header, body)
    assert index >= 0
    assert message.text == body
    assert message.timestamp is None or message.timestamp.tzinfo is not None


def _cmgs(text: str) -> None:
    assert p.parse_cmgs(text) >= 0


def _cusd(text: str) -> None:
    reply = p.parse_cusd(text)
    assert reply.status >= 0


def _scts(text: str) -> None:
    stamp = p.parse_scts(text)
    assert stamp is None or (isinstance(stamp, datetime) and stamp.tzinfo is not None)


def _first_int(text: str) -> None:
    _each(
        *(
            lambda x=prefix: _non_negative(first_int(text, x))
            for prefix in ("+QUIMSLOT", "+QDSIM", "^SCICHG", "+GTDUALSIM", "+SMSIMCFG")
        )
    )


def _non_negative(value: int) -> None:
    assert value >= 0, value


def _body_of(text: str) -> None:
    prefix, body = body_of(text, ("+CREG", "+CGREG", "+C", "^RSSI"))
    assert prefix in ("+CREG", "+CGREG", "+C", "^RSSI")
    assert len(body) <= len(text)


def _final(text: str) -> None:
    final = parse_final(text)
    line_name(text)
    if final is not None:
        for sms in (False, True):
            describe(final.code, sms=sms)
            sim_problem(final.code, sms=sms)
            is_retryable(final.code, sms=sms)
    code = error_code(text)
    assert code is None or code >= 0


@dataclass(frozen=True)
class Parser:
    name: str
    run: Callable[[str], None]
    prefixes: tuple[str, ...]


PARSERS: tuple[Parser, ...] = (
    Parser("registration", _registration, ("+CREG: ", "+CGREG: ", "+CEREG: ", "+C5GREG: ")),
    Parser("registration_bare", _registration_bare, ("2,", "1,", '0,"')),
    Parser("registration_mode", _registration_mode, ("+CREG: ", "+CEREG: ")),
    Parser("fields", _fields, ("", '"', "1,")),
    Parser("csq", lambda t: _check_signal(p.parse_csq(t)), ("+CSQ: ",)),
    Parser("cesq", _cesq, ("+CESQ: ",)),
    Parser("huawei_rssi", lambda t: _check_signal(p.parse_huawei_rssi(t)), ("^RSSI:", "^RSSI: ")),
    Parser("hcsq", _hcsq, ('^HCSQ: "LTE",', '^HCSQ: "WCDMA",', '^HCSQ: "GSM",', "^HCSQ: ")),
    Parser("qind_csq", lambda t: _check_signal(p.parse_qind_csq(t)), ('+QIND: "csq",', "+QIND: ")),
    Parser("iccid", _iccid, ("+CCID: ", "+QCCID: ", "+ICCID: ", "^ICCID: ", "ICCID: ", "89")),
    Parser("normalise_iccid", _normalise_iccid, ("89", '"89', "8986")),
    Parser("crsm_iccid", _crsm, ('+CRSM: 144,0,"98', "+CRSM: ")),
    Parser("swap_bcd", _swap_bcd, ("98",)),
    Parser("cpin", _cpin, ("+CPIN: ",)),
    Parser("imsi", _imsi, ("+CIMI: ", "")),
    Parser("imei", _imei, ("+CGSN: ", "")),
    Parser("identity", _identity, ("+CGMI: ", "Manufacturer: ", "Model: ", "Revision: ")),
    Parser("cops", _cops, ("+COPS: ", '+COPS: 0,0,"')),
    Parser("luhn", _luhn, ("89",)),
    Parser("ceer", _ceer, ("+CEER: ", '+CEER: "CC INFO",')),
    Parser("cend", _cend, ("^CEND: ", "^CEND:1,0,")),
    Parser("clcc", _clcc, ("+CLCC: ", "+CLCC: 1,0,0,0,0,")),
    Parser("cause_from_text", _cause_from_text, ("", "Normal ")),
    Parser("cmti", _cmti, ('+CMTI: "SM",', "+CMTI: ")),
    Parser("cmgr", _cmgr, ('+CMGR: "REC UNREAD","+1555",,', "+CMGR: ")),
    Parser("cmgl", _cmgl, ('+CMGL: 1,"REC UNREAD","+1555",,', "+CMGL: ")),
    Parser("cmgs", _cmgs, ("+CMGS: ",)),
    Parser("cusd", _cusd, ('+CUSD: 0,"', "+CUSD: ")),
    Parser("scts", _scts, ('"24/', "")),
    Parser("first_int", _first_int, ("+QUIMSLOT: ", "+QDSIM: ", "^SCICHG: ", "+GTDUALSIM: ")),
    Parser("body_of", _body_of, ("+CREG:", "+C", "^RSSI")),
    Parser("final", _final, ("+CME ERROR: ", "+CMS ERROR: ", "CONNECT ")),
)  # fmt: skip


# -- URCs through each dialect, and driver flows over a scripted channel -------------------------


class ScriptedChannel:
    """Stands in for AtChannel: each command is answered by the next fuzzed answer, framed by the
    real codec. No answer (or none that completes a response) is an ``AtTimeout``."""

    def __init__(self, answers: list[bytes]) -> None:
        self.name = "fuzz"
        self._answers = answers
        self._codec = AtCodec()

    async def request(self, command: Command | str, *, check: bool = True) -> Response:
        if isinstance(command, str):
            command = Command(command)
        self._codec.send(command)
        answer = self._answers.pop(0) if self._answers else b""
        for event in self._codec.feed(answer):
            if isinstance(event, Response):
                if check:
                    event.raise_for_error()
                return event
        self._codec.abandon()
        raise AtTimeout(f"{command.text}: no answer in the script")

    def subscribe(self, prefix: str, callback: Callable[[Urc], None]) -> Callable[[], None]:
        return lambda: None

    def cancel_text_entry(self) -> None:
        """ESC after a silent AT: nothing to cancel in a script."""


Flow = Callable[[GenericDriver], Coroutine[Any, Any, object]]

FLOWS: tuple[tuple[str, Flow], ...] = (
    ("probe", lambda d: d.probe()),
    ("setup_urcs", lambda d: d.setup_urcs()),
    ("sim_status", lambda d: d.sim_status()),
    ("read_iccid", lambda d: d.read_iccid()),
    ("read_imsi", lambda d: d.read_imsi()),
    ("registrations", lambda d: d.registrations()),
    ("signal", lambda d: d.signal()),
    ("operator", lambda d: d.operator()),
    ("active_slot", lambda d: d.active_slot()),
    ("select_slot", lambda d: d.select_slot(2)),
    ("list_calls", lambda d: d.list_calls()),
    ("last_call_cause", lambda d: d.last_call_cause()),
    ("send_sms", lambda d: d.send_sms("+15550100123", "hi")),
    ("read_sms", lambda d: d.read_sms(1)),
    ("ensure_radio_on", lambda d: d.ensure_radio_on()),
    ("list_sms", lambda d: d.list_sms()),
)
DIALECTS: tuple[type[GenericDriver], ...] = tuple(DRIVERS.values())


def _driver(dialect: type[GenericDriver], answers: list[bytes]) -> GenericDriver:
    return dialect(cast(AtChannel, ScriptedChannel(answers)), slots=2)


def run_flow(dialect: type[GenericDriver], name: str, answers: list[bytes]) -> object:
    """Run one driver coroutine to its end over a scripted channel (it never really waits)."""
    driver = _driver(dialect, answers)
    coroutine = dict(FLOWS)[name](driver)
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: object = done.value
    except SimbankError as exc:
        result = exc
    else:
        coroutine.close()
        raise AssertionError("a driver flow waited on something over a scripted channel")
    if isinstance(result, ModemIdentity):
        assert result.imei is None or result.imei.isdigit()
    elif isinstance(result, str) and name == "read_iccid":
        _check_iccid(result)
    elif isinstance(result, list):
        for item in result:
            if isinstance(item, Registration):
                _check_registration(item)
    elif isinstance(result, Signal):
        _check_signal(result)
    return result


def parse_urcs(text: str) -> None:
    """The line as a URC through every dialect's ``parse_urc`` (which may only drop garbage)."""
    urc = Urc(line_name(text), text)
    for dialect in DIALECTS:
        event = _driver(dialect, []).parse_urc(urc)
        if isinstance(event, Signal):
            _check_signal(event)
        elif isinstance(event, Registration):
            _check_registration(event)


def decode_text(head: int, parser: Parser, body: bytes) -> str:
    text = body.decode("latin-1") if head & 0x80 else body.decode("utf-8", "replace")
    if head & 1:
        text = parser.prefixes[(head >> 1) % len(parser.prefixes)] + text
    return text


def check(data: bytes) -> None:
    """The oracle: raises on any violation (an exception other than the documented ones)."""
    head = data[:HEADER].ljust(HEADER, b"\x00")
    body = data[HEADER:]
    choice = head[0] % (len(PARSERS) + 1)
    if choice == len(PARSERS):
        dialect = DIALECTS[head[1] % len(DIALECTS)]
        name = FLOWS[(head[1] // len(DIALECTS)) % len(FLOWS)][0]
        run_flow(dialect, name, body.split(ANSWER_SEPARATOR))
        return
    parser = PARSERS[choice]
    text = decode_text(head[1], parser, body)
    try:
        parser.run(text)
    except ProtocolGarbage as exc:
        _has_evidence(exc)
    parse_urcs(text)
