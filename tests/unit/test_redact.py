"""Phone numbers and IMSIs never reach logs in clear; ICCIDs stay readable."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from simbank.daemon.logs import configure_logging
from simbank.daemon.redact import redact_text, redact_value


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("dialing +15550100123", "15550100123"),
        ("ATD15550100;", "15550100"),
        ('AT+CMGS="+15550100777"', "15550100777"),
        ("imsi=001010123456789", "001010123456789"),
        ('+CMGR: "REC UNREAD","+15550100999",,"26/11/28,10:00:00+04"', "15550100999"),
    ],
)
def test_numbers_masked(text: str, secret: str) -> None:
    out = redact_text(text)
    assert secret not in out
    assert "*" in out


@pytest.mark.parametrize(
    "text",
    ["iccid 8999001000000000012", "+CSQ: 20,99", "2026-11-28T19:00:00Z", "v0.1.0", "+CREG: 1"],
)
def test_harmless_text_kept(text: str) -> None:
    assert redact_text(text) == text


def test_nested_values() -> None:
    out = redact_value({"a": ["call +15550100123"], "b": {"c": ("imsi 001010123456789",)}})
    assert "15550100123" not in json.dumps(out)
    assert "001010123456789" not in json.dumps(out)


def test_log_processor_scans_every_value() -> None:
    stream = io.StringIO()
    configure_logging("debug", "json", stream=stream)
    log = structlog.get_logger("t")
    with structlog.contextvars.bound_contextvars(modem="m1", iccid="8999001000000000012"):
        log.info("call_started", note="to +15550100123", raw=["ATD+15550100123;"])
    record = json.loads(stream.getvalue().splitlines()[-1])
    assert record["modem"] == "m1"
    assert record["iccid"] == "8999001000000000012"
    assert "15550100123" not in stream.getvalue()
    structlog.reset_defaults()
