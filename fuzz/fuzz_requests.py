"""Fuzz target: MQTT request decoding (``RequestRouter.process`` and the contract's models).

``check(data)`` is the oracle, shared by the atheris run (fuzz/libfuzzer.py) and the default test suite
(tests/unit/test_fuzz_requests.py replays every file in fuzz/regressions/requests/ through it).

Input layout: byte 0 picks the command (one of the contract's, or an unknown one); with its high
bit set the command name is instead read from the input up to the first NUL. The rest is the
payload, as it arrived on the request topic. Properties checked:

* ``process`` never raises, whatever the command and payload;
* the answer is a UTF-8 JSON object with ``status`` ``ok`` or ``error``; an error has a ``code``
  among the contract's ``ERROR_CODES`` and an ``error`` text; ``ok`` only for a known command
  whose payload its model accepts;
* the same request again (the QoS 1 redelivery case) gets the same answer.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from simbank.clock import ScriptedClock
from simbank.contract import COMMANDS, ERROR_CODES, MAX_REQUEST_BYTES, Request, Topics
from simbank.daemon.router import RequestRouter
from simbank.mqtt import LaneName

HEADER = 2
NAMES: tuple[str, ...] = (*COMMANDS, "", "nope", "status/", "../status", "sim/", "STATUS")


class MemoryStore:
    """The ledger's response store, in dicts."""

    def __init__(self) -> None:
        self.kept: dict[tuple[str, str], bytes] = {}
        self.started: dict[tuple[str, str], float] = {}

    def clear(self) -> None:
        self.kept.clear()
        self.started.clear()

    def start_transaction(self, command: str, transaction: str, now: float) -> None:
        self.started[(command, transaction)] = now

    def transaction_started(self, command: str, transaction: str) -> float | None:
        return self.started.get((command, transaction))

    def bookings_for_transaction(self, transaction: str) -> list[Any]:
        return []

    def find_response(self, command: str, transaction: str) -> bytes | None:
        return self.kept.get((command, transaction))

    def remember_response(
        self, command: str, transaction: str, response: bytes, now: float
    ) -> None:
        self.kept[(command, transaction)] = response


class NoPublisher:
    """The ``simbank.mqtt.Publisher`` surface, publishing nothing."""

    def set_retained(self, topic: str, payload: bytes) -> None:
        return None

    def publish(
        self,
        topic: str,
        payload: bytes,
        correlation_data: bytes | None = None,
        *,
        lane: LaneName = "events",
    ) -> None:
        return None


async def _answer(request: Request) -> dict[str, Any]:
    return {}


class Harness:
    """A router with trivial handlers and an event loop of its own, reused across inputs."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.store = MemoryStore()
        self.router = RequestRouter(
            Topics("fuzz", "gw"),
            NoPublisher(),
            dict.fromkeys(COMMANDS, _answer),
            self.store,
            ScriptedClock(0.0),
        )

    def process(self, command: str, payload: bytes) -> bytes:
        self.store.clear()
        return self.loop.run_until_complete(self.router.process(command, payload))

    def close(self) -> None:
        self.loop.close()


_harness: Harness | None = None


def harness() -> Harness:
    global _harness  # noqa: PLW0603 - one router and loop for the whole run, made on first use
    if _harness is None:
        _harness = Harness()
    return _harness


def decode(data: bytes) -> tuple[str, bytes]:
    """(command, payload) for a fuzz input.

    Byte 0: the command (high bit: read its name from the input, up to a NUL). Byte 1, the
    payload mode: 0 the rest as it is; 1 a JSON object built field by field from the rest
    (``Shaper``: the command's own fields and ``transaction`` with values of every JSON type,
    valid ones among them, deep nesting and lone surrogates); 2 the rest padded past
    ``MAX_REQUEST_BYTES``.
    """
    head = data[:HEADER].ljust(HEADER, b"\x00")
    rest = data[HEADER:]
    if head[0] & 0x80:
        raw_name, _, rest = rest.partition(b"\x00")
        command = raw_name.decode("utf-8", "replace")
    else:
        command = NAMES[head[0] % len(NAMES)]
    mode = head[1] % 3
    if mode == 1:
        return command, Shaper(rest).request(command)
    if mode == 2:
        return command, rest + b" " * (MAX_REQUEST_BYTES + 1 - len(rest))
    return command, rest


# Values the contract accepts, per field: the shaper mixes them in so requests get past
# validation as often as they fail it.
VALID: dict[str, tuple[object, ...]] = {
    "number": ("+15550100123", "4915201234567", "+1234567"),
    "max_duration_s": (1, 30, 86400),
    "modem": ("m1", "quectel-0", "a" * 64),
    "text": ("hello", "é" * 1600, " x "),
    "code": ("*100#", "#*#0#"),
    "slot": (1, 2, 16),
    "iccid": ("8944500102198304826", "89860318640220133897", "8901260882201234567F"),
    "note": ("carrier confirmed", "n" * 500),
    "reason": (None, "maintenance", "r" * 200),
    "transaction": (None, "t-1", 7, [1, "a"], {"id": 3}),
}
STRINGS: tuple[str, ...] = ("", " ", "\ud800", "x\udfff", "\x00", "+", "*#", "NaN", "é", "89")


class Shaper:
    """Turns fuzz bytes into a JSON object shaped like a request (deterministic: no atheris)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def text(self) -> str:
        size = self.byte() % 48
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk.decode("utf-8", "replace")

    def value(self, name: str, depth: int = 0) -> object:
        kind = self.byte() % 12
        if kind == 0:
            return None
        if kind == 1:
            return self.byte() % 2 == 1
        if kind == 2:
            return int.from_bytes(bytes(self.byte() for _ in range(3)), "big", signed=True)
        if kind == 3:
            return [0.5, -1e308, 1e309, float("nan"), 2**70][self.byte() % 5]
        if kind == 4:
            return self.text()
        if kind == 5:
            return STRINGS[self.byte() % len(STRINGS)]
        if kind == 6 and depth < 4:
            return [self.value(name, depth + 1) for _ in range(self.byte() % 4)]
        if kind == 7 and depth < 4:
            return {self.text(): self.value(name, depth + 1) for _ in range(self.byte() % 4)}
        if kind == 8:
            # Up to 400 levels: past the contract's limit (16) and pydantic's (255), well short
            # of the json module's recursion limit (the known issue below).
            nested: list[object] = []
            for _ in range(min(400, self.byte() * 2)):
                nested = [nested]
            return nested
        choices = VALID.get(name, (None,))
        return choices[self.byte() % len(choices)]

    def request(self, command: str) -> bytes:
        model = COMMANDS.get(command)
        names = [*(model.model_fields if model else ()), "transaction"]
        payload: dict[str, object] = {}
        for name in names:
            if self.byte() % 5:  # most of the time the field is there
                payload[name] = self.value(name)
        if self.byte() % 7 == 0:
            payload[self.text()] = self.value("extra")
        return json.dumps(payload).encode()


def check_response(command: str, payload: bytes, response: bytes) -> dict[str, Any]:
    """The properties of one answer; returns it decoded."""
    assert isinstance(response, bytes), type(response)
    answer = json.loads(response.decode("utf-8"))
    assert isinstance(answer, dict), answer
    if answer["status"] == "ok":
        assert command in COMMANDS, f"ok for unknown command {command!r}"
        assert len(payload) <= MAX_REQUEST_BYTES, "ok for an oversized payload"
        assert answer["data"] == {}, answer
    else:
        assert answer["status"] == "error", answer
        assert answer["code"] in ERROR_CODES, answer
        assert isinstance(answer["error"], str), answer
        assert answer["error"], answer
    return answer


def check_with(h: Harness, command: str, payload: bytes) -> dict[str, Any]:
    first = h.process(command, payload)
    answer = check_response(command, payload, first)
    # A redelivered request is answered alike (from the store when it has a transaction).
    again = h.loop.run_until_complete(h.router.process(command, payload))
    assert again == first, (first, again)
    return answer


def check(data: bytes) -> None:
    """The oracle: raises on any violation (JSON nested ~1000 deep once raised RecursionError
    out of ``process``: fuzz/regressions/requests/crash-deep-json-*)."""
    command, payload = decode(data)
    check_with(harness(), command, payload)
