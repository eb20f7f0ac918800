"""AtChannel through open_port on real pseudo-terminals (pyserial + pyserial-asyncio-fast).

A small responder sits on the PTY master: it reads command lines and answers from a script,
optionally one byte per write, optionally never (a hang).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import tty
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import structlog.testing

from simbank.at.channel import AtChannel
from simbank.at.results import Command, Urc
from simbank.drivers.port import open_port
from simbank.drivers.registry import VENDOR_URC_NAMES
from simbank.errors import (
    AtTimeout,
    CommandError,
    ModemUnresponsive,
    PortLost,
    PortUnavailable,
    ProtocolGarbage,
)

pytestmark = pytest.mark.integration

Reply = bytes | Callable[[bytes], bytes | None] | None  # a callable may write itself


@dataclass
class FakeModem:
    """The master side of a PTY, answering AT commands from ``script``."""

    master: int
    path: str
    script: dict[bytes, Reply] = field(default_factory=dict)
    byte_at_a_time: bool = False
    ahead: bytes = b""  # sent once, just ahead of the answer to the next command
    received: bytearray = field(default_factory=bytearray)
    _pending: bytearray = field(default_factory=bytearray)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    closed: bool = False

    def start(self) -> None:
        asyncio.get_running_loop().add_reader(self.master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 4096)
        except OSError:  # EAGAIN, or EIO while no slave fd is open
            return
        self.received += data
        self._pending += data
        while True:
            # a command ends with CR; an SMS payload ends with Ctrl-Z
            ends = [i for i in (self._pending.find(b"\r"), self._pending.find(b"\x1a")) if i >= 0]
            if not ends:
                return
            end = min(ends)
            line = bytes(self._pending[: end + 1])
            del self._pending[: end + 1]
            self._answer(line)

    def _answer(self, line: bytes) -> None:
        if self.ahead:
            self.write(self.ahead)
            self.ahead = b""
        key = line.rstrip(b"\r")
        reply = self.script.get(key, b"\r\nERROR\r\n")
        if callable(reply):
            reply = reply(key)
        if reply is None:
            return  # hang
        self.write(reply)

    def write(self, data: bytes, *, delay: float = 0.0) -> None:
        task = asyncio.get_running_loop().create_task(self._write(data, delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, data: bytes, delay: float = 0.0) -> None:
        if delay:
            await asyncio.sleep(delay)
        if self.closed:
            return
        if not self.byte_at_a_time:
            os.write(self.master, data)
            return
        for i in range(len(data)):
            if self.closed:
                return
            os.write(self.master, data[i : i + 1])
            await asyncio.sleep(0.001)  # let the reader see each byte on its own

    def unplug(self) -> None:
        if self.closed:
            return
        self.closed = True
        asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.unplug()


@pytest.fixture
async def modem() -> AsyncIterator[FakeModem]:
    master, slave = os.openpty()
    tty.setraw(master)
    os.set_blocking(master, False)
    # Hold the slave open for the test's life: with no slave fd open the master reports
    # POLLHUP and a blocking read on it would stall the loop.
    fake = FakeModem(master, os.ttyname(slave))
    fake.start()
    yield fake
    await fake.stop()
    os.close(slave)


@pytest.fixture
async def channel(modem: FakeModem) -> AsyncIterator[AtChannel]:
    chan = await open_port(modem.path, 115200, "pty0")
    yield chan
    chan.close()
    await asyncio.wait_for(chan.wait_closed(), 20)


async def test_command_and_response(modem: FakeModem, channel: AtChannel) -> None:
    modem.script[b"AT+CSQ"] = b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"
    response = await channel.request(Command("AT+CSQ", prefix="+CSQ"))
    assert response.value() == "20,99"
    assert modem.received == b"AT+CSQ\r"
    assert channel.connected


async def test_error_raises_command_error_unless_unchecked(
    modem: FakeModem, channel: AtChannel
) -> None:
    modem.script[b"AT+CPIN?"] = b"\r\n+CME ERROR: 10\r\n"
    with pytest.raises(CommandError) as info:
        await channel.request("AT+CPIN?")
    assert info.value.code == 10
    response = await channel.request("AT+CPIN?", check=False)
    assert not response.ok


async def test_urc_mid_response_is_delivered_and_response_intact(
    modem: FakeModem, channel: AtChannel
) -> None:
    modem.script[b"AT+CGSN"] = b"\r\n350000001234560\r\n\r\n+CREG: 1\r\n\r\nRING\r\n\r\nOK\r\n"
    creg: list[Urc] = []
    everything: list[Urc] = []
    channel.subscribe("+CREG", creg.append)
    channel.subscribe_all(everything.append)
    response = await channel.request("AT+CGSN")
    assert response.lines == ("350000001234560",)
    assert creg == [Urc("+CREG", "+CREG: 1")]
    assert [u.name for u in everything] == ["+CREG", "RING"]


async def test_a_vendor_urc_mid_response_is_a_urc_on_a_port_from_open_port(
    modem: FakeModem, channel: AtChannel
) -> None:
    # open_port gives the channel every dialect's URC names: a Huawei ^SIMST and a Quectel
    # +QUSIM during AT+CGMI (before any dialect is known) stay out of the answer.
    modem.script[b"AT+CGMI"] = b"\r\nQuectel\r\n\r\n^SIMST: 1\r\n\r\n+QUSIM: 1\r\n\r\nOK\r\n"
    everything: list[Urc] = []
    channel.subscribe_all(everything.append)
    assert channel.urc_names >= VENDOR_URC_NAMES
    response = await channel.request("AT+CGMI")
    assert response.lines == ("Quectel",)
    assert [u.name for u in everything] == ["^SIMST", "+QUSIM"]


async def test_replies_one_byte_at_a_time_with_prompt(modem: FakeModem, channel: AtChannel) -> None:
    modem.byte_at_a_time = True
    modem.script[b"ATE1"] = b"ATE1\r\r\nOK\r\n"
    modem.script[b"AT+CREG?"] = b'AT+CREG?\r\r\n+CREG: 2,1,"8BE3","00002BAF"\r\n\r\nOK\r\n'
    modem.script[b'AT+CMGS="+15550100123"'] = b'AT+CMGS="+15550100123"\r\r\n> '
    modem.script[b"hello\x1a"] = b"hello\x1a\r\n+CMGS: 42\r\n\r\nOK\r\n"
    await channel.request("ATE1")
    creg = await channel.request(Command("AT+CREG?", prefix="+CREG"))
    assert creg.value() == '2,1,"8BE3","00002BAF"'
    sms = Command(
        'AT+CMGS="+15550100123"', prefix="+CMGS", payload="hello", sensitive=True, timeout=5
    )
    assert (await channel.request(sms)).value() == "42"
    assert modem.received.endswith(b'AT+CMGS="+15550100123"\rhello\x1a')


async def test_commands_are_sent_one_at_a_time_in_order(
    modem: FakeModem, channel: AtChannel
) -> None:
    for n in range(5):
        modem.script[f"AT+N{n}".encode()] = f"\r\n+N{n}: {n}\r\n\r\nOK\r\n".encode()
    results = await asyncio.gather(*(channel.request(f"AT+N{n}") for n in range(5)))
    assert [r.value() for r in results] == ["0", "1", "2", "3", "4"]
    assert modem.received == b"".join(f"AT+N{n}\r".encode() for n in range(5))


async def test_hang_times_out_and_counts(modem: FakeModem, channel: AtChannel) -> None:
    modem.script[b"AT+HANG"] = None
    modem.script[b"AT"] = b"\r\nOK\r\n"
    for expected in (1, 2):
        with pytest.raises(AtTimeout):
            await channel.request(Command("AT+HANG", timeout=0.2))
        assert channel.consecutive_timeouts == expected
    modem.write(b"\r\nOK\r\n")  # the late answer to the last hang: a Stray, not a crash
    await asyncio.sleep(0.05)
    await channel.request("AT")
    assert channel.consecutive_timeouts == 0


async def test_unplug_fails_pending_and_queued_at_once(
    modem: FakeModem, channel: AtChannel
) -> None:
    modem.script[b"AT+COPS?"] = None
    in_flight = asyncio.create_task(channel.request(Command("AT+COPS?", timeout=30)))
    queued = asyncio.create_task(channel.request(Command("AT+CSQ", timeout=30)))
    urc_waiter = asyncio.create_task(channel.wait_for_urc("+CPIN", timeout=30))
    await asyncio.sleep(0.05)
    modem.unplug()
    # PortLost, not AtTimeout: each failed because the port went, long before its own 30 s.
    for task in (in_flight, queued, urc_waiter):
        with pytest.raises(PortLost):
            await asyncio.wait_for(task, 25)
    assert await asyncio.wait_for(channel.wait_closed(), 20) is not None
    assert not channel.connected
    with pytest.raises(PortLost):
        await channel.request("AT")


async def test_abort_gives_up_a_hung_command_and_its_queue_but_keeps_the_port(
    modem: FakeModem, channel: AtChannel
) -> None:
    """A dial queued behind a hang must not hold the re-sync for its own 40 s timeout."""
    modem.script[b"AT+CREG?"] = None
    modem.script[b"AT"] = b"\r\nOK\r\n"
    in_flight = asyncio.create_task(channel.request(Command("AT+CREG?", timeout=30)))
    queued = asyncio.create_task(channel.request(Command("ATD+15550100123;", timeout=40)))
    await asyncio.sleep(0.05)
    assert channel.abort("modem unresponsive") == 2
    # Failed by the abort (its reason), not by their own 30 s / 40 s timeouts.
    for task in (in_flight, queued):
        with pytest.raises(ModemUnresponsive, match="modem unresponsive"):
            await asyncio.wait_for(task, 25)
    assert channel.connected
    assert b"ATD" not in modem.received  # the queued dial was never sent
    assert (await channel.request("AT")).ok


async def test_a_long_command_after_a_timeout_waits_for_a_live_at(
    modem: FakeModem, channel: AtChannel
) -> None:
    """After a timeout, a 40 s command goes out only once a plain AT is answered: a hung
    modem fails it within the AT's 3 s, and a live one still gets it."""
    for hung in (b"AT+CREG?", b"AT+CFUN=4", b"AT"):
        modem.script[hung] = None
    with pytest.raises(AtTimeout):
        await channel.request(Command("AT+CREG?", timeout=0.2))
    # Failed by the liveness AT ("does not answer AT"), not by its own 40 s timeout.
    with pytest.raises(ModemUnresponsive, match="does not answer AT"):
        await channel.request(Command("AT+CFUN=4", timeout=40))
    assert b"AT+CFUN=4" not in modem.received
    modem.script[b"AT"] = b"\r\nOK\r\n"
    modem.script[b"AT+CFUN=4"] = b"\r\nOK\r\n"
    assert (await channel.request(Command("AT+CFUN=4", timeout=40))).ok
    assert channel.consecutive_timeouts == 0


async def test_close_fails_pending_requests(modem: FakeModem, channel: AtChannel) -> None:
    modem.script[b"AT+COPS?"] = None
    in_flight = asyncio.create_task(channel.request(Command("AT+COPS?", timeout=30)))
    await asyncio.sleep(0.05)
    channel.close()
    with pytest.raises(PortLost):
        await asyncio.wait_for(in_flight, 20)
    assert await asyncio.wait_for(channel.wait_closed(), 20) is None


async def test_wait_for_urc_and_broken_subscriber(modem: FakeModem, channel: AtChannel) -> None:
    def broken(urc: Urc) -> None:
        raise RuntimeError("subscriber bug")

    channel.subscribe("+CPIN", broken)
    waiter = asyncio.create_task(
        channel.wait_for_urc("+CPIN", timeout=2, predicate=lambda u: u.text == "+CPIN: READY")
    )
    await asyncio.sleep(0.01)
    modem.write(b"\r\n+CPIN: NOT READY\r\n\r\n+CPIN: READY\r\n")
    assert (await waiter).text == "+CPIN: READY"
    with pytest.raises(AtTimeout):
        await channel.wait_for_urc("+CMTI", timeout=0.1)
    modem.script[b"AT"] = b"\r\nOK\r\n"
    assert (await channel.request("AT")).ok  # the channel survived the broken subscriber


async def test_cancelled_request_does_not_block_the_queue(
    modem: FakeModem, channel: AtChannel
) -> None:
    modem.script[b"AT+SLOW"] = None
    modem.script[b"AT"] = b"\r\nOK\r\n"
    slow = asyncio.create_task(channel.request(Command("AT+SLOW", timeout=0.2)))
    await asyncio.sleep(0.02)
    slow.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await slow
    assert (await channel.request("AT")).ok  # sent once the abandoned command timed out


async def test_sensitive_command_is_masked_in_logs(modem: FakeModem) -> None:
    modem.script[b'AT+CMGS="+15550100123"'] = b"\r\n> "
    modem.script[b"secret text\x1a"] = b"\r\n+CMGS: 9\r\n\r\nOK\r\n"
    with structlog.testing.capture_logs() as logs:
        chan = await open_port(modem.path, 115200, "pty-log")
        try:
            command = Command(
                'AT+CMGS="+15550100123"', prefix="+CMGS", payload="secret text", sensitive=True
            )
            assert (await chan.request(command)).value() == "9"
        finally:
            chan.close()
            await chan.wait_closed()
    assert {"at_tx", "at_tx_payload", "at_rx"} <= {entry["event"] for entry in logs}
    dumped = repr(logs)
    assert "15550100123" not in dumped
    assert "secret" not in dumped
    assert "AT+CMGS=***" in dumped


async def test_not_a_tty_is_unavailable(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(os.fspath(tmp_path), "plainfile")
    with open(path, "w"):
        pass
    with pytest.raises(PortUnavailable, match="plainfile"):
        await open_port(path, 115200, "notatty")


async def test_missing_device_is_unavailable() -> None:
    with pytest.raises(PortUnavailable, match="no such device"):
        await open_port("/dev/simbank-no-such-tty", 115200, "ghost")


async def test_second_open_is_refused(modem: FakeModem, channel: AtChannel) -> None:
    with pytest.raises(PortUnavailable, match="busy"):
        await open_port(modem.path, 115200, "pty0-again")
    modem.script[b"AT"] = b"\r\nOK\r\n"
    assert (await channel.request("AT")).ok  # the first owner is unaffected


async def test_permission_denied_is_unavailable(tmp_path: os.PathLike[str]) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions")
    path = os.path.join(os.fspath(tmp_path), "ttyFAKE")
    with open(path, "w"):
        pass
    os.chmod(path, 0)
    with pytest.raises(PortUnavailable, match="permission denied"):
        await open_port(path, 115200, "noperm")


async def test_ports_work_with_descriptors_past_1024(modem: FakeModem) -> None:
    """A gateway with a few hundred modems opens ports on descriptors >= FD_SETSIZE (1024),
    where pyserial's select()-based read fails: ours reads what epoll reported readable."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the hard descriptor limit ({hard}) is below 1200")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    fillers: list[int] = []
    try:
        while not fillers or fillers[-1] < 1100:
            fillers.append(os.open(os.devnull, os.O_RDONLY))
        modem.script[b"AT+CSQ"] = b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"
        chan = await open_port(modem.path, 115200, "pty-high")
        try:
            response = await chan.request(Command("AT+CSQ", prefix="+CSQ"))
            assert response.value("+CSQ") == "20,99"
        finally:
            chan.close()
            await asyncio.wait_for(chan.wait_closed(), 20)
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# -- re-sync after a stray final result (modem-realism.md B18, D8, B1) ---------------------

CSQ = Command("AT+CSQ", prefix="+CSQ")
TEN = [(f"AT+N{n}?", f"+N{n}", f"{n},{n * 7}") for n in range(10)]


def stray_then(modem: FakeModem, answer: bytes, *, after: float) -> Callable[[bytes], None]:
    """A reply that sends a stray ``OK`` at once and the real answer ``after`` seconds later,
    the first time only (a command sent again gets its answer straight away)."""
    calls: list[bytes] = []

    def reply(_key: bytes) -> None:
        if not calls:
            modem.write(b"\r\nOK\r\n")
            modem.write(answer, delay=after)
        else:
            modem.write(answer)
        calls.append(_key)

    return reply


def script_ten(modem: FakeModem) -> None:
    for text, name, value in TEN:
        modem.script[text.encode()] = f"\r\n{name}: {value}\r\n\r\nOK\r\n".encode()


async def assert_ten_in_step(channel: AtChannel) -> None:
    for text, name, value in TEN:
        response = await channel.request(Command(text, prefix=name))
        assert response.value() == value, (text, response)


@pytest.mark.parametrize("after", [0.005, 0.3], ids=["answer-close-behind", "answer-late"])
async def test_stray_ok_ahead_of_csq_does_not_shift_the_channel(
    modem: FakeModem, channel: AtChannel, after: float
) -> None:
    """B18: one OK too many, arriving just after AT+CSQ was written. Before: AT+CSQ got that
    OK (no +CSQ line), its +CSQ came as a URC, and every later command got the answer of
    the one before. Now AT+CSQ gets its own answer (held, or sent again after the re-sync)
    and so do the next ten."""
    modem.script[b"AT"] = b"\r\nOK\r\n"
    modem.script[b"AT+CSQ"] = stray_then(modem, b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n", after=after)
    script_ten(modem)
    seen: list[str] = []
    channel.on_resync = seen.append
    urcs: list[Urc] = []
    channel.subscribe_all(urcs.append)
    with structlog.testing.capture_logs() as logs:
        assert (await channel.request(CSQ)).value() == "20,99"
        await assert_ten_in_step(channel)
    assert channel.resyncs == 1
    assert len(seen) == 1
    resynced = [e for e in logs if e["event"] == "at_channel_resynced"]
    assert len(resynced) == 1
    assert resynced[0]["log_level"] == "warning"
    assert resynced[0]["reason"] == seen[0]
    assert not [u for u in urcs if u.name == "+CSQ"]  # the answer was not taken for a URC


async def test_stray_ok_while_idle_resyncs_once_and_the_next_commands_are_in_step(
    modem: FakeModem, channel: AtChannel
) -> None:
    modem.script[b"AT"] = b"\r\nOK\r\n"
    modem.script[b"AT+CSQ"] = b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"
    script_ten(modem)
    assert (await channel.request(CSQ)).value() == "20,99"
    resynced = asyncio.Event()
    channel.on_resync = lambda _reason: resynced.set()
    modem.write(b"\r\nOK\r\n")  # "unexpected OK every 30 sec" (E1550, chan_dongle #178)
    await asyncio.wait_for(resynced.wait(), 20)
    assert (await channel.request(CSQ)).value() == "20,99"
    await assert_ten_in_step(channel)
    assert channel.resyncs == 1
    assert modem.received.count(b"AT\r") == 1  # the re-sync's own AT, before the 2nd CSQ
    assert modem.received.index(b"AT\r") < modem.received.rindex(b"AT+CSQ\r")


async def test_stray_final_pinned_on_a_set_command_is_noticed_and_the_reads_stay_right(
    modem: FakeModem, channel: AtChannel
) -> None:
    """The stray lands on AT+CMGF=1 (a bare OK is its whole answer: it cannot be told from
    its own); its own OK, arriving with the next command's answer, is noticed and the next
    reads get their answers."""
    modem.script[b"AT"] = b"\r\nOK\r\n"

    def stray_then_ok(_key: bytes) -> None:
        modem.write(b"\r\nOK\r\n")
        modem.ahead = b"\r\nOK\r\n"  # its own OK, late: ahead of the AT+CSQ answer

    modem.script[b"AT+CMGF=1"] = stray_then_ok
    modem.script[b"AT+CSQ"] = b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"
    script_ten(modem)
    assert (await channel.request("AT+CMGF=1")).ok
    assert (await channel.request(CSQ)).value() == "20,99"
    await assert_ten_in_step(channel)
    assert channel.resyncs == 1


async def test_a_query_answered_bare_ok_twice_fails_typed_after_one_retry(
    modem: FakeModem, channel: AtChannel
) -> None:
    modem.script[b"AT"] = b"\r\nOK\r\n"
    modem.script[b"AT+CSQ"] = b"\r\nOK\r\n"
    with pytest.raises(ProtocolGarbage, match="answer lost twice"):
        await channel.request(CSQ)
    assert modem.received.count(b"AT+CSQ\r") == 2
    modem.script[b"AT+CSQ"] = b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"
    assert (await channel.request(CSQ)).value() == "20,99"


async def test_call_flow_no_carrier_is_a_urc_and_a_stray_after_atd_does_not_disturb(
    modem: FakeModem, channel: AtChannel
) -> None:
    """B1: ATD answered OK at once; the call end is an unsolicited NO CARRIER (not a stray
    final: no re-sync). A stray OK after the ATD's OK re-syncs; the call still ends."""
    modem.script[b"AT"] = b"\r\nOK\r\n"
    modem.script[b"ATD+15550100123;"] = b"\r\nOK\r\n"
    modem.script[b"AT+CLCC"] = b'\r\n+CLCC: 1,0,0,0,0,"+15550100123",145\r\n\r\nOK\r\n'
    modem.script[b"ATH"] = b"\r\nOK\r\n"
    ended: list[Urc] = []
    for result in ("NO CARRIER", "BUSY", "NO ANSWER"):
        channel.subscribe(result, ended.append)
    dial = Command("ATD+15550100123;", timeout=40, sensitive=True)

    assert (await channel.request(dial)).ok
    waiter = asyncio.create_task(channel.wait_for_urc("NO CARRIER", timeout=20))
    await asyncio.sleep(0)
    modem.write(b"\r\nNO CARRIER\r\n")
    assert (await waiter).text == "NO CARRIER"
    assert ended == [Urc("NO CARRIER", "NO CARRIER")]
    assert channel.resyncs == 0

    modem.script[b"ATD+15550100123;"] = b"\r\nOK\r\n\r\nOK\r\n"  # one final too many
    assert (await channel.request(dial)).ok
    clcc = await channel.request(Command("AT+CLCC", prefix="+CLCC", sensitive=True))
    assert clcc.values() == ['1,0,0,0,0,"+15550100123",145']
    waiter = asyncio.create_task(channel.wait_for_urc("NO CARRIER", timeout=20))
    await asyncio.sleep(0)
    modem.write(b"\r\nNO CARRIER\r\n")
    await waiter
    assert (await channel.request("ATH")).ok
    assert channel.resyncs == 1
    assert [u.name for u in ended] == ["NO CARRIER", "NO CARRIER"]


async def test_a_resync_on_a_line_that_never_goes_quiet_still_lets_commands_through(
    modem: FakeModem, channel: AtChannel
) -> None:
    """A stray final starts a re-sync that waits for a quiet line; a modem sending a URC every
    100 ms never gives it one. The wait is capped: the re-sync AT and the queued command go
    out and get their answers (before the cap, the queue waited for ever, untimed)."""
    modem.script[b"AT"] = b"\r\nOK\r\n"
    modem.script[b"AT+CSQ"] = b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"
    modem.write(b"\r\nOK\r\n")  # a stray final with nothing pending
    async with asyncio.timeout(20):
        while channel._resync_stage is None:  # the re-sync began: it waits for quiet
            await asyncio.sleep(0.01)
    chatty = True

    async def chatter() -> None:
        while chatty:
            modem.write(b"\r\n^RSSI:15\r\n")
            await asyncio.sleep(0.1)

    task = asyncio.create_task(chatter())
    try:
        response = await asyncio.wait_for(channel.request(Command("AT+CSQ", prefix="+CSQ")), 30)
    finally:
        chatty = False
        await task
    assert response.lines == ("+CSQ: 20,99",)
    assert channel.resyncs == 1


async def test_a_late_answer_after_a_timeout_is_not_taken_by_the_next_command(
    modem: FakeModem, channel: AtChannel
) -> None:
    """AT+CEER=? times out and its OK comes late; the next command (answered ERROR, slowly)
    must get its own ERROR, not the late OK (a capability probe read it as "present")."""

    def late_ok(_line: bytes) -> None:
        modem.write(b"\r\nOK\r\n", delay=0.4)  # 0.1 s after the 0.3 s timeout

    def slow_error(_line: bytes) -> None:
        modem.write(b"\r\nERROR\r\n", delay=0.2)

    modem.script[b"AT+CEER=?"] = late_ok
    modem.script[b"AT+CESQ=?"] = slow_error
    with pytest.raises(AtTimeout):
        await channel.request(Command("AT+CEER=?", timeout=0.3))
    response = await channel.request(Command("AT+CESQ=?", timeout=10), check=False)
    assert not response.ok, response
