"""Write the seed corpora under fuzz/corpus/<target>/ from real modem output and real requests.

The modem lines come from the tables of the unit tests (tests/unit/test_at_codec.py and
tests/unit/test_drivers_parsers.py, which cite the device or manual of every row); the request
payloads are the examples of docs/mqtt-api.md. Each file is one fuzz input in the target's
layout (see each target's ``decode``). Run from the repository root:

    .venv/bin/python fuzz/seeds.py
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
sys.path[:0] = [str(ROOT / "tests" / "unit")]

import fuzz_at_codec  # noqa: E402 - after the path set-up above
import fuzz_parsers  # noqa: E402
import fuzz_requests  # noqa: E402
import test_at_codec  # noqa: E402

OK = b"\r\nOK\r\n"
RS = fuzz_parsers.ANSWER_SEPARATOR

# Whole answers per driver flow, as a modem of that dialect sends them (same sources).
FLOW_SCRIPTS: dict[str, list[bytes]] = {
    "probe": [
        OK,
        OK,
        OK,
        b"\r\nQuectel\r\n" + OK,
        b"\r\nEC25\r\n" + OK,
        b"\r\nRevision: EC25ECGAR06A04M1G\r\n" + OK,
        b"\r\n867962041234567\r\n" + OK,
    ],
    "setup_urcs": [OK, OK, OK, b"\r\nERROR\r\n", b"\r\nERROR\r\n", OK, OK, OK],
    "sim_status": [b"\r\n+CPIN: READY\r\n" + OK],
    "read_iccid": [b"\r\n+QCCID: 89860318640220133897\r\n" + OK],
    "read_imsi": [b"\r\n295050902070619\r\n" + OK],
    "registrations": [
        b'\r\n+CREG: 2,1,"8BE3","00002BAF"\r\n' + OK,
        b'\r\n+CGREG: 2,1,"8BE3","00002BAF",7\r\n' + OK,
        b'\r\n+CEREG: 2,1,"0001","01A2D001",7\r\n' + OK,
        b"\r\n+C5GREG: 2,1,1F00,79D903,11,6,ABCDEF\r\n" + OK,
    ],
    "signal": [b"\r\n+CSQ: 20,99\r\n" + OK],
    "operator": [b'\r\n+COPS: 0,0,"Telstra Mobile",7\r\n' + OK],
    "active_slot": [
        b"\r\n+QUIMSLOT: 1\r\n+SMSIMCFG: 1,1\r\n^SCICHG: 0,1\r\n+GTDUALSIM: 0\r\n" + OK,
        b"\r\n+QDSIM: 0\r\n" + OK,
    ],
    "select_slot": [OK, OK, OK, OK],
    "list_calls": [b'\r\n+CLCC: 1,0,0,0,0,"+15550100123",145\r\n' + OK],
    "last_call_cause": [b'\r\n+CEER: "CC INFO","User busy"\r\n' + OK],
    "send_sms": [b"\r\n> hi\x1a\r\n+CMGS: 7\r\n" + OK],
    "read_sms": [
        b'\r\n+CMGR: "REC UNREAD","+15550100123",,"24/01/01,12:00:00+32"\r\nhello\r\n' + OK
    ],
    "ensure_radio_on": [b"\r\n+CFUN: 4\r\n" + OK, OK],
    "list_sms": [
        b'\r\n+CMGL: 1,"REC UNREAD","+15550100123",,"24/01/01,12:00:00+32"\r\nhello\r\n'
        b'+CMGL: 2,"REC READ","+15550100124",,"24/01/02,08:30:00+04"\r\nOK\r\n' + OK
    ],
}


def at_codec_seeds() -> Iterable[bytes]:
    commands = fuzz_at_codec.COMMANDS
    by_text = {c.text: n for n, c in enumerate(commands) if c is not None}
    big = fuzz_at_codec.MAX_LINES.index(2048)
    for row in test_at_codec.SOLICITED:
        command_text, answer = row[1], row[3]
        index = by_text.get(command_text, 1)
        yield bytes([index, big, 3]) + command_text.encode() + b"\r" + answer
    for row in test_at_codec.BOOT_URCS:
        yield bytes([0, big, 0]) + b"\r\n" + row[1].encode() + b"\r\n"
    sms = by_text['AT+CMGS="+15550100123"']
    yield bytes([sms, 4, 7]) + test_at_codec.STREAM
    for fragment in test_at_codec.FRAGMENTS:
        yield bytes([by_text["AT+CREG?"], 3, 5]) + fragment


def parser_seeds() -> Iterable[bytes]:
    names = {parser.name: n for n, parser in enumerate(fuzz_parsers.PARSERS)}
    wanted = {
        "+CREG": "registration",
        "+CGREG": "registration",
        "+CEREG": "registration",
        "+C5GREG": "registration",
        "+CSQ": "csq",
        "+CESQ": "cesq",
        "^RSSI": "huawei_rssi",
        "^HCSQ": "hcsq",
        "+QIND": "qind_csq",
        "+COPS": "cops",
        "+CCID": "iccid",
        "+QCCID": "iccid",
        "+ICCID": "iccid",
        "^ICCID": "iccid",
        "+CRSM": "crsm_iccid",
        "+CPIN": "cpin",
        "+CIMI": "imsi",
        "+CGSN": "imei",
        "+CLCC": "clcc",
        "+CEER": "ceer",
        "^CEND": "cend",
        "+CUSD": "cusd",
        "+CMTI": "cmti",
        "+CMGR": "cmgr",
        "+CMGL": "cmgl",
        "+CMGS": "cmgs",
        "+CME ERROR": "final",
        "+CMS ERROR": "final",
    }
    source = (ROOT / "tests" / "unit" / "test_drivers_parsers.py").read_text()
    lines = {
        literal
        for literal in _string_literals(source)
        if literal.startswith(("+", "^")) and ":" in literal
    }
    for line in sorted(lines):
        head = line.split(":", 1)[0].strip()
        parser = wanted.get(head)
        if parser is not None:
            yield bytes([names[parser], 0]) + line.encode()
    yield bytes([names["registration_bare"], 0]) + b'2,1,"8BE3","00002BAF"'
    yield bytes([names["scts"], 0]) + b'"24/01/01,12:00:00+32"'
    yield bytes([names["identity"], 0]) + b"Manufacturer: QUALCOMM INCORPORATED"
    yield bytes([names["cause_from_text"], 0]) + b"Normal call clearing"
    flows = [name for name, _ in fuzz_parsers.FLOWS]
    dialects = len(fuzz_parsers.DIALECTS)
    for flow, answers in FLOW_SCRIPTS.items():
        for dialect in range(dialects):
            selector = flows.index(flow) * dialects + dialect
            if selector < 256:
                yield bytes([len(fuzz_parsers.PARSERS), selector]) + RS.join(answers)


def _string_literals(source: str) -> Iterable[str]:
    """The one-line string literals of a Python source, evaluated."""
    import ast  # noqa: PLC0415 - only the seed writer parses Python

    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "\n" not in node.value
        ):
            yield node.value


REQUESTS: dict[str, list[dict[str, object]]] = {
    "status": [{}, {"transaction": "t1"}],
    "call": [{"number": "+15550100123", "max_duration_s": 30, "transaction": "c-1"}],
    "sms/send": [{"number": "+15550100123", "text": "hello", "modem": "m1", "transaction": 7}],
    "ussd": [{"modem": "m1", "code": "*100#"}],
    "sim/rotate": [{"modem": "m1"}],
    "sim/select": [{"modem": "m1", "slot": 2, "transaction": {"id": [1, "a"]}}],
    "sim/disable": [{"iccid": "8944500102198304826"}],
    "sim/enable": [{"iccid": "89860318640220133897"}],
    "sim/release": [{"iccid": "8944500102198304826", "note": "carrier confirmed"}],
    "sim/report": [{"iccid": "8944500102198304826"}],
    "modem/reset": [{"modem": "m1"}],
    "traffic/pause": [{"reason": "maintenance"}],
    "traffic/resume": [{}],
}


def request_seeds() -> Iterable[bytes]:
    names = fuzz_requests.NAMES
    raw, shaped, padded = 0, 1, 2
    for command, payloads in REQUESTS.items():
        for payload in payloads:
            yield bytes([names.index(command), raw]) + json.dumps(payload).encode()
        # Every field present, each from the table of valid values (kind 9 and up).
        yield bytes([names.index(command), shaped]) + b"\x01\x0b\x00" * 8
    yield bytes([names.index("nope"), raw]) + b"{}"
    yield bytes([0x80, raw]) + b"sim/select\x00" + b'{"modem":"m1","slot":1}'
    yield bytes([0, raw]) + b"not json"
    yield bytes([0, padded]) + b'{"transaction": 1}'


def write(target: str, inputs: Iterable[bytes]) -> int:
    folder = FUZZ / "corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for data in inputs:
        name = hashlib.sha1(data, usedforsecurity=False).hexdigest()
        (folder / name).write_bytes(data)
        count += 1
    return count


def main() -> None:
    for target, inputs in (
        ("at_codec", at_codec_seeds()),
        ("parsers", parser_seeds()),
        ("requests", request_seeds()),
    ):
        print(f"{target}: {write(target, inputs)} seeds")


if __name__ == "__main__":
    main()
