"""Flood a gateway's request topics over MQTT, the way a misbehaving client would.

A paho-mqtt client (MQTT 3.1.1, QoS 0, no loop thread: each publish goes straight to the
socket) sends a weighted mix of requests at a fixed rate, paced in 2 ms batches, and
measures the rate it really achieved. The mix is what an operator sees from a client gone
wrong: ``status`` in a tight loop, calls and texts to a do-not-call number, a call retried
with the same ``transaction`` again and again, over-long calls, switches on a modem that
does not exist, garbage that is not JSON, JSON of the wrong shape, commands that do not
exist, and payloads far over the request size limit.

Optionally a second client counts the responses by status/code (``--count-responses``) and,
once the flood is over, one ``status`` probe measures how soon the gateway answers again
(``--probe``).

    .venv/bin/python bench/flood.py --port 1883 --base simbank --gateway gw1 \\
        --rate 10000 --duration 30 --count-responses --probe

Prints one JSON object per figure (``flood_started`` as soon as the flood begins, then
``flood``, ``responses``, ``probe``), then a short table. Importable: :func:`run_flood`,
:class:`ResponseCounter`, :func:`build_messages`. Only for loopback brokers you run yourself.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

#: The contract's request size limit (simbank.contract.MAX_REQUEST_BYTES); repeated
#: here so the tool runs without the package installed.
MAX_REQUEST_BYTES = 16 * 1024
OVERSIZED_BYTES = (64 * 1024, 256 * 1024, 1024 * 1024)
TICK_S = 0.002
CONNECT_TIMEOUT_S = 10.0

DEFAULT_MIX: Mapping[str, float] = {
    "status": 30,  # valid, read-only: answered afresh every time
    "call_dnc": 12,  # valid call to a do-not-call number: refused (do_not_call)
    "call_dnc_txn": 2,  # the same with a fresh transaction each time: the refusal is stored
    "call_repeat": 2,  # a real call retried with one of a few transactions: done at most once each
    "call_too_long": 4,  # max_duration_s over the compliance limit: refused (validation_error)
    "sms_dnc": 5,  # a text to the do-not-call number: refused (do_not_call)
    "select_unknown": 5,  # a switch on a modem that does not exist: refused (unknown_modem)
    "invalid_json": 14,  # not JSON: invalid_json
    "wrong_schema": 14,  # JSON of the wrong shape: validation_error
    "unknown_command": 10,  # unknown_command
    "oversized": 0.5,  # 64 KiB - 1 MiB: refused (validation_error) before parsing
}
"""Relative weights of the kinds of request in a flood."""

_CODE = re.compile(rb'"code":"([a-z_]+)"')


@dataclass(frozen=True)
class Target:
    """Where the gateway listens: broker, credentials, topics."""

    host: str = "127.0.0.1"
    port: int = 1883
    base: str = "simbank"
    gateway: str = "gw1"
    username: str | None = None
    password: str | None = None

    @property
    def request_prefix(self) -> str:
        return f"{self.base}/{self.gateway}/bridge/request/"

    @property
    def response_filter(self) -> str:
        return f"{self.base}/{self.gateway}/bridge/response/#"


@dataclass(frozen=True)
class Plan:
    """What to send: rate, duration, mix and the numbers/modem the requests name."""

    rate: float = 10_000.0
    duration_s: float = 30.0
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    dnc_number: str = "+15550100"
    call_number: str = "+15550123"
    modem: str = "m1"
    repeat_transactions: int = 2
    call_duration_s: int = 1
    seed: int = 1


@dataclass(frozen=True)
class Message:
    """One request to send; ``unique`` payloads get a fresh counter spliced in each time."""

    kind: str
    topic: str
    payload: bytes
    unique: tuple[bytes, bytes] | None = None

    def render(self, n: int) -> bytes:
        if self.unique is None:
            return self.payload
        head, tail = self.unique
        return head + str(n).encode() + tail


def _json(data: object) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _variants(plan: Plan, prefix: str) -> dict[str, list[Message]]:
    """Every kind's messages (several variants each, picked in turn)."""
    dnc, ok, modem = plan.dnc_number, plan.call_number, plan.modem
    call, sms, select = f"{prefix}call", f"{prefix}sms/send", f"{prefix}sim/select"
    dnc_call = {"number": dnc, "max_duration_s": 5}
    fresh_head = _json(dnc_call)[:-1] + b',"transaction":"flood-'
    pad = b'{"number":"' + dnc.encode() + b'","max_duration_s":5,"pad":"'
    return {
        "status": [Message("status", f"{prefix}status", b"{}")],
        "call_dnc": [Message("call_dnc", call, _json(dnc_call))],
        "call_dnc_txn": [Message("call_dnc_txn", call, b"", (fresh_head, b'"}'))],
        "call_repeat": [
            Message(
                "call_repeat",
                call,
                _json(
                    {
                        "number": ok,
                        "max_duration_s": plan.call_duration_s,
                        "modem": modem,
                        "transaction": f"flood-call-{k}",
                    }
                ),
            )
            for k in range(plan.repeat_transactions)
        ],
        "call_too_long": [
            Message("call_too_long", call, _json({"number": ok, "max_duration_s": 86400}))
        ],
        "sms_dnc": [Message("sms_dnc", sms, _json({"number": dnc, "text": "flood"}))],
        "select_unknown": [Message("select_unknown", select, _json({"modem": "m404", "slot": 1}))],
        "invalid_json": [
            Message("invalid_json", f"{prefix}status", b'{"transaction": '),
            Message("invalid_json", call, b"\xff\xfe\x00 not json"),
            Message("invalid_json", f"{prefix}sim/rotate", b"modem=m1"),
        ],
        "wrong_schema": [
            Message("wrong_schema", call, _json({"number": 5550100, "max_duration_s": "long"})),
            Message("wrong_schema", select, _json({"modem": modem, "slot": "two"})),
            Message("wrong_schema", f"{prefix}status", b"[]"),
            Message("wrong_schema", sms, _json({"number": dnc, "text": "", "extra": True})),
        ],
        "unknown_command": [
            Message("unknown_command", f"{prefix}self-destruct", b"{}"),
            Message("unknown_command", f"{prefix}call/now", _json(dnc_call)),
            Message("unknown_command", f"{prefix}sim/format", _json({"modem": modem})),
        ],
        # Actions that are carried out when allowed (not in the default mix: for clients
        # the broker's ACL must keep out).
        "call": [Message("call", call, _json({"number": ok, "max_duration_s": 1}))],
        "sms": [Message("sms", sms, _json({"number": ok, "text": "flood"}))],
        "select": [Message("select", select, _json({"modem": modem, "slot": 2}))],
        "pause": [Message("pause", f"{prefix}traffic/pause", _json({"reason": "flood"}))],
        "oversized": [
            Message("oversized", call, pad + b"x" * size + b'"}') for size in OVERSIZED_BYTES
        ],
    }


def build_messages(plan: Plan, target: Target, cycle: int = 2000) -> list[Message]:
    """A shuffled cycle of ``cycle`` messages whose kinds follow ``plan.mix``."""
    variants = _variants(plan, target.request_prefix)
    unknown = set(plan.mix) - set(variants)
    if unknown:
        raise ValueError(f"unknown kinds in the mix: {sorted(unknown)}")
    total = sum(plan.mix.values())
    rng = random.Random(plan.seed)
    out: list[Message] = []
    for kind, weight in plan.mix.items():
        count = max(1, round(cycle * weight / total)) if weight > 0 else 0
        turns = itertools.cycle(variants[kind])
        out += [next(turns) for _ in range(count)]
    rng.shuffle(out)
    return out


@dataclass
class FloodResult:
    sent: int = 0
    seconds: float = 0.0
    payload_bytes: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    def figure(self, plan: Plan) -> dict[str, Any]:
        return {
            "figure": "flood",
            "target_rate": plan.rate,
            "duration_s": round(self.seconds, 3),
            "sent": self.sent,
            "rate": round(self.rate, 1),
            "payload_mb": round(self.payload_bytes / 1e6, 1),
            "by_kind": dict(sorted(self.by_kind.items())),
        }


def _connect(target: Target, client_id: str, protocol: int = mqtt.MQTTv311) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    if target.username is not None:
        client.username_pw_set(target.username, target.password)
    refused: list[str] = []

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        if reason.is_failure:
            refused.append(str(reason))

    client.on_connect = on_connect
    client.connect(target.host, target.port, keepalive=60)
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while not client.is_connected():
        if refused:
            raise ConnectionError(f"broker refused {client_id}: {refused[0]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no CONNACK for {client_id} in {CONNECT_TIMEOUT_S} s")
        client.loop(0.05)
    return client


def run_flood(
    target: Target,
    plan: Plan,
    *,
    client_id: str = "simbank-flood",
    on_start: Callable[[], None] | None = None,
) -> FloodResult:
    """Send ``plan`` to ``target`` and return what was sent; blocks for ``plan.duration_s``.

    Pacing: every 2 ms the sender catches up with ``rate * elapsed``, so a slow moment is
    made up at once (bursts of at most what was missed). The achieved rate counts messages
    handed to the socket (all of them written before returning).
    """
    messages = build_messages(plan, target)
    client = _connect(target, client_id)
    result = FloodResult()
    counter = itertools.count()
    ring: Iterator[Message] = itertools.cycle(messages)
    try:
        if on_start is not None:
            on_start()
        start = time.perf_counter()
        end = start + plan.duration_s
        next_misc = start + 1.0
        while (now := time.perf_counter()) < end:
            due = int((now - start) * plan.rate) - result.sent
            for _ in range(due):
                message = next(ring)
                payload = message.render(next(counter))
                client.publish(message.topic, payload, qos=0)
                result.by_kind[message.kind] += 1
                result.payload_bytes += len(payload)
            result.sent += max(due, 0)
            if now >= next_misc:  # keep-alive, and read whatever the broker sent
                client.loop(0)
                next_misc = now + 1.0
            pause = TICK_S - (time.perf_counter() - now)
            if pause > 0:
                time.sleep(pause)
        while client.want_write():
            client.loop_write()
        result.seconds = time.perf_counter() - start
    finally:
        client.disconnect()
    return result


class ResponseCounter:
    """Counts the gateway's responses by status/code in a thread of its own (``with`` it)."""

    def __init__(self, target: Target, client_id: str = "simbank-flood-counter") -> None:
        self._target = target
        self._client_id = client_id
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._probe: tuple[str, threading.Event] | None = None
        self._client: mqtt.Client | None = None

    def __enter__(self) -> ResponseCounter:
        client = _connect(self._target, self._client_id)
        client.on_message = self._on_message
        client.subscribe(self._target.response_filter, qos=0)
        client.loop_start()
        self._client = client
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        payload = message.payload
        found = _CODE.search(payload)
        key = found[1].decode() if found else ("ok" if b'"status":"ok"' in payload else "other")
        with self._lock:
            self.counts[key] += 1
        probe = self._probe
        if probe is not None and probe[0].encode() in payload:
            probe[1].set()

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def settle(self, quiet_s: float = 1.0, limit_s: float = 30.0) -> None:
        """Wait until no response arrived for ``quiet_s`` (at most ``limit_s``)."""
        deadline = time.monotonic() + limit_s
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            total = self.total
            if total != last:
                last, since = total, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return
            time.sleep(0.05)

    def probe(self, timeout_s: float = 10.0) -> float | None:
        """Send one ``status`` and return the seconds until its response (None: no answer)."""
        assert self._client is not None
        transaction = f"flood-probe-{time.monotonic_ns()}"
        answered = threading.Event()
        self._probe = (transaction, answered)
        start = time.perf_counter()
        self._client.publish(
            f"{self._target.request_prefix}status", _json({"transaction": transaction}), qos=1
        )
        ok = answered.wait(timeout_s)
        self._probe = None
        return time.perf_counter() - start if ok else None


def _table(figures: list[dict[str, Any]]) -> str:
    rows = []
    for f in figures:
        if f["figure"] == "flood":
            rows.append(f"sent {f['sent']} in {f['duration_s']} s = {f['rate']:.0f}/s "
                        f"(target {f['target_rate']:.0f}/s, {f['payload_mb']} MB)")  # fmt: skip
        elif f["figure"] == "responses":
            rows.append(f"responses {f['total']}: {f['by_code']}")
        elif f["figure"] == "probe":
            latency = f["latency_s"]
            rows.append("probe: no answer" if latency is None else f"probe: {latency:.3f} s")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--base", default="simbank")
    parser.add_argument("--gateway", default="gw1")
    parser.add_argument("--username")
    parser.add_argument("--password-file", type=Path)
    parser.add_argument("--client-id", default="simbank-flood")
    parser.add_argument("--rate", type=float, default=10_000.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--modem", default="m1")
    parser.add_argument("--dnc-number", default="+15550100")
    parser.add_argument("--call-number", default="+15550123")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--mix",
        type=json.loads,
        default=None,
        help='JSON object of weights, e.g. \'{"status": 1, "invalid_json": 1}\'',
    )
    parser.add_argument("--count-responses", action="store_true")
    parser.add_argument("--probe", action="store_true", help="time one status after the flood")
    args = parser.parse_args(argv)
    password = None
    if args.password_file is not None:
        password = args.password_file.read_text(encoding="utf-8").splitlines()[0].strip()
    target = Target(args.host, args.port, args.base, args.gateway, args.username, password)
    plan = Plan(
        rate=args.rate,
        duration_s=args.duration,
        mix=args.mix or dict(DEFAULT_MIX),
        dnc_number=args.dnc_number,
        call_number=args.call_number,
        modem=args.modem,
        seed=args.seed,
    )
    figures: list[dict[str, Any]] = []

    def emit(figure: dict[str, Any]) -> None:
        figures.append(figure)
        print(json.dumps(figure), flush=True)

    def started() -> None:
        emit({"figure": "flood_started", "unix_time": time.time()})

    counter = ResponseCounter(target, f"{args.client_id}-counter")
    if args.count_responses or args.probe:
        counter.__enter__()
    try:
        result = run_flood(target, plan, client_id=args.client_id, on_start=started)
        emit(result.figure(plan))
        if args.probe:
            emit({"figure": "probe", "latency_s": counter.probe()})
        if args.count_responses:
            counter.settle()
            counts = counter.snapshot()
            emit({"figure": "responses", "total": sum(counts.values()), "by_code": counts})
    finally:
        if args.count_responses or args.probe:
            counter.__exit__(None, None, None)
    print(_table(figures), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
