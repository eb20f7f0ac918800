"""sd_notify against a real AF_UNIX datagram socket; the watchdog pinger on a real loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from simbank.integrations.systemd import Notifier, WatchdogPinger, run_watchdog, summary_line


class Receiver:
    """A bound SOCK_DGRAM socket standing in for systemd's notify socket."""

    def __init__(self, sock: socket.socket, address: str) -> None:
        self.sock = sock
        self.address = address  # what goes into NOTIFY_SOCKET

    def recv(self, timeout: float = 2.0) -> str:
        self.sock.settimeout(timeout)
        return self.sock.recv(4096).decode()

    def drain(self) -> list[str]:
        self.sock.setblocking(False)
        out = []
        while True:
            try:
                out.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return out


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    yield Receiver(sock, str(path))
    sock.close()


@pytest.fixture
def abstract_receiver() -> Iterator[Receiver]:
    name = f"simbank-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    yield Receiver(sock, "@" + name)
    sock.close()


def test_each_notification_arrives_as_one_datagram(receiver: Receiver) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": receiver.address})
    assert notifier.enabled
    assert notifier.ready()
    assert receiver.recv() == "READY=1"
    assert notifier.status("8 modems: 7 ready")
    assert receiver.recv() == "STATUS=8 modems: 7 ready"
    assert notifier.watchdog()
    assert receiver.recv() == "WATCHDOG=1"
    assert notifier.stopping()
    assert receiver.recv() == "STOPPING=1"
    notifier.close()


def test_ready_with_status_and_multiline_status_is_one_line(receiver: Receiver) -> None:
    notifier = Notifier(receiver.address)
    notifier.ready(status="starting\n3 modems")
    assert receiver.recv() == "READY=1\nSTATUS=starting 3 modems"
    notifier.close()


def test_reloading_carries_the_monotonic_timestamp(receiver: Receiver) -> None:
    notifier = Notifier(receiver.address)
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notifier.reloading()
    first, second = receiver.recv().split("\n")
    assert first == "RELOADING=1"
    assert second.startswith("MONOTONIC_USEC=")
    assert int(second.split("=")[1]) >= before
    notifier.close()


def test_abstract_namespace_socket(abstract_receiver: Receiver) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": abstract_receiver.address})
    assert notifier.ready()
    assert abstract_receiver.recv() == "READY=1"
    notifier.close()


@pytest.mark.parametrize("value", [None, "", "vsock:2:1234", "relative/path"])
def test_without_a_usable_socket_every_call_is_a_no_op(value: str | None) -> None:
    env = {} if value is None else {"NOTIFY_SOCKET": value, "WATCHDOG_USEC": "30000000"}
    notifier = Notifier.from_env(env)
    assert not notifier.enabled
    assert not notifier.ready()
    assert not notifier.status("x")
    assert not notifier.stopping()
    assert not notifier.watchdog()
    assert notifier.watchdog_interval() is None


def test_send_errors_are_swallowed(tmp_path: Path) -> None:
    notifier = Notifier(str(tmp_path / "nobody-listens-here"))
    assert notifier.enabled
    assert not notifier.ready()  # ENOENT, logged at debug
    notifier.close()


def test_watchdog_interval_is_half_the_timeout_for_our_pid(receiver: Receiver) -> None:
    env = {"NOTIFY_SOCKET": receiver.address, "WATCHDOG_USEC": "30000000"}
    assert Notifier.from_env(env).watchdog_interval() == 15.0
    mine = {**env, "WATCHDOG_PID": str(os.getpid())}
    assert Notifier.from_env(mine).watchdog_interval() == 15.0


@pytest.mark.parametrize(
    "extra",
    [
        {"WATCHDOG_PID": "1"},  # meant for another process (e.g. our parent)
        {"WATCHDOG_PID": "not-a-pid"},
        {"WATCHDOG_USEC": "0"},
        {"WATCHDOG_USEC": "soon"},
        {"WATCHDOG_USEC": ""},
    ],
)
def test_no_watchdog_interval(receiver: Receiver, extra: dict[str, str]) -> None:
    env = {"NOTIFY_SOCKET": receiver.address, "WATCHDOG_USEC": "30000000", **extra}
    assert Notifier.from_env(env).watchdog_interval() is None


def _watched(receiver: Receiver, interval_s: float) -> Notifier:
    usec = int(interval_s * 2_000_000)
    return Notifier.from_env({"NOTIFY_SOCKET": receiver.address, "WATCHDOG_USEC": str(usec)})


class ScriptedClock:
    """A clock that advances only when the pinger sleeps: each sleep takes its interval plus
    the lateness scripted for that round (a stalled loop), and ends the run after ``rounds``."""

    def __init__(self, rounds: int, late: dict[int, float] | None = None) -> None:
        self.t = 1000.0
        self.rounds = rounds
        self.late = late or {}
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        if len(self.slept) == self.rounds:
            raise asyncio.CancelledError  # the run is over
        self.t += seconds + self.late.get(len(self.slept), 0.0)
        self.slept.append(seconds)
        await asyncio.sleep(0)


async def _run(pinger: WatchdogPinger) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await pinger.run()


async def test_healthy_pings_go_out_once_per_interval(receiver: Receiver) -> None:
    notifier = _watched(receiver, 0.1)
    clock = ScriptedClock(rounds=6)
    pinger = WatchdogPinger(notifier, lambda: True, clock=clock)
    assert pinger.interval == 0.1
    await _run(pinger)
    notifier.close()
    assert clock.slept == [0.1] * 6
    assert receiver.drain() == ["WATCHDOG=1"] * 6
    assert pinger.sent == 6


async def test_a_stalled_loop_skips_the_ping(receiver: Receiver) -> None:
    notifier = _watched(receiver, 0.2)
    # The first round wakes 0.2 s late (more than half an interval), the rest on time; a round
    # 0.09 s late (less than half) still pings.
    clock = ScriptedClock(rounds=3, late={0: 0.2, 2: 0.09})
    pinger = WatchdogPinger(notifier, lambda: True, clock=clock)
    await _run(pinger)
    notifier.close()
    assert pinger.skipped_stalled == 1
    assert pinger.sent == 2
    assert receiver.drain() == ["WATCHDOG=1"] * 2


async def test_a_stalled_real_loop_is_noticed(receiver: Receiver) -> None:
    """The same on the real loop clock: a callback that blocks the loop for longer than the
    interval makes the round that slept through it skip its ping (nothing else is asserted:
    a loaded machine may make other rounds late too)."""
    notifier = _watched(receiver, 0.2)
    pinger = WatchdogPinger(notifier, lambda: True)
    task = asyncio.create_task(pinger.run(), name="watchdog")
    asyncio.get_running_loop().call_later(0.05, time.sleep, 0.5)
    while pinger.skipped_stalled == 0:
        await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    notifier.close()
    assert pinger.skipped_stalled >= 1


async def test_an_unhealthy_daemon_is_not_pinged(receiver: Receiver) -> None:
    notifier = _watched(receiver, 0.1)
    health = iter([False, False, True])

    def healthy() -> bool:
        return next(health, True)

    pinger = WatchdogPinger(notifier, healthy, clock=ScriptedClock(rounds=3))
    await _run(pinger)
    notifier.close()
    assert pinger.skipped_unhealthy == 2
    assert pinger.sent == 1
    assert receiver.drain() == ["WATCHDOG=1"]


async def test_a_raising_health_check_counts_as_unhealthy(receiver: Receiver) -> None:
    notifier = _watched(receiver, 0.1)

    def healthy() -> bool:
        raise RuntimeError("board gone")

    pinger = WatchdogPinger(notifier, healthy, clock=ScriptedClock(rounds=1))
    await _run(pinger)
    notifier.close()
    assert pinger.skipped_unhealthy == 1
    assert receiver.drain() == []


async def test_without_a_watchdog_the_pinger_returns_at_once(receiver: Receiver) -> None:
    await asyncio.wait_for(run_watchdog(Notifier(receiver.address), lambda: True), 1)
    await asyncio.wait_for(run_watchdog(Notifier(None, watchdog_usec="1000"), lambda: True), 1)
    assert receiver.drain() == []


@pytest.mark.parametrize(
    ("modems", "sims", "mqtt", "expected"),
    [
        (
            {f"m{i}": "ready" for i in range(7)} | {"m7": "offline"},
            {f"i{i}": "active" for i in range(13)} | {"b1": "blocked", "b2": "blocked"},
            True,
            "8 modems: 7 ready, 1 offline; 15 SIMs: 2 blocked; mqtt connected",
        ),
        (
            {"m1": "ready"},
            {"i1": "active", "i2": "resting"},
            False,
            "1 modem: 1 ready; 2 SIMs: all ok; mqtt disconnected",
        ),
        ({}, {}, True, "0 modems; 0 SIMs; mqtt connected"),
        (
            {"a": "absent", "b": "probing", "c": "weird", "d": "ready"},
            {"x": "locked", "y": "suspected", "z": "blocked"},
            True,
            "4 modems: 1 ready, 1 probing, 1 absent, 1 weird; "
            "3 SIMs: 1 blocked, 1 suspected, 1 locked; mqtt connected",
        ),
    ],
)
def test_summary_line(
    modems: dict[str, str], sims: dict[str, str], mqtt: bool, expected: str
) -> None:
    assert summary_line(modems, sims, mqtt) == expected
