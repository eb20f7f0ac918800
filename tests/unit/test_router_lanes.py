"""The router names the lane of every answer it publishes (the transport no longer reads the
answer to guess it), takes its time from an injected ``Clock``, and refuses an oversized
request with the same answer as the bridge."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simbank.clock import ScriptedClock
from simbank.contract import (
    COMMANDS,
    ERROR_CODES,
    MAX_REQUEST_BYTES,
    ErrorResponse,
    OkResponse,
    Request,
    Topics,
    oversize_refusal,
)
from simbank.daemon.router import READ_ONLY, RequestRouter, answer_lane
from simbank.errors import Refused
from simbank.mqtt import Inbound, LaneName
from simbank.store.ledger import Ledger

T0 = 1_780_000_000.0
TOPICS = Topics("t", "gw1")
REPLY = TOPICS.reply("c")  # an MQTT 5 client's own reply topic
CALL = {"number": "+15550100011", "max_duration_s": 40}


class Recorder:
    """The bridge as the router sees it: every message with the lane it was handed."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, LaneName]] = []

    def publish(
        self,
        topic: str,
        payload: bytes,
        correlation_data: bytes | None = None,
        *,
        lane: LaneName = "events",
    ) -> None:
        self.sent.append((topic, payload, correlation_data, lane))


def _old_lane_of(topics: Topics, topic: str, payload: bytes) -> LaneName:
    """How the bridge classified an answer before callers named the lane (the oracle): by
    the payload's JSON prefix and the command in the topic."""
    busy_sample = ErrorResponse(code="busy", error="-").to_json()
    busy_prefix = busy_sample[: busy_sample.index(b'"busy"') + len(b'"busy"')]
    if topic == topics.bridge_event:
        return "events"
    prefix = topics.response_prefix
    command = topic.removeprefix(prefix) if topic.startswith(prefix) else None
    if payload.startswith(busy_prefix):
        return "busy"
    if payload.startswith(b'{"status":"ok"'):
        read_only = frozenset({"status", "sim/report", "sms/list"})
        return "results" if command is not None and command not in read_only else "responses"
    if payload.startswith(b'{"status":"error"'):
        return "responses"
    return "events"


@pytest.mark.parametrize(
    ("command", "status", "lane"),
    [
        ("call", "ok", "results"),
        ("sms/send", "ok", "results"),
        ("sim/rotate", "ok", "results"),
        ("status", "ok", "responses"),
        ("sim/report", "ok", "responses"),
        ("call", "busy", "busy"),
        ("status", "busy", "busy"),
        ("call", "do_not_call", "responses"),
        ("call", "interrupted", "responses"),
        ("status", "modem_error", "responses"),
        ("nonsense", "unknown_command", "responses"),
        ("nonsense", "ok", "results"),
    ],
)
def test_answer_lane(command: str, status: str, lane: LaneName) -> None:
    assert answer_lane(command, status) == lane


ANSWERS = st.one_of(
    st.builds(
        lambda code, transaction: ErrorResponse.model_validate(
            {"code": code, "error": "x", "transaction": transaction}
        ).to_json(),
        st.sampled_from(ERROR_CODES),
        st.one_of(st.none(), st.text(max_size=5), st.integers()),
    ),
    st.builds(
        lambda data, transaction: OkResponse(data=data, transaction=transaction).to_json(),
        st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
        st.one_of(st.none(), st.text(max_size=5)),
    ),
)


@given(
    command=st.one_of(st.sampled_from(sorted(COMMANDS)), st.text(max_size=12)),
    answer=ANSWERS,
)
def test_the_router_names_the_lane_the_bridge_used_to_guess(command: str, answer: bytes) -> None:
    """For every answer the router can give, the lane it names is the one the bridge used to
    read off the payload: the same priorities under a flood."""
    data = json.loads(answer)
    status = str(data.get("code") or data.get("status"))
    assert answer_lane(command, status) == _old_lane_of(TOPICS, TOPICS.response(command), answer)


def test_read_only_commands_are_contract_commands() -> None:
    assert set(READ_ONLY) <= set(COMMANDS)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = Ledger.open(tmp_path / "state")
    yield opened
    opened.close()


async def _answer(request: Request) -> dict[str, Any]:
    return {"done": True}


async def _busy(request: Request) -> dict[str, Any]:
    raise Refused("busy", "modem m1 is busy")


def _router(
    publisher: Recorder, ledger: Ledger | None, clock: ScriptedClock, queue_max: int = 256
) -> RequestRouter:
    handlers = {"call": _answer, "status": _answer, "sim/report": _answer, "ussd": _busy}
    return RequestRouter(TOPICS, publisher, handlers, ledger, clock, queue_max=queue_max)


def _request(command: str, payload: object, reply_to: str | None = None) -> Inbound:
    body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
    return Inbound(TOPICS.request(command), body, reply_to, b"corr" if reply_to else None)


async def _until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):  # a hang guard, not a speed figure
        while not predicate():
            await asyncio.sleep(0.01)


async def test_a_full_queue_answers_busy_in_the_busy_lane(ledger: Ledger) -> None:
    out = Recorder()
    router = _router(out, ledger, ScriptedClock(T0), queue_max=1)
    await router.submit(_request("status", {}))  # queued: no worker runs
    await router.submit(_request("call", {**CALL, "transaction": "t1"}, reply_to=REPLY))
    assert router.rejected_busy == 1
    assert [(t, c, lane) for t, _, c, lane in out.sent] == [
        (TOPICS.response("call"), None, "busy"),
        (REPLY, b"corr", "busy"),  # the MQTT 5 copy, in the same lane
    ]
    assert all(json.loads(p)["code"] == "busy" for _, p, _, _ in out.sent)


async def test_each_answer_goes_in_the_lane_of_what_it_says(ledger: Ledger) -> None:
    out = Recorder()
    router = _router(out, ledger, ScriptedClock(T0), queue_max=16)
    requests = [
        (_request("call", {**CALL, "transaction": "t1"}, reply_to=REPLY), "results"),
        (_request("status", {"transaction": "s1"}), "responses"),
        (_request("sim/report", {}), "responses"),
        (_request("ussd", {"modem": "m1", "code": "*100#", "transaction": "u1"}), "busy"),
        (_request("status", b"{not json"), "responses"),
        (_request("nope", {}), "responses"),
    ]
    run = asyncio.create_task(router.run(), name="router")
    try:
        for inbound, _ in requests:
            await router.submit(inbound)
        await _until(lambda: len(out.sent) == len(requests) + 1)
    finally:
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
    lanes = {(topic, corr): lane for topic, _, corr, lane in out.sent}
    for inbound, lane in requests:
        command = inbound.topic.removeprefix(TOPICS.request_prefix)
        assert lanes[(TOPICS.response(command), None)] == lane, command
    assert lanes[(REPLY, b"corr")] == "results"


async def test_transactions_are_stamped_with_the_injected_clock(ledger: Ledger) -> None:
    clock = ScriptedClock(T0)
    seen: list[float | None] = []

    async def call(request: Request) -> dict[str, Any]:
        seen.append(ledger.transaction_started("call", '"t1"'))  # marked before it acts
        return {}

    router = RequestRouter(TOPICS, Recorder(), {"call": call}, ledger, clock)
    answer = await router.process("call", json.dumps({**CALL, "transaction": "t1"}).encode())
    assert json.loads(answer)["status"] == "ok"
    assert seen == [T0]
    assert ledger.find_response("call", '"t1"') == answer


@pytest.mark.parametrize("extra", [1, 100, 5000])
async def test_an_oversized_request_gets_the_bridge_s_answer(extra: int) -> None:
    router = _router(Recorder(), None, ScriptedClock(T0))
    payload = b'{"transaction": "' + b"x" * (MAX_REQUEST_BYTES + extra) + b'"}'
    answer = await router.process("call", payload)
    assert answer == oversize_refusal(len(payload))
