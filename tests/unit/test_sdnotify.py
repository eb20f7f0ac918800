"""sd_notify against a real AF_UNIX datagram socket; the watchdog pinger on a real loop."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from simbank.daemon.sdnotify import Notifier, WatchdogPinger, run_watchdog, summary_line


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


async def test_healthy_pings_arrive_at_about_the_interval(receiver: Receiver) -> None:
    notifier = _watched(receiver, 0.1)
    pinger = WatchdogPinger(notifier, lambda: True)
    assert pinger.interval == 0.1
    task = asyncio.create_task(pinger.run(), name="watchdog")
    arrivals = []
    deadline = time.monotonic() + 0.65
    receiver.sock.setblocking(False)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.005)
        for message in receiver.drain():
            assert message == "WATCHDOG=1"
            arrivals.append(time.monotonic())
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    notifier.close()
    assert 5 <= len(arrivals) <= 7
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert all(0.07 < gap < 0.2 for gap in gaps), gaps
    assert pinger.sent == len(arrivals)


async def test_a_stalled_loop_skips_the_ping(receiver: Receiver) -> None:
    notifier = _watched(receiver, 0.2)
    pinger = WatchdogPinger(notifier, lambda: True)
    task = asyncio.create_task(pinger.run(), name="watchdog")
    # Block the whole loop for longer than interval/2 while the pinger sleeps its first round.
    asyncio.get_running_loop().call_later(0.05, time.sleep, 0.35)
    await asyncio.sleep(0.45)  # the first round woke ~0.2 s late
    assert pinger.skipped_stalled == 1
    assert pinger.sent == 0
    assert receiver.drain() == []
    await asyncio.sleep(0.25)  # the next round is on time again
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    notifier.close()
    assert pinger.sent == 1
    assert receiver.drain() == ["WATCHDOG=1"]


async def test_an_unhealthy_daemon_is_not_pinged(receiver: Receiver) -> None:
    notifier = _watched(receiver, 0.1)
    health = iter([False, False, True])

    def healthy() -> bool:
        return next(health, True)

    pinger = WatchdogPinger(notifier, healthy)
    task = asyncio.create_task(pinger.run(), name="watchdog")
    await asyncio.sleep(0.35)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    notifier.close()
    assert pinger.skipped_unhealthy == 2
    assert pinger.sent == 1
    assert receiver.drain() == ["WATCHDOG=1"]


async def test_a_raising_health_check_counts_as_unhealthy(receiver: Receiver) -> None:
    notifier = _watched(receiver, 0.1)

    def healthy() -> bool:
        raise RuntimeError("board gone")

    pinger = WatchdogPinger(notifier, healthy)
    task = asyncio.create_task(pinger.run(), name="watchdog")
    await asyncio.sleep(0.15)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
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
