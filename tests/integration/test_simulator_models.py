"""Simulator models with the byte habits of real modems (issue 11; docs/simulator.md "Models").

Part 1: each habit produces the bytes quoted in ``../shared/research/modem-realism.md``, read
from a real PTY with pyserial. Part 2: a bank of one modem per model under the whole daemon
(real mosquitto, in-process ``Daemon``). Order and outcome only, no wall-clock bounds.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import serial
from bankrig import running

from simbank.bank.usage import UsageKind
from simbank.mosquitto import PrivateMosquitto
from simbank.simulator import SimulatedBank
from simbank.simulator.dialects import DIALECTS
from simbank.simulator.habits import Habits
from simbank.simulator.modem import SimulatedModem
from simbank.simulator.scenario import (
    MIX_MODELS,
    DialectName,
    ModemSpec,
    Scenario,
    SimSpec,
    Timing,
    make_iccid,
    realistic_mix,
)
from simbank.simulator.sim import swapped_bcd

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

GUARD_S = 10.0  # hang guard only


class Raw:
    """Raw bytes from a real PTY through pyserial (read in a worker thread)."""

    def __init__(self, path: Path) -> None:
        self.port = serial.Serial(str(path), timeout=0.02)
        self.data = b""

    def close(self) -> None:
        self.port.close()

    async def send(self, text: str) -> None:
        await asyncio.to_thread(self.port.write, text.encode("latin-1"))

    async def _read(self) -> None:
        self.data += await asyncio.to_thread(self.port.read, 4096)

    async def until(self, needle: bytes) -> bytes:
        """Everything up to and including ``needle`` (the rest stays buffered)."""
        async with asyncio.timeout(GUARD_S):
            while needle not in self.data:
                await self._read()
        end = self.data.index(needle) + len(needle)
        got, self.data = self.data[:end], self.data[end:]
        return got

    async def drain(self, reads: int = 5) -> bytes:
        for _ in range(reads):
            await self._read()
        got, self.data = self.data, b""
        return got

    async def cmd(self, text: str, final: bytes = b"OK\r\n") -> bytes:
        """Send ``text`` + CR and return the bytes up to ``final``."""
        await self.send(text + "\r")
        return await self.until(final)


def bank_of(model: str, *, scale: float = 10.0, sims: int | None = None, **timing: Any) -> Scenario:
    count = DIALECTS[model].max_slots if sims is None else sims
    slots = [SimSpec(iccid=make_iccid(700 + n), registration_delay_s=0.2) for n in range(count)]
    base = {"boot_s": 1.0, "sim_init_s": 2.0, "ring_s": 1.0, "talk_s": 2.0, "no_answer_s": 2.0}
    return Scenario(
        time_scale=scale,
        timing=Timing.model_validate({**base, **timing}),
        modems=[ModemSpec(id="m1", dialect=model, slots=slots)],  # type: ignore[arg-type]
    )


@asynccontextmanager
async def session(
    scenario: Scenario, tmp_path: Path, echo: bool = False
) -> AsyncIterator[tuple[SimulatedModem, Raw]]:
    async with SimulatedBank(scenario, directory=tmp_path / "ports") as bank:
        modem = bank.modems["m1"]
        await asyncio.wait_for(modem.wait_registered(), GUARD_S)
        raw = Raw(modem.path)
        try:
            await raw.cmd("ATE0")
            await asyncio.sleep(0.4)  # held boot URCs (gluing models) come out
            await raw.drain()
            if echo:
                await raw.cmd("ATE1")
            yield modem, raw
        finally:
            raw.close()


def record_writes(modem: SimulatedModem) -> list[bytes]:
    """Every write the modem hands to its PTY."""
    writes: list[bytes] = []
    port = modem._port
    original = port.write

    def write(data: bytes) -> None:
        writes.append(bytes(data))
        original(data)

    port.write = write  # type: ignore[method-assign]
    return writes


# -- A1/D1: the answer to an unknown command -------------------------------------------------


async def test_an_old_huawei_stick_answers_command_not_support(tmp_path: Path) -> None:
    async with session(bank_of("huawei-e173"), tmp_path) as (_modem, raw):
        assert await raw.cmd("AT+FOO", b"SUPPORT\r\n") == b"\r\nCOMMAND NOT SUPPORT\r\n"
        # Its optional and slot commands are missing the same way (A7, A1).
        assert await raw.cmd("AT+CESQ", b"SUPPORT\r\n") == b"\r\nCOMMAND NOT SUPPORT\r\n"
        assert await raw.cmd("AT^SCICHG?", b"SUPPORT\r\n") == b"\r\nCOMMAND NOT SUPPORT\r\n"
        # No ^ICCID on old sticks (C2): the ICCID comes from EF_ICCID.
        assert await raw.cmd("AT^ICCID?", b"SUPPORT\r\n") == b"\r\nCOMMAND NOT SUPPORT\r\n"
        crsm = await raw.cmd("AT+CRSM=176,12258,0,0,10")
        assert f'+CRSM: 144,0,"{swapped_bcd(make_iccid(700))}"'.encode() in crsm
        # A known command with bad arguments is still a plain ERROR.
        assert await raw.cmd("ATE7", b"ERROR\r\n") == b"\r\nERROR\r\n"
        assert raw.data == b""


async def test_newer_models_answer_error(tmp_path: Path) -> None:
    async with session(bank_of("quectel-eg25g"), tmp_path) as (_modem, raw):
        await raw.send("AT+FOO\r")
        assert (await raw.until(b"ERROR\r\n")).endswith(b"\r\nERROR\r\n")


# -- B7: \r\r\n on URCs ------------------------------------------------------------------------


async def test_simcom_urcs_end_in_cr_cr_lf_and_answers_do_not(tmp_path: Path) -> None:
    async with session(bank_of("simcom-sim7600"), tmp_path) as (modem, raw):
        modem.urc_storm(1)
        assert await raw.until(b"\r\r\n+CIEV: 2,3\r\r\n") == b"\r\r\n+CIEV: 2,3\r\r\n"
        assert await raw.cmd("AT+CSQ") == b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"


# -- B14: answers in 1-9 byte pieces -----------------------------------------------------------


async def _chunk_sizes(tmp_path: Path, seed: int) -> tuple[list[int], bytes]:
    scenario = bank_of("simcom-sim7600").model_copy(update={"seed": seed})
    async with session(scenario, tmp_path) as (modem, raw):
        writes = record_writes(modem)
        answer = await raw.cmd("ATI")
        return [len(w) for w in writes], answer


async def test_chunking_writes_answers_in_one_to_nine_byte_pieces(tmp_path: Path) -> None:
    sizes, answer = await _chunk_sizes(tmp_path / "a", seed=7)
    model = DIALECTS["simcom-sim7600"]
    expected = f"\r\n{model.manufacturer}\r\n\r\n{model.model}\r\n\r\nRevision: {model.revision}"
    assert answer == (expected + "\r\n\r\nOK\r\n").encode()
    assert sum(sizes) == len(answer)
    assert len(sizes) > 1
    assert all(1 <= size <= 9 for size in sizes), sizes
    # Reproducible from the scenario's seed; another seed cuts differently.
    assert (await _chunk_sizes(tmp_path / "b", seed=7))[0] == sizes
    assert (await _chunk_sizes(tmp_path / "c", seed=8))[0] != sizes


# -- B8/B13: URCs glued after the final result or into the echo ---------------------------------


async def test_a_held_urc_is_glued_after_the_next_ok_in_the_same_write(tmp_path: Path) -> None:
    async with session(bank_of("quectel-eg25g"), tmp_path) as (modem, raw):
        writes = record_writes(modem)
        modem.urc_storm(1)
        await raw.send("AT\r")
        urc = b'\r\n+QIND: "csq",20,99\r\n'
        assert await raw.until(urc) == b"\r\nOK\r\n" + urc
        assert b"\r\nOK\r\n" + urc in writes


async def test_a_held_urc_lands_inside_the_echo(tmp_path: Path) -> None:
    async with session(bank_of("quectel-eg25g"), tmp_path, echo=True) as (modem, raw):
        modem.urc_storm(1)
        got = await raw.cmd("AT+CSQ")
        assert got == b'AT\r\n+QIND: "csq",20,99\r\n+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n'


async def test_a_held_urc_comes_out_alone_when_nothing_follows(tmp_path: Path) -> None:
    async with session(bank_of("quectel-eg25g"), tmp_path) as (modem, raw):
        modem.urc_storm(1)
        assert await raw.until(b"99\r\n") == b'\r\n+QIND: "csq",20,99\r\n'


# -- B9: echo back on after a reset ------------------------------------------------------------


async def test_echo_is_back_on_after_atz_and_after_a_reboot(tmp_path: Path) -> None:
    async with session(bank_of("quectel-eg25g"), tmp_path) as (_modem, raw):
        assert await raw.cmd("AT") == b"\r\nOK\r\n"
        await raw.cmd("ATZ")
        assert await raw.cmd("AT") == b"AT\r\r\nOK\r\n"
        await raw.cmd("ATE0")
        await raw.cmd("AT+CFUN=1,1")
        await raw.until(b"+CFUN: 1\r\n")  # the boot banner: RDY, +CFUN: 1 (B9)
        await raw.send("AT\r")
        assert (await raw.until(b"OK\r\n")).endswith(b"AT\r\r\nOK\r\n")


async def test_a_model_that_keeps_its_echo_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = dataclasses.replace(DIALECTS["generic"], habits=Habits(echo_after_reset=False))
    monkeypatch.setitem(DIALECTS, "generic", kept)
    async with session(bank_of("generic"), tmp_path) as (_modem, raw):
        await raw.cmd("ATZ")
        assert await raw.cmd("AT") == b"\r\nOK\r\n"


# -- B10: CME 14 for a while after a switch, while +CPIN? says READY ----------------------------


async def test_sim_files_are_busy_after_a_switch_although_cpin_says_ready(tmp_path: Path) -> None:
    scenario = bank_of("quectel-eg25g", scale=10.0, sim_init_s=1.0)
    async with session(scenario, tmp_path) as (_modem, raw):
        await raw.cmd("AT+CMEE=1")
        assert b"+QCCID: " + make_iccid(700).encode() in await raw.cmd("AT+QCCID")
        await raw.cmd("AT+QDSIM=1")
        # Busy while the SIM initialises, then READY (polled) ...
        async with asyncio.timeout(GUARD_S):
            while b"+CPIN: READY" not in await raw.cmd("AT+CPIN?", b"\r\n\r\n"):
                await raw.drain(1)
        await raw.drain(1)
        # ... yet the SIM files answer SIM busy (the exact bytes of B10) ...
        busy = b"\r\n+CME ERROR: 14\r\n"
        for command in ("AT+QCCID", "AT+CIMI", "AT+CRSM=176,12258,0,0,10", "AT+CNUM"):
            assert (await raw.cmd(command, b"14\r\n")).endswith(busy), command
        assert b"+CPIN: READY" in await raw.cmd("AT+CPIN?")
        # ... until they settle, and then name the new SIM.
        async with asyncio.timeout(GUARD_S):
            while True:
                await raw.send("AT+QCCID\r")
                answer = await raw.until(b"\r\n") + await raw.until(b"\r\n")
                if b"+QCCID: " in answer:
                    break
                await asyncio.sleep(0.05)
        assert make_iccid(701).encode() in answer


async def test_models_without_the_habit_read_the_sim_at_once(tmp_path: Path) -> None:
    async with session(bank_of("quectel", sim_init_s=1.0), tmp_path) as (_modem, raw):
        await raw.cmd("AT+CMEE=1")
        await raw.cmd("AT+QDSIM=1")
        async with asyncio.timeout(GUARD_S):
            while b"+CPIN: READY" not in await raw.cmd("AT+CPIN?", b"\r\n\r\n"):
                await raw.drain(1)
        await raw.drain(1)
        assert make_iccid(701).encode() in await raw.cmd("AT+QCCID")


# -- B1/B2: when ATD is answered ---------------------------------------------------------------

ANSWERS = "+15550100011"  # last two digits 00-89: the far end answers
BUSY = "+15550100091"  # 90-94: busy


async def test_atd_answered_ok_at_once(tmp_path: Path) -> None:
    async with session(bank_of("quectel-eg25g"), tmp_path) as (_modem, raw):
        assert await raw.cmd(f"ATD{ANSWERS};") == b"\r\nOK\r\n"
        clcc = await raw.cmd("AT+CLCC")
        assert b",0,2,0,0," in clcc or b",0,3,0,0," in clcc  # dialling or alerting
        assert (await raw.until(b"NO CARRIER\r\n")).endswith(b"\r\nNO CARRIER\r\n")


async def test_atd_answered_ok_on_connect(tmp_path: Path) -> None:
    async with session(bank_of("generic-wavecom"), tmp_path) as (_modem, raw):
        assert await raw.cmd(f"ATD{ANSWERS};") == b"\r\nOK\r\n"
        assert b",0,0,0,0," in await raw.cmd("AT+CLCC")  # the OK came when it was answered
        assert (await raw.until(b"NO CARRIER\r\n")).endswith(b"\r\nNO CARRIER\r\n")
        # A busy far end ends the dial itself.
        assert await raw.cmd(f"ATD{BUSY};", b"BUSY\r\n") == b"\r\nBUSY\r\n"


async def test_atd_never_answered_ok(tmp_path: Path) -> None:
    async with session(bank_of("generic-zte"), tmp_path) as (_modem, raw):
        await raw.send(f"ATD{ANSWERS};\r")
        assert await raw.until(b"CONNECT\r\n") == b"\r\nCONNECT\r\n"
        assert b",0,0,0,0," in await raw.cmd("AT+CLCC")
        assert await raw.until(b"HANGUP: 1\r\n") == b"\r\nHANGUP: 1\r\n"
        # Rejected: a bare OK, and the call is gone.
        assert await raw.cmd(f"ATD{BUSY};") == b"\r\nOK\r\n"
        assert await raw.cmd("AT+CLCC") == b"\r\nOK\r\n"


# -- E4: the call end reported twice ---------------------------------------------------------


async def test_huawei_reports_the_call_end_twice(tmp_path: Path) -> None:
    async with session(bank_of("huawei-e173"), tmp_path) as (_modem, raw):
        assert await raw.cmd(f"ATD{ANSWERS};") == b"\r\nOK\r\n"
        end = await raw.until(b"NO CARRIER\r\n")
        assert end.endswith(b"\r\n^CEND: 1,2,104,16\r\n\r\nNO CARRIER\r\n"), end


async def test_without_the_habit_cend_comes_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    e173 = DIALECTS["huawei-e173"]
    alone = dataclasses.replace(e173, habits=dataclasses.replace(e173.habits, call_end_twice=False))
    monkeypatch.setitem(DIALECTS, "huawei-e173", alone)
    async with session(bank_of("huawei-e173"), tmp_path) as (_modem, raw):
        assert await raw.cmd(f"ATD{ANSWERS};") == b"\r\nOK\r\n"
        assert (await raw.until(b",104,16\r\n")).endswith(b"\r\n^CEND: 1,2,104,16\r\n")
        assert await raw.cmd("AT") == b"\r\nOK\r\n"
        assert b"NO CARRIER" not in raw.data


# -- E3: +CEER shapes ----------------------------------------------------------------------------

CEER_CASES = [
    # model, before any call, after a busy call
    ("quectel-eg25g", b"+CEER: No cause information available", b"+CEER: User busy"),
    ("simcom-sim7600", b'+CEER: "0 Unknown"', b'+CEER: "17 User busy"'),
    ("huawei-e173", b"+CEER:", b"+CEER:"),
    ("fibocom-l610", None, None),
    ("quectel", b'+CEER: "CC INFO","No cause information"', b'+CEER: "CC INFO","User busy"'),
]


@pytest.mark.parametrize(("model", "before", "after"), CEER_CASES)
async def test_ceer_shapes(
    tmp_path: Path, model: str, before: bytes | None, after: bytes | None
) -> None:
    def expected(line: bytes | None) -> bytes:
        return (b"\r\n" + line + b"\r\n" if line is not None else b"") + b"\r\nOK\r\n"

    async with session(bank_of(model), tmp_path) as (_modem, raw):
        assert await raw.cmd("AT+CEER") == expected(before)
        await raw.send(f"ATD{BUSY};\r")
        await raw.until(b"BUSY")  # \r\r\n-framed on the SIM7600 (B7)
        await raw.drain(2)
        assert await raw.cmd("AT+CEER") == expected(after)


async def test_a_model_without_ceer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fibocom = DIALECTS["fibocom-l610"]
    without = dataclasses.replace(fibocom, habits=Habits(ceer_style="absent"))
    monkeypatch.setitem(DIALECTS, "fibocom-l610", without)
    async with session(bank_of("fibocom-l610"), tmp_path) as (_modem, raw):
        assert await raw.cmd("AT+CEER=?", b"ERROR\r\n") == b"\r\nERROR\r\n"
        assert await raw.cmd("AT+CEER", b"ERROR\r\n") == b"\r\nERROR\r\n"


# -- Part 2: a bank of one modem per model under the daemon -------------------------------------

MIX_TIMING = Timing(boot_s=1.0, sim_init_s=0.5, ring_s=0.2, talk_s=1.0, no_answer_s=5.0, ussd_s=0.2)


def _iccids(rig: Any, modem_id: str) -> list[str]:
    return [c.iccid for c in rig.bank.modems[modem_id].slots if c is not None]


class Cme14Log:
    """How many ``+CME ERROR: 14`` answers each simulated modem gave."""

    def __init__(self) -> None:
        self.count: dict[str, int] = {}


@pytest.fixture
def cme14(monkeypatch: pytest.MonkeyPatch) -> Cme14Log:
    log = Cme14Log()
    reply = SimulatedModem._reply

    def recording(self: SimulatedModem, answer: Any) -> None:
        if answer.final == "+CME ERROR: 14":
            log.count[self.id] = log.count.get(self.id, 0) + 1
        reply(self, answer)

    monkeypatch.setattr(SimulatedModem, "_reply", recording)
    return log


def _mix(models: tuple[DialectName, ...]) -> Scenario:
    return realistic_mix(900, models=models, timing=MIX_TIMING)


async def test_a_bank_of_every_model_comes_up_and_calls_on_each(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str, cme14: Cme14Log
) -> None:
    scenario = _mix(MIX_MODELS)
    async with running(tmp_path, mosquitto, base_topic, scenario) as rig:
        await rig.until(rig.modems_ready, timeout=90)
        await rig.inventory_done(timeout=90)
        await rig.until(rig.modems_ready, timeout=90)
        for mid, modem in rig.bank.modems.items():
            assert modem.sim is not None
            await rig.until(lambda m=mid, s=modem.sim.iccid: rig.modem(m).get("iccid") == s)

        # One call on each model; the far end answers and hangs up after talk_s.
        async def call(n: int, mid: str) -> dict[str, Any]:
            payload = {"number": f"+155501000{n:02d}", "max_duration_s": 20, "modem": mid}
            return await rig.request("call", payload, timeout=60)

        answers = await asyncio.gather(
            *(call(n, mid) for n, mid in enumerate(rig.bank.modems, start=10))
        )
        outcomes = {
            mid: (a["status"], (a.get("data") or {}).get("outcome"), a.get("code"))
            for mid, a in zip(rig.bank.modems, answers, strict=True)
        }
        assert all(o[:2] == ("ok", "completed") for o in outcomes.values()), outcomes

        # The model that reports a call end twice (^CEND, then NO CARRIER) booked one call.
        twice = [
            mid for mid, m in rig.bank.modems.items() if m.dialect.cend and m.habits.call_end_twice
        ]
        assert twice
        for mid in twice:
            iccid = rig.bank.modems[mid].sim.iccid  # type: ignore[union-attr]
            calls = [
                u for u in rig.daemon.ledger.usage_records(iccid, 0) if u.kind is UsageKind.CALL
            ]
            assert len(calls) == 1, calls
            assert calls[0].outcome == "completed"


async def test_the_probed_capabilities_are_each_models(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    """The daemon publishes what each model has (docs/simulator.md "Models", docs/modems.md)."""
    async with running(tmp_path, mosquitto, base_topic, _mix(MIX_MODELS)) as rig:
        await rig.until(rig.modems_ready, timeout=90)
        wrong: dict[str, dict[str, tuple[bool, bool]]] = {}
        for mid, modem in rig.bank.modems.items():
            caps = rig.modem(mid)["capabilities"]
            model = modem.dialect
            expected = {
                "slot_switch": model.max_slots > 1,
                "cesq": model.habits.has_cesq,
                "ceer": model.habits.has_ceer,
                "reject_causes": model.reg_n3,
            }
            bad = {k: (caps.get(k), v) for k, v in expected.items() if caps.get(k) is not v}
            if bad:
                wrong[f"{mid} {model.name}"] = bad
        assert not wrong, wrong


async def test_a_switch_on_a_model_busy_after_switching_still_names_the_new_sim(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str, cme14: Cme14Log
) -> None:
    scenario = _mix(("quectel-eg25g",))
    assert scenario.modems[0].dialect == "quectel-eg25g"
    async with running(tmp_path, mosquitto, base_topic, scenario) as rig:
        await rig.until(rig.modems_ready, timeout=90)
        await rig.inventory_done(timeout=90)
        first, second = _iccids(rig, "m1")
        await rig.until(lambda: rig.modem("m1").get("iccid") == first, timeout=60)
        before = cme14.count.get("m1", 0)
        answer = await rig.request("sim/select", {"modem": "m1", "slot": 2}, timeout=60)
        assert answer["status"] == "ok", answer
        await rig.until(
            lambda: (
                rig.modem("m1").get("iccid") == second and rig.modem("m1").get("state") == "ready"
            ),
            timeout=60,
        )
        assert rig.bank.modems["m1"].active_slot == 2
        # The daemon did meet the SIM-busy window after this switch.
        assert cme14.count.get("m1", 0) > before
        assert not rig.events("sim_suspected", iccid=second)
        assert not rig.events("sim_blocked", iccid=second)
