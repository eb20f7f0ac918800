"""The FastAGI endpoint over real loopback TCP, with a fake Asterisk playing its side of the
protocol (``simbank.agi.asterisk``, built from res_agi.c) and a recording authority at the
boundary: authorize sets the channel variables, a refusal sets SIMBANK_REFUSED, complete maps
what Dial() left, and nothing malformed takes the listener down."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from simbank.agi import serve
from simbank.agi.asterisk import AsteriskPeer, environment
from simbank.errors import AtTimeout, ConfigError, Refused

pytestmark = pytest.mark.integration

GRANT = {
    "modem": "quectel-1",
    "device": "quectel0",
    "iccid": "8999000000000000017",
    "booking": "bk-QH7v2x9Lr0aW",
    "max_duration_s": 300,
    "expires_at": "2030-01-01T00:05:00Z",
}


class Authority:
    """Records what it is asked; answers ``answer`` or raises ``error``."""

    def __init__(self, answer: Mapping[str, object] = GRANT, error: Exception | None = None):
        self.answer = answer
        self.error = error
        self.calls: list[tuple[Any, ...]] = []

    async def authorize(
        self, number: str, modem: str | None, max_duration_s: int | None
    ) -> Mapping[str, object]:
        self.calls.append(("authorize", number, modem, max_duration_s))
        if self.error is not None:
            raise self.error
        return self.answer

    async def complete(
        self, booking: str, duration_s: int, outcome: str, cause: int | None
    ) -> Mapping[str, object]:
        self.calls.append(("complete", booking, duration_s, outcome, cause))
        if self.error is not None:
            raise self.error
        return {"booking": booking, "settled": True}


def _set(peer: AsteriskPeer) -> list[tuple[str, str]]:
    return [(c[2], c[3]) for c in peer.commands if c[:2] == ["SET", "VARIABLE"]]


async def test_authorize_sets_the_variables() -> None:
    authority = Authority()
    async with await serve(authority, port=0) as server:
        peer = AsteriskPeer({"SIMBANK_BOOKING": "stale", "SIMBANK_REFUSED": "busy"})
        variables = await peer.run(server.port, "authorize", ["+15550123", "quectel-1", "300"])
    assert authority.calls == [("authorize", "+15550123", "quectel-1", 300)]
    assert variables["SIMBANK_DEVICE"] == "quectel0"
    assert variables["SIMBANK_MODEM"] == "quectel-1"
    assert variables["SIMBANK_ICCID"] == "8999000000000000017"
    assert variables["SIMBANK_BOOKING"] == "bk-QH7v2x9Lr0aW"
    assert variables["SIMBANK_MAX_DURATION"] == "300"
    assert variables["SIMBANK_EXPIRES_AT"] == "2030-01-01T00:05:00Z"
    assert variables["SIMBANK_REFUSED"] == variables["SIMBANK_ERROR"] == ""
    sets = _set(peer)
    assert sets[0] == ("SIMBANK_BOOKING", "")  # cleared before the daemon is asked
    assert sets[-1] == ("SIMBANK_BOOKING", "bk-QH7v2x9Lr0aW")  # and written last
    assert all(reply.startswith("200 ") for reply in peer.replies)


async def test_the_number_can_come_from_a_channel_variable() -> None:
    authority = Authority()
    async with await serve(authority, port=0) as server:
        await AsteriskPeer({"DIALEDNUMBER": "+447700900123"}).run(server.port, "authorize")
        both = {"SIMBANK_NUMBER": "+15550142", "DIALEDNUMBER": "+447700900123"}
        await AsteriskPeer(both).run(server.port, "authorize", ["", "", "60"])
        nothing = await AsteriskPeer().run(server.port, "authorize")
    assert authority.calls == [
        ("authorize", "+447700900123", None, None),
        ("authorize", "+15550142", None, 60),
    ]
    assert nothing["SIMBANK_REFUSED"] == "validation_error"
    assert "SIMBANK_NUMBER" in nothing["SIMBANK_ERROR"]


async def test_a_refusal_sets_simbank_refused() -> None:
    authority = Authority(error=Refused("quota_exhausted", "every SIM has used its minutes"))
    async with await serve(authority, port=0) as server:
        peer = AsteriskPeer({"SIMBANK_DEVICE": "quectel9"})
        variables = await peer.run(server.port, "authorize", ["+442079460123"])
        bad = await AsteriskPeer().run(server.port, "authorize", ["+15550123", "Bad Modem"])
    assert variables["SIMBANK_REFUSED"] == "quota_exhausted"
    assert variables["SIMBANK_ERROR"] == "every SIM has used its minutes"
    assert variables["SIMBANK_DEVICE"] == variables["SIMBANK_BOOKING"] == ""
    assert bad["SIMBANK_REFUSED"] == "validation_error"
    assert len(authority.calls) == 1  # a bad argument never reaches the daemon


async def test_a_failing_or_slow_authority_refuses_and_the_server_serves_on() -> None:
    class Slow(Authority):
        async def authorize(
            self, number: str, modem: str | None, max_duration_s: int | None
        ) -> Mapping[str, object]:
            await asyncio.sleep(3600)
            return {}

    async with await serve(Authority(error=RuntimeError("disk full")), port=0) as server:
        crashed = await AsteriskPeer().run(server.port, "authorize", ["+15550123"])
        fine = Authority()
        server._authority = fine  # the same listener, a healthy authority now
        granted = await AsteriskPeer().run(server.port, "authorize", ["+15550123"])
    async with await serve(Slow(), port=0, authority_timeout_s=0.05) as server:
        slow = await AsteriskPeer().run(server.port, "authorize", ["+15550123"])
    async with await serve(Authority(error=AtTimeout("AT+CFUN=1")), port=0) as server:
        at_timeout = await AsteriskPeer().run(server.port, "authorize", ["+15550123"])
    no_device = dict(GRANT, device=None)
    unusable = Authority(answer=no_device)
    async with await serve(unusable, port=0) as server:
        deviceless = await AsteriskPeer().run(server.port, "authorize", ["+15550123"])
    assert crashed["SIMBANK_REFUSED"] == "error"
    assert "disk full" in crashed["SIMBANK_ERROR"]
    assert granted["SIMBANK_BOOKING"] == "bk-QH7v2x9Lr0aW"
    assert slow["SIMBANK_REFUSED"] == "error"
    assert at_timeout["SIMBANK_REFUSED"] == "timeout"
    assert "no answer within" in slow["SIMBANK_ERROR"]
    assert deviceless["SIMBANK_REFUSED"] == "error"
    assert "no PBX device" in deviceless["SIMBANK_ERROR"]
    assert deviceless["SIMBANK_BOOKING"] == ""
    assert unusable.calls[-1] == (
        "complete",
        "bk-QH7v2x9Lr0aW",
        0,
        "failed",
        None,
    )  # settled at once


@pytest.mark.parametrize(
    ("channel", "settled"),
    [
        (
            {"DIALSTATUS": "ANSWER", "ANSWEREDTIME_MS": "61200", "HANGUPCAUSE": "16"},
            ("bk-QH7v2x9Lr0aW", 62, "completed", 16),
        ),
        (
            {"DIALSTATUS": "BUSY", "ANSWEREDTIME": "", "HANGUPCAUSE": "17"},
            ("bk-QH7v2x9Lr0aW", 0, "busy", 17),
        ),
        (
            {"DIALSTATUS": "NOANSWER", "CDR(billsec)": "0", "HANGUPCAUSE": "19"},
            ("bk-QH7v2x9Lr0aW", 0, "no_answer", 19),
        ),
        ({"DIALSTATUS": "CHANUNAVAIL", "HANGUPCAUSE": "0"}, ("bk-QH7v2x9Lr0aW", 0, "failed", None)),
        ({"ANSWEREDTIME": "42", "CDR(billsec)": "40"}, ("bk-QH7v2x9Lr0aW", 42, "failed", None)),
    ],
)
async def test_complete_maps_what_dial_left(
    channel: dict[str, str], settled: tuple[object, ...]
) -> None:
    authority = Authority()
    async with await serve(authority, port=0) as server:
        # in a hangup handler the channel is already gone: HANGUP comes inline, mid-dialog
        peer = AsteriskPeer({"SIMBANK_BOOKING": "bk-QH7v2x9Lr0aW", **channel}, hangup_after=1)
        variables = await peer.run(server.port, "complete")
    assert authority.calls == [("complete", *settled)]
    assert variables["SIMBANK_COMPLETED"] == settled[2]
    assert peer.replies[0] == "HANGUP"


async def test_complete_by_argument_without_booking_and_refused() -> None:
    authority = Authority()
    async with await serve(authority, port=0) as server:
        by_arg = await AsteriskPeer({"DIALSTATUS": "ANSWER", "ANSWEREDTIME": "5"}).run(
            server.port, "complete", ["bk-Zp3k8sN1qYcE"]
        )
        without = await AsteriskPeer({"DIALSTATUS": "ANSWER"}).run(server.port, "complete")
        authority.error = Refused("unknown_booking", "no booking bk-QH7v2x9Lr0aW")
        refused = await AsteriskPeer({"SIMBANK_BOOKING": "bk-QH7v2x9Lr0aW"}).run(
            server.port, "complete"
        )
    assert authority.calls[0] == ("complete", "bk-Zp3k8sN1qYcE", 5, "completed", None)
    assert by_arg["SIMBANK_COMPLETED"] == "completed"
    assert "nothing to settle" in without["SIMBANK_ERROR"]
    assert len(authority.calls) == 2  # the one without a booking asked nothing
    assert refused["SIMBANK_ERROR"].startswith("unknown_booking:")
    assert "SIMBANK_COMPLETED" not in refused


async def test_an_unknown_script_is_a_clear_failure() -> None:
    authority = Authority()
    async with await serve(authority, port=0) as server:
        peer = AsteriskPeer()
        variables = await peer.run(server.port, "authorise", ["+15550123"])
    assert authority.calls == []
    assert variables["SIMBANK_REFUSED"] == "error"
    assert "unknown AGI script 'authorise'" in variables["SIMBANK_ERROR"]
    assert peer.commands[0][0] == "VERBOSE"
    assert "agi://host:port/authorize" in peer.commands[0][1]


async def _closed_without_a_command(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(10):  # a hang guard only
            return await reader.read()  # the server closes: EOF
    except ConnectionResetError:  # closed with our bytes unread: the kernel says RST
        return b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionResetError):
            await writer.wait_closed()


async def test_malformed_input_closes_that_connection_and_the_server_serves_on() -> None:
    authority = Authority()
    async with await serve(authority, port=0, read_timeout_s=0.2) as server:
        http = await _closed_without_a_command(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        long_line = await _closed_without_a_command(server.port, b"agi_request: " + b"x" * 9000)
        no_request = await _closed_without_a_command(server.port, b"agi_channel: x\n\n")
        silent = await _closed_without_a_command(server.port, b"agi_request: x\n")
        sent: list[str] = []

        def garbage(line: str) -> list[str]:
            sent.append(line)
            return ["garbage"]

        half = AsteriskPeer()  # a command answered with garbage: that dialog ends
        half.answer = garbage  # type: ignore[method-assign]
        await half.run(server.port, "authorize", ["+15550123"])
        after = await AsteriskPeer().run(server.port, "authorize", ["+15550123"])
    assert http == long_line == no_request == silent == b""
    assert sent == ['SET VARIABLE SIMBANK_BOOKING ""']
    assert after["SIMBANK_BOOKING"] == "bk-QH7v2x9Lr0aW"


async def test_connections_are_bounded() -> None:
    authority = Authority()
    async with await serve(authority, port=0, max_connections=1) as server:
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(environment("authorize", ["+15550123"])[:40])  # half a block, then wait
        await writer.drain()
        while server.connections < 1:
            await asyncio.sleep(0.01)
        refused = await _closed_without_a_command(server.port, environment("authorize"))
        writer.close()
        await writer.wait_closed()
        while server.connections:
            await asyncio.sleep(0.01)
        served = await AsteriskPeer().run(server.port, "authorize", ["+15550123"])
    assert refused == b""
    assert served["SIMBANK_BOOKING"] == "bk-QH7v2x9Lr0aW"


async def test_a_remote_bind_is_refused_unless_allowed() -> None:
    with pytest.raises(ConfigError, match="non-loopback"):
        await serve(Authority(), "0.0.0.0", 0)


async def test_a_caller_gone_before_the_booking_was_set_releases_it() -> None:
    """The channel hung up while simbank authorized: the dialplan will neither dial nor run
    its hangup handler, so the booking is settled unused at once instead of holding the
    modem until it expires."""
    authority = Authority()
    async with await serve(authority, port=0) as server:
        peer = AsteriskPeer(hangup_after=1)  # HANGUP right after the first SET VARIABLE
        await peer.run(server.port, "authorize", ["+15550100123", "quectel-1", "300"])
    assert authority.calls == [
        ("authorize", "+15550100123", "quectel-1", 300),
        ("complete", GRANT["booking"], 0, "failed", None),
    ]


async def test_a_granted_channel_still_there_keeps_its_booking() -> None:
    authority = Authority()
    async with await serve(authority, port=0) as server:
        variables = await AsteriskPeer().run(
            server.port, "authorize", ["+15550100123", "quectel-1", "300"]
        )
    assert variables["SIMBANK_BOOKING"] == GRANT["booking"]
    assert [c[0] for c in authority.calls] == ["authorize"]


class SlowPeer(AsteriskPeer):
    """Answers the first command at once, then each one ``delay_s`` late (never late enough
    for the per-line read timeout): a peer that would hold its connection for ever."""

    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.delay_s = delay_s

    async def run(
        self, port: int, script: str, args: Sequence[str] = (), **_: Any
    ) -> dict[str, str]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(environment(script, args, port=port))
            await writer.drain()
            while raw := await asyncio.wait_for(reader.readline(), 10):
                lines = self.answer(raw.decode().rstrip("\n"))
                if len(self.commands) > 1:
                    await asyncio.sleep(self.delay_s)
                writer.write("".join(f"{line}\n" for line in lines).encode())
                await writer.drain()
        except ConnectionError:
            pass  # the server cut the connection
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        return self.variables


async def test_a_slow_peer_is_cut_off_at_the_deadline_and_its_booking_released() -> None:
    """Each reply comes well inside the read timeout, but the whole dialog would take longer
    than the connection's deadline: it is closed, the grant never completed (no booking on
    the channel, so the dialplan does not dial) and the booking is settled unused at once."""
    authority = Authority()
    async with await serve(
        authority, port=0, read_timeout_s=5.0, authority_timeout_s=1.0, dialog_deadline_s=0.5
    ) as server:
        assert server.deadline_s == 1.5
        peer = SlowPeer(delay_s=0.5)  # eight grant variables: 4 s, past the deadline
        variables = await peer.run(server.port, "authorize", ["+15550100123", "quectel-1", "300"])
        assert variables.get("SIMBANK_BOOKING", "") == ""
        assert authority.calls == [
            ("authorize", "+15550100123", "quectel-1", 300),
            ("complete", GRANT["booking"], 0, "failed", None),
        ]
        # The listener serves on: a normal peer gets its grant.
        ok = await AsteriskPeer().run(server.port, "authorize", ["+15550100123"])
    assert ok["SIMBANK_BOOKING"] == GRANT["booking"]
