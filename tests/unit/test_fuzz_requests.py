"""Fuzzing MQTT request decoding, the short part: the oracle of fuzz/fuzz_requests.py under
hypothesis (random bytes, random JSON, JSON shaped like each command's model, oversized and
deeply nested payloads) and a replay of every seed and every input that ever broke the router
(fuzz/regressions/requests/). The long atheris run is ``make fuzz``.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from simbank.contract import (
    CALL_OUTCOMES,
    COMMANDS,
    MAX_REQUEST_BYTES,
    MAX_TRANSACTION_DEPTH,
    ErrorResponse,
    OkResponse,
)

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"
sys.path.append(str(FUZZ))
oracle = importlib.import_module("fuzz_requests")


def _case(path: Path) -> Any:
    return pytest.param(path, id=f"{path.parent.name}/{path.name[:32]}")


CASES = [_case(path) for path in importlib.import_module("fuzz_inputs").stored_inputs("requests")]


@pytest.fixture(autouse=True, scope="module")
def _router() -> Iterator[None]:
    """One router and event loop for the module's examples, closed at the end."""
    yield
    oracle.harness().close()
    oracle._harness = None


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with capture_logs():
        yield


def answer(command: str, payload: bytes) -> dict[str, Any]:
    return oracle.check_with(oracle.harness(), command, payload)


@pytest.mark.parametrize("path", CASES)
def test_replay_seeds_and_regressions(path: Path) -> None:
    oracle.check(path.read_bytes())


COMMAND = st.one_of(st.sampled_from(oracle.NAMES), st.text(max_size=20))


@settings(max_examples=200, deadline=None)
@given(command=COMMAND, payload=st.binary(max_size=200))
def test_any_bytes_get_an_answer(command: str, payload: bytes) -> None:
    answer(command, payload)


@settings(max_examples=300, deadline=None)
@given(command=st.integers(0, 255), mode=st.integers(0, 255), data=st.binary(max_size=120))
def test_fuzz_layout_inputs_keep_every_property(command: int, mode: int, data: bytes) -> None:
    # The long run's own input layout, its request shaper above all (mode 1).
    oracle.check(bytes([command, mode]) + data)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=10)
    | st.sampled_from(["\ud800", "\udfff x", "+15550100123", "m1", "*100#"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(command=st.sampled_from(oracle.NAMES), data=JSON)
def test_any_json_gets_an_answer(command: str, data: Any) -> None:
    payload = json.dumps(data).encode()
    reply = answer(command, payload)
    if not isinstance(data, dict):
        assert reply["code"] in ("validation_error", "invalid_json")


# Values a field of the contract accepts, per field name.
VALID: dict[str, st.SearchStrategy[Any]] = {
    "number": st.from_regex(r"\A\+?[1-9][0-9]{6,14}\Z"),
    "max_duration_s": st.integers(1, 86400),
    "modem": st.from_regex(r"\A[a-z0-9_-]{1,64}\Z"),
    "text": st.text(min_size=1, max_size=1600).filter(
        lambda s: s.strip() and "\x1a" not in s and "\x1b" not in s
    ),
    "code": st.from_regex(r"\A[*#][*#0-9]{1,30}#\Z"),
    "slot": st.integers(1, 16),
    "iccid": st.from_regex(r"\A89[0-9]{16,20}[0-9Ff]?\Z"),
    "note": st.text(min_size=1, max_size=500).filter(lambda s: s.strip()),
    "reason": st.none() | st.text(max_size=200),
    "transaction": st.none() | st.integers() | st.text(max_size=20) | st.lists(st.integers()),
    "booking": st.from_regex(r"\A[A-Za-z0-9_-]{8,64}\Z"),
    "duration_s": st.integers(0, 86400),
    "outcome": st.sampled_from(CALL_OUTCOMES),
    "cause": st.none() | st.integers(0, 255),
    "status_report": st.none() | st.booleans(),
    "since": st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    "unread": st.booleans(),
    "after": st.integers(0, 2**31),
    "limit": st.integers(1, 100),
    "ids": st.lists(st.integers(0, 2**31), min_size=1, max_size=20),
    "up_to": st.none() | st.integers(0, 2**31),
}
#: Fields a command needs although each is optional on its own (``sms/ack``: something to
#: acknowledge).
NEEDED: dict[str, tuple[str, ...]] = {"sms/ack": ("ids",)}


@st.composite
def valid_request(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    command = draw(st.sampled_from(sorted(COMMANDS)))
    model = COMMANDS[command]
    data = {}
    for name, info in model.model_fields.items():
        if info.is_required() or name in NEEDED.get(command, ()) or draw(st.booleans()):
            data[name] = draw(VALID[name])
    return command, data


@settings(max_examples=200, deadline=None)
@given(valid_request())
def test_every_request_the_contract_allows_is_accepted(request: tuple[str, dict[str, Any]]) -> None:
    command, data = request
    reply = answer(command, json.dumps(data).encode())
    assert reply["status"] == "ok", reply
    assert reply["transaction"] == data.get("transaction")


@st.composite
def mutated_request(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A valid request with one field (its own, or any name) set to any JSON value."""
    command, data = draw(valid_request())
    own = [*COMMANDS[command].model_fields]
    data[draw(st.sampled_from(own) | st.text(max_size=8))] = draw(JSON)
    return command, data


@settings(max_examples=300, deadline=None)
@given(mutated_request())
def test_any_field_value_gets_an_answer(request: tuple[str, dict[str, Any]]) -> None:
    command, data = request
    answer(command, json.dumps(data).encode())


@settings(max_examples=30, deadline=None)
@given(command=st.sampled_from(oracle.NAMES), extra=st.integers(1, 5000))
def test_oversized_payloads_are_refused_before_parsing(command: str, extra: int) -> None:
    payload = b'{"transaction": "' + b"x" * (MAX_REQUEST_BYTES + extra) + b'"}'
    reply = answer(command, payload)
    assert reply["code"] == "validation_error"
    assert "too large" in reply["error"]


def test_a_transaction_nested_max_transaction_depth_levels_is_accepted() -> None:
    transaction = "[" * MAX_TRANSACTION_DEPTH + "1" + "]" * MAX_TRANSACTION_DEPTH
    reply = answer("status", b'{"transaction": %s}' % transaction.encode())
    assert reply["status"] == "ok"
    assert json.dumps(reply["transaction"], separators=(",", ":")) == transaction


@pytest.mark.parametrize("depth", [MAX_TRANSACTION_DEPTH + 1, 100, 255, 256, 300, 900])
def test_deep_transactions_are_refused_and_the_answer_serialises(depth: int) -> None:
    transaction = "[" * depth + "]" * depth
    payload = b'{"transaction": %s, "modem": "m1"}' % transaction.encode()
    reply = answer("sim/rotate", payload)
    assert reply["code"] == "validation_error"
    assert "nested deeper" in reply["error"]


@pytest.mark.parametrize("transaction", ['"\\ud800"', '{"\\udfff": 1}', '["ok", "\\udc00\\ud800"]'])
def test_lone_surrogates_in_a_transaction_are_refused_and_echoed_replaced(
    transaction: str,
) -> None:
    reply = answer("status", b'{"transaction": %s}' % transaction.encode())
    assert reply["code"] == "validation_error"
    assert "surrogate" in reply["error"]
    assert "\ufffd" in json.dumps(reply["transaction"], ensure_ascii=False)


def test_responses_never_fail_to_serialise() -> None:
    deep: Any = []
    for _ in range(400):
        deep = [deep]
    for transaction in (deep, "\ud800", {"\udfff": ["\ud800"]}, float("nan")):
        json.loads(ErrorResponse(code="busy", error="x\ud800", transaction=transaction).to_json())
        json.loads(OkResponse(transaction=transaction).to_json())
