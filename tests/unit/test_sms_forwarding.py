"""SmsForwarder with real subprocesses: the JSON on stdin, the environment, the timeout that
kills the whole process group, a missing program, a failing exit, a full queue, cancellation.

No elapsed-time asserts: the timeouts are configuration, the asserts are outcomes and order.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, MutableMapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from simbank.daemon.forwarding import STDERR_KEPT, SmsForwarder, encode_message

PY = sys.executable

MESSAGE: dict[str, object] = {
    "id": 41,
    "iccid": "8986011234567890123",
    "modem": "m1",
    "received_at": "2027-01-31T10:00:00+00:00",
    "sender": "+44 7700 900123",
    "text": "您的余额为12.30元 — Grüße\nzweite Zeile",
    "parts": 1,
}

WRITE_STDIN = (
    "import os, sys\n"
    "data = sys.stdin.buffer.read()\n"
    "env = os.environ.get('SIMBANK_SMS_ID', '-') + ' ' + os.environ.get('SIMBANK_ICCID', '-')\n"
    "with open(sys.argv[1], 'ab') as f:\n"
    "    f.write(data)\n"
    "with open(sys.argv[1] + '.env', 'a') as f:\n"
    "    f.write(env + '\\n')\n"
)

# Writes its pid and its child's pid, ignores SIGTERM (so only SIGKILL ends it), sleeps.
SLEEP_FOREVER = (
    "import os, signal, subprocess, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)'])\n"
    "with open(sys.argv[1] + '.tmp', 'w') as f:\n"
    "    f.write(f'{os.getpid()} {child.pid}')\n"
    "os.rename(sys.argv[1] + '.tmp', sys.argv[1])\n"
    "time.sleep(3600)\n"
)


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for a reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def pids_from(path: Path) -> list[int]:
    for _ in range(2000):
        if path.exists():
            return [int(p) for p in path.read_text().split()]
        await asyncio.sleep(0.01)
    raise AssertionError(f"{path} never appeared")


async def gone(pids: list[int]) -> bool:
    # A killed grandchild is reaped by whoever adopts it, a moment after the kill.
    for _ in range(500):
        if not any(alive(p) for p in pids):
            return True
        await asyncio.sleep(0.01)
    return False


@asynccontextmanager
async def running(forwarder: SmsForwarder) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(forwarder.run(), name="sms-forwarder")
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def events(logs: Sequence[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


def nothing_private(logs: Sequence[MutableMapping[str, Any]]) -> None:
    shown = json.dumps(logs, default=str)
    assert "7700" not in shown
    assert "余额" not in shown


async def test_the_message_arrives_on_stdin_as_one_json_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    forwarder = SmsForwarder([PY, "-c", WRITE_STDIN, str(out)], timeout_s=30)
    second = {"id": 42, "iccid": None, "text": "zwei"}
    with capture_logs() as logs:
        async with running(forwarder):
            assert forwarder.submit(MESSAGE)
            assert forwarder.submit(second)
            await forwarder.drain()
    data = out.read_bytes()
    lines = data.split(b"\n")
    assert lines[-1] == b""  # every document ends with a newline
    assert [json.loads(line.decode("utf-8")) for line in lines[:-1]] == [MESSAGE, second]
    assert "您的余额".encode() in data  # UTF-8, not ASCII escapes
    assert (tmp_path / "out.env").read_text().splitlines() == [
        "41 8986011234567890123",
        "42 -",
    ]
    assert events(logs, "sms_forwarded") == [
        {"event": "sms_forwarded", "sms_id": "41", "log_level": "debug"},
        {"event": "sms_forwarded", "sms_id": "42", "log_level": "debug"},
    ]
    nothing_private(logs)


async def test_a_command_that_hangs_is_killed_with_its_group(tmp_path: Path) -> None:
    pids_file, out = tmp_path / "pids", tmp_path / "out"
    hanging = SmsForwarder([PY, "-c", SLEEP_FOREVER, str(pids_file)], 0.5, kill_grace_s=0.2)
    with capture_logs() as logs:
        async with running(hanging) as task:
            assert hanging.submit(MESSAGE)
            await hanging.drain()
            assert not task.done()
    pids = await pids_from(pids_file)
    assert len(pids) == 2
    assert await gone(pids)  # the command (which ignored SIGTERM) and its child
    assert [(e["sms_id"], e["timeout_s"]) for e in events(logs, "sms_forward_timeout")] == [
        ("41", 0.5)
    ]
    nothing_private(logs)

    # The next message is forwarded as usual.
    writer = SmsForwarder([PY, "-c", WRITE_STDIN, str(out)], timeout_s=30)
    async with running(writer):
        writer.submit(MESSAGE)
        await writer.drain()
    assert json.loads(out.read_bytes()) == MESSAGE


async def test_timeout_then_next_message_on_the_same_forwarder(tmp_path: Path) -> None:
    # First run of the script hangs (no marker yet), the second writes stdin and exits.
    marker, out = tmp_path / "marker", tmp_path / "out"
    script = (
        "import os, sys, time\n"
        "if not os.path.exists(sys.argv[1]):\n"
        "    open(sys.argv[1], 'w').write(str(os.getpid()))\n"
        "    time.sleep(3600)\n"
        "open(sys.argv[2], 'wb').write(sys.stdin.buffer.read())\n"
    )
    forwarder = SmsForwarder([PY, "-c", script, str(marker), str(out)], 0.5, kill_grace_s=0.2)
    with capture_logs() as logs:
        async with running(forwarder):
            forwarder.submit({"id": 1, "text": "first"})
            forwarder.submit({"id": 2, "text": "second"})
            await forwarder.drain()
    assert [e["sms_id"] for e in events(logs, "sms_forward_timeout")] == ["1"]
    assert json.loads(out.read_bytes()) == {"id": 2, "text": "second"}
    assert await gone(await pids_from(marker))


async def test_a_missing_program_is_logged_once_and_run_goes_on(tmp_path: Path) -> None:
    not_executable = tmp_path / "script.sh"
    not_executable.write_text("#!/bin/sh\nexit 0\n")
    for program in (tmp_path / "no-such-program", not_executable):
        forwarder = SmsForwarder([str(program), "--flag"], timeout_s=5)
        with capture_logs() as logs:
            async with running(forwarder) as task:
                for n in range(3):
                    assert forwarder.submit({"id": n, "text": "x"})
                await forwarder.drain()
                assert not task.done()
        found = events(logs, "sms_forward_unavailable")
        assert [(e["sms_id"], e["log_level"]) for e in found] == [
            ("0", "warning"),
            ("1", "debug"),
            ("2", "debug"),
        ]
        assert found[0]["program"] == str(program)


async def test_a_failing_exit_is_logged_with_code_and_stderr_start(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "sys.stdin.read()\n"
        "sys.stderr.write('boom ' + 'e' * 100000)\n"  # more than a pipe holds
        "sys.exit(3)\n"
    )
    forwarder = SmsForwarder([PY, "-c", script], timeout_s=30)
    with capture_logs() as logs:
        async with running(forwarder):
            forwarder.submit(MESSAGE)
            await forwarder.drain()
    (failed,) = events(logs, "sms_forward_failed")
    assert failed["returncode"] == 3
    assert failed["sms_id"] == "41"
    assert failed["stderr"] == ("boom " + "e" * 100000)[:STDERR_KEPT]
    nothing_private(logs)


async def test_a_command_that_ignores_stdin_still_counts_by_its_exit(tmp_path: Path) -> None:
    forwarder = SmsForwarder([PY, "-c", "import os; os.close(0)"], timeout_s=30)
    big = {"id": 7, "text": "x" * 300_000}  # more than a pipe holds: the write breaks
    with capture_logs() as logs:
        async with running(forwarder):
            forwarder.submit(big)
            await forwarder.drain()
    assert events(logs, "sms_forwarded") == [
        {"event": "sms_forwarded", "sms_id": "7", "log_level": "debug"}
    ]


async def test_a_full_queue_turns_the_message_away() -> None:
    forwarder = SmsForwarder([PY, "-c", "pass"], timeout_s=5, max_pending=2)
    with capture_logs() as logs:
        assert [forwarder.submit({"id": n}) for n in range(4)] == [True, True, False, False]
    assert forwarder.pending == 2
    assert forwarder.skipped == 2
    assert [(e["sms_id"], e["reason"]) for e in events(logs, "sms_forward_skipped")] == [
        ("2", "queue_full"),
        ("3", "queue_full"),
    ]


async def test_cancelling_run_kills_the_running_command(tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    forwarder = SmsForwarder([PY, "-c", SLEEP_FOREVER, str(pids_file)], 3600, kill_grace_s=0.2)
    async with running(forwarder):
        forwarder.submit(MESSAGE)
        pids = await pids_from(pids_file)
        assert all(alive(p) for p in pids)
    assert await gone(pids)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"id": 1}, b'{"id":1}\n'),
        ({"text": "a\nb"}, b'{"text":"a\\nb"}\n'),
        ({"text": "Привет"}, '{"text":"Привет"}\n'.encode()),
        ({"at": datetime(2027, 1, 31, tzinfo=UTC)}, b'{"at":"2027-01-31 00:00:00+00:00"}\n'),
        ({"text": "bad \ud800"}, b'{"text":"bad \\ud800"}\n'),
        ({"missing": [2, 3], "iccid": None}, b'{"missing":[2,3],"iccid":null}\n'),
    ],
)
def test_encode_message(message: dict[str, object], expected: bytes) -> None:
    encoded = encode_message(message)
    assert encoded == expected
    assert encoded.count(b"\n") == 1
    encoded.decode("utf-8")


def test_an_empty_command_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        SmsForwarder([], timeout_s=5)


def test_pid_check_helper_sees_this_process() -> None:
    assert alive(os.getpid())
