"""Recorded modem transcripts replayed through the real stack.

Each file in tests/transcripts/ is a recording from a public source (ModemManager logs and test
data, Gammu's device dumps, python-gsmmodem's modem profiles, chan_dongle, vendor manuals). A
replay modem plays it on a real PTY; the real ``open_port`` + ``AtChannel`` + driver (or the
whole ``ModemSupervisor`` with a ``StatusBoard``) run against it. The test fails on any command
the transcript does not expect, on steps the host never reached, and on any ``@expect`` that
does not hold. ``@xfail`` marks a transcript that shows a known bug (strict: it must fail).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from replay import TRANSCRIPTS, ReplayModem, Transcript, discover, parse

from simbank.at.channel import AtChannel
from simbank.at.results import Urc
from simbank.config.models import ModemConfig
from simbank.contract import Topics
from simbank.daemon.board import StatusBoard
from simbank.daemon.modem.supervisor import ModemSupervisor
from simbank.drivers.generic import GenericDriver
from simbank.drivers.port import open_port
from simbank.drivers.registry import driver_by_name, driver_for_identity
from simbank.drivers.types import Domain

pytestmark = pytest.mark.integration

HANG_GUARD_S = 20.0
Flat = dict[str, str]


# -- rendering results as flat key=value maps -------------------------------------------------


def _text(value: object) -> str:
    if value is None:
        return "None"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, float):
        return f"{value:g}"
    if hasattr(value, "isoformat"):
        return str(value.isoformat())  # type: ignore[attr-defined]
    return str(value)


def flatten(value: object, prefix: str = "") -> Flat:
    """A dataclass, dict, list or pydantic model as ``{"a.b": "text"}``."""
    if hasattr(value, "model_dump"):
        value = value.model_dump()  # type: ignore[attr-defined]
    if is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in fields(value)}
    if isinstance(value, dict):
        out: Flat = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}{key}."))
        return out
    if isinstance(value, list | tuple):
        out = {f"{prefix}count": str(len(value))}
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}{index}."))
        return out
    return {prefix.rstrip("."): _text(value)}


def _stored(message: object) -> object:
    """A read message with its ``concat`` tuple named: ``concat.reference .total .sequence``
    (a status report, or a message without ``concat``, as it is)."""
    concat = getattr(message, "concat", None)
    if not isinstance(concat, tuple) or not is_dataclass(message):
        return message
    flat = {f.name: getattr(message, f.name) for f in fields(message)}
    flat["concat"] = dict(zip(("reference", "total", "sequence"), concat, strict=True))
    return flat


# -- operations ---------------------------------------------------------------------------------


class Session:
    """The real channel and driver over the replay modem's PTY."""

    def __init__(self, transcript: Transcript, channel: AtChannel) -> None:
        self.transcript = transcript
        self.channel = channel
        slots = int(transcript.one("slots", "1"))
        name = transcript.one("driver", "generic")
        self.auto = name == "auto"
        self.slots = slots
        self.driver: GenericDriver = (GenericDriver if self.auto else driver_by_name(name))(
            channel, slots=slots
        )
        self.urcs: list[Urc] = []
        channel.subscribe_all(self.urcs.append)
        # "@reg_modes creg=2": the registration URC modes setup_urcs would have left (so a
        # registrations op queries only the domains the recording covers).
        for spec in transcript.all("reg_modes"):
            for item in spec.split():
                domain, _, n = item.partition("=")
                self.driver.reg_modes[Domain(domain)] = int(n)

    async def run(self, op: str, arg: str) -> Flat:
        handler: Callable[[str], Awaitable[Flat]] = getattr(self, f"op_{op}")
        try:
            return await handler(arg)
        except Exception as exc:  # the transcript may expect the error
            return {"error": type(exc).__name__, "error.message": str(exc)}

    async def op_probe(self, _arg: str) -> Flat:
        identity = await self.driver.probe()
        if self.auto:
            cls = driver_for_identity(identity.manufacturer, identity.model)
            modes = self.driver.reg_modes
            self.driver = cls(self.channel, slots=self.slots)
            self.driver.reg_modes = modes
        return {**flatten(identity), "dialect": self.driver.dialect}

    async def op_setup_urcs(self, _arg: str) -> Flat:
        await self.driver.setup_urcs()
        return {f"reg_mode.{d.value}": str(n) for d, n in self.driver.reg_modes.items()}

    async def op_sim_status(self, _arg: str) -> Flat:
        return {"sim_status": _text(await self.driver.sim_status())}

    async def op_read_iccid(self, _arg: str) -> Flat:
        return {"iccid": _text(await self.driver.read_iccid())}

    async def op_read_imsi(self, _arg: str) -> Flat:
        return {"imsi": _text(await self.driver.read_imsi())}

    async def op_registrations(self, _arg: str) -> Flat:
        regs = await self.driver.registrations()
        out: Flat = {"registrations": str(len(regs))}
        for reg in regs:
            out.update(flatten(reg, f"{reg.domain.value}."))
            out[f"{reg.domain.value}.state"] = reg.state
        return out

    async def op_signal(self, _arg: str) -> Flat:
        return flatten(await self.driver.signal())

    async def op_operator(self, _arg: str) -> Flat:
        return flatten(await self.driver.operator())

    async def op_active_slot(self, _arg: str) -> Flat:
        return {"active_slot": str(await self.driver.active_slot())}

    async def op_list_calls(self, _arg: str) -> Flat:
        return flatten(await self.driver.list_calls(), "calls.")

    async def op_last_call_cause(self, _arg: str) -> Flat:
        return flatten(await self.driver.last_call_cause(), "cause.")

    async def op_dial(self, number: str) -> Flat:
        await self.driver.dial(number)
        return {"dialled": "yes"}

    async def op_hangup(self, _arg: str) -> Flat:
        await self.driver.hangup()
        return {"hung_up": "yes"}

    async def op_pdu_mode(self, arg: str) -> Flat:
        """``pdu_mode on|off``: the SMS format ``probe_capabilities`` would have found, set
        without sending anything (for a recording that does not cover the probe)."""
        self.driver.capabilities["pdu_mode"] = arg == "on"
        return {"capabilities.pdu_mode": str(self.driver.capabilities["pdu_mode"])}

    async def op_read_sms(self, arg: str) -> Flat:
        """``read_sms <index> [storage]`` (storage "SR" after a ``+CDSI: "SR",<index>``)."""
        index, _, storage = arg.partition(" ")
        found = await self.driver.read_sms(int(index), storage=storage.strip() or None)
        return flatten(_stored(found), "sms.")

    async def op_list_sms(self, _arg: str) -> Flat:
        found = await self.driver.list_sms()
        return flatten([{"index": i, **flatten(_stored(m))} for i, m in found], "sms.")

    async def op_send_sms(self, arg: str) -> Flat:
        number, _, text = arg.partition(" ")
        return {"mr": str(await self.driver.send_sms(number, text))}

    async def op_ussd(self, code: str) -> Flat:
        return {"ussd": await self.driver.ussd(code, timeout=5.0)}

    async def op_urc(self, name: str) -> Flat:
        """Wait for the next URC ``name`` (pushed by the transcript) and parse it."""
        seen = [u for u in self.urcs if u.name == name]
        urc = seen[0] if seen else await self.channel.wait_for_urc(name, 5.0)
        self.urcs.remove(urc)
        parsed = self.driver.parse_urc(urc)
        return {"urc": type(parsed).__name__, **flatten(parsed, "urc.")}


# -- the supervisor -----------------------------------------------------------------------------


class _Published:
    def __init__(self) -> None:
        self.retained: dict[str, bytes] = {}
        self.events: list[bytes] = []

    def set_retained(self, topic: str, payload: bytes) -> None:
        self.retained[topic] = payload

    def publish(self, topic: str, payload: bytes) -> None:
        self.events.append(payload)


async def run_supervisor(transcript: Transcript, replay: ReplayModem) -> Flat:
    """The whole ModemSupervisor (probe → identify SIM → poll) against the transcript; the
    modem's published state once every step has been played."""
    cfg = ModemConfig(
        id="m1",
        port=replay.path,
        driver=transcript.one("driver", "auto"),  # type: ignore[arg-type]
        slots=int(transcript.one("slots", "1")),
    )
    board = StatusBoard(_Published(), Topics("simbank", "gw"))
    events: list[str] = []

    class _Events:
        def observe_modem(self, state: object) -> None:
            pass

        def observe_sim(self, state: object) -> None:
            pass

        def observe_event(self, event_type: str, _fields: object) -> None:
            events.append(event_type)

    board.watchers.append(_Events())
    supervisor = ModemSupervisor(cfg, board, poll_interval_s=3600.0)
    replay.begin()  # the supervisor opens the port itself; nothing is written before a command
    task = asyncio.get_running_loop().create_task(supervisor.run(), name="transcript-supervisor")
    try:
        await replay.wait_finished()
        # Let the last answer reach the board (the supervisor then waits for its next poll).
        for _ in range(20):
            await asyncio.sleep(0.005)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    out = flatten(board.modems["m1"])
    for iccid, sim in board.sims.items():
        out.update(flatten(sim, f"sim.{iccid}."))
    out["events"] = ",".join(events)
    return out


# -- the test -----------------------------------------------------------------------------------


def _params() -> list[Any]:
    params = []
    for path in discover():
        transcript = parse(path)
        marks = [
            pytest.mark.xfail(strict=True, reason=reason) for reason in transcript.all("xfail")
        ]
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


async def _play(transcript: Transcript) -> tuple[Flat, ReplayModem]:
    replay = ReplayModem(transcript)
    replay.start()
    try:
        async with asyncio.timeout(HANG_GUARD_S):
            ops = transcript.all("op")
            if ops == ["supervisor"]:
                return await run_supervisor(transcript, replay), replay
            channel = await open_port(replay.path, 115200, transcript.name)
            try:
                replay.begin()
                session = Session(transcript, channel)
                result: Flat = {}
                for spec in ops:
                    op, _, arg = spec.partition(" ")
                    result.update(await session.run(op, arg.strip()))
                    if "error" in result:
                        break
                await replay.wait_finished()
            finally:
                channel.close()
                await channel.wait_closed()
            return result, replay
    finally:
        await replay.close()


def _check(transcript: Transcript, result: Flat, replay: ReplayModem) -> list[str]:
    problems = list(replay.failures)
    if not replay.done:
        problems.append(
            f"{replay.step_label()}: the host never reached these steps: {replay.remaining()}"
        )
    expected = transcript.all("expect")
    if "error" in result and not any(e.startswith("error") for e in expected):
        problems.append(f"the operation failed: {result['error']}: {result.get('error.message')}")
    for item in expected:
        negate = " != " in item
        key, sep, want = item.partition(" != " if negate else "=")
        key, want = key.strip(), want.strip().replace("\\n", "\n").replace("\\s", " ")
        if not sep:
            problems.append(f"bad @expect {item!r} (want key = value, or key != value)")
            continue
        got = result.get(key, "<absent>")
        if negate and got == want:
            problems.append(f"@expect {key} != {want!r}, got {got!r}")
        elif not negate and got != want:
            problems.append(f"@expect {key} = {want!r}, got {got!r}")
    return problems


@pytest.mark.parametrize("path", _params())
async def test_transcript(path: Path) -> None:
    transcript = parse(path)
    result, replay = await _play(transcript)
    problems = _check(transcript, result, replay)
    if problems:
        shown = "\n  ".join(problems)
        got = "\n    ".join(f"{k} = {v}" for k, v in sorted(result.items()))
        pytest.fail(
            f"transcript {path.name} ({transcript.one('source')}):\n  {shown}\n"
            f"  host sent: {replay.received}\n  result:\n    {got}",
            pytrace=False,
        )


def test_every_transcript_names_its_source_and_the_corpus_is_big_enough() -> None:
    """At least 40 recorded exchanges, each file naming its source, device and origin."""
    transcripts = [parse(path) for path in discover()]
    exchanges = sum(t.exchanges for t in transcripts)
    assert exchanges >= 40, f"only {exchanges} recorded exchanges"
    for transcript in transcripts:
        recorded = transcript.exchanges + transcript.reports
        assert recorded >= 1, f"{transcript.name}: nothing recorded in it"
        assert transcript.all("expect"), f"{transcript.name}: asserts nothing"


def corpus_counts() -> tuple[Counter[str], Counter[str], int]:
    """(exchanges by vendor, exchanges by origin, total) — printed in the README."""
    by_vendor: Counter[str] = Counter()
    by_origin: Counter[str] = Counter()
    for path in discover(TRANSCRIPTS):
        transcript = parse(path)
        by_vendor[transcript.one("vendor")] += transcript.exchanges
        by_origin[transcript.one("origin")] += transcript.exchanges
    return by_vendor, by_origin, sum(by_vendor.values())
