"""One simulated modem: a PTY, a dialect, SIM slots, network state and fault injection.

Past 400 lines because it is one object's life: boot, the command loop, the SIM's
(re)initialisation, the registration timeline and the faults all act on the same tasks, output
buffer and state, and the command handlers (``handlers``, ``calls``, ``messaging``,
``sim_gate``) already live in their own modules; the cause texts come from the one 24.008 table
(:mod:`simbank.drivers.parse.causes`). A second AT port (``ports=2``) is only a wire
(:mod:`simbank.simulator.aux_port`): its commands run here, against the same state, with
``serving_port`` telling the handlers which port asked; unsolicited lines go to ``urc_port``.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import structlog

from simbank.drivers.parse.causes import REJECT_CAUSES
from simbank.simulator.at_server import (
    AtSyntaxError,
    CommandLine,
    Event,
    LineFramer,
    Overflow,
    SmsCancelled,
    SmsText,
    parse_line,
)
from simbank.simulator.aux_port import AuxPort
from simbank.simulator.calls import finish_call
from simbank.simulator.carrier import BlockAction, Carrier
from simbank.simulator.clock import SimClock
from simbank.simulator.dialects import Dialect
from simbank.simulator.handlers import CommandSet
from simbank.simulator.incoming import answer, incoming_call
from simbank.simulator.pty import PtyPort
from simbank.simulator.registration import (
    DENIED,
    HOME,
    NOT_REGISTERED,
    REG_COMMANDS,
    ROAMING,
    SEARCHING,
    Cell,
    RegState,
    unsolicited,
)
from simbank.simulator.results import AtCommandError, Reply
from simbank.simulator.scenario import Timing
from simbank.simulator.sim import Behaviour, LockState, SimCard
from simbank.simulator.sms_settings import SmsSettings
from simbank.simulator.state import Call, Settings

log = structlog.get_logger("simbank.simulator")

MAX_QUEUED_EVENTS = 32
#: Real seconds a model that glues URCs (``Habits.glue_urcs``) holds them while idle, waiting
#: for the next final result or echo to glue them to (B8/B13).
GLUE_HOLD_S = 0.3
#: Real seconds between two pieces of a chunked answer (B14), so that a reader sees them apart.
CHUNK_GAP_S = 0.001


class SimulatedModem:
    """A modem on a PTY. Fault methods are synchronous and take effect at once."""

    def __init__(
        self,
        modem_id: str,
        dialect: Dialect,
        slots: list[SimCard | None],
        *,
        directory: Path,
        clock: SimClock,
        carrier: Carrier,
        timing: Timing,
        imei: str,
        signal: int = 20,
        active_slot: int = 1,
        seed: int = 0,
        ports: int = 1,
        urc_port: int = 1,
    ) -> None:
        if ports not in (1, 2) or urc_port not in range(1, ports + 1):
            raise ValueError(f"{modem_id}: ports {ports}, urc_port {urc_port} (1-2, <= ports)")
        self.id = modem_id
        self.dialect = dialect
        self.habits = dialect.habits
        # Chunk sizes: reproducible per scenario seed, modem and answer (a str seed is hashed
        # stably): the same bytes are cut the same way whatever was written before them.
        self._chunk_seed = f"{seed}:{modem_id}"
        self.slots: list[SimCard | None] = slots + [None] * (dialect.max_slots - len(slots))
        self.active_slot = active_slot
        self.path = directory / modem_id
        self.clock = clock
        self.carrier = carrier
        self.timing = timing
        self.imei = imei
        self.signal = signal
        self.cell = Cell()
        self.settings = Settings()
        self.sms_settings = SmsSettings()
        if not self.habits.has_pdu_mode:
            self.settings.cmgf = 1
        self.cfun = 1
        self.booting = False
        self.sim_busy = False
        self.reg = RegState()
        self.call: Call | None = None
        self.last_cause = "No cause information"
        self.last_cause_code: int | None = None
        # Until this simulated instant SIM file commands answer CME 14 (Habits, B10).
        self.sim_settle_until = 0.0
        self._held = bytearray()  # URCs a gluing model holds (B8/B13)
        self._hold_timer: asyncio.TimerHandle | None = None
        self.message_ref = 0
        self.hung = False
        self.slow_s = 0.0
        self.split = False
        self.log = log.bind(modem=modem_id)
        self._port = PtyPort(self.path, self._on_data)
        self._framer = LineFramer()
        self._events: asyncio.Queue[Event] = asyncio.Queue(MAX_QUEUED_EVENTS)
        self._tasks: set[asyncio.Task[None]] = set()
        self._named: dict[str, asyncio.Task[None]] = {}
        self._split_buffer = bytearray()
        self._commands = CommandSet(self)
        if not self.habits.has_pdu_mode:
            self._commands.test_answers["+CMGF"] = "+CMGF: (1)"
        self.awaiting_sms: str | None = None
        self.sent_sms: list[tuple[str, str]] = []
        #: Commands this model answers ERROR as if it did not know them (``"+CLIP"``).
        self.refused_commands: set[str] = set()
        #: The hang-up commands (``ATH``, ``AT+CHUP``) that ended a call, in order.
        self.hangups: list[str] = []
        self._registered = asyncio.Event()
        #: The AT port (1 or 2) whose command runs now: handlers are synchronous, so this is
        #: the port of the command being executed.
        self.serving_port = 1
        #: The AT port unsolicited lines go to (RING, +CREG, +CMTI, +CLCC…).
        self.urc_port = urc_port
        #: The second AT port (``ports = 2``) sharing this modem's radio, or None.
        self.aux: AuxPort | None = (
            AuxPort(self, directory / f"{modem_id}.at2") if ports == 2 else None
        )

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def plugged(self) -> bool:
        """True while the PTY exists."""
        return self._port.is_open

    @property
    def aux_link(self) -> Path | None:
        """The second AT port's stable symlink (``<directory>/<id>.at2``), None if one port."""
        return self.aux.link if self.aux is not None else None

    @property
    def serving_aux(self) -> AuxPort | None:
        """The second port while one of its commands runs (its own echo and CMEE), else None."""
        return self.aux if self.serving_port == 2 else None

    @property
    def cmee(self) -> int:
        """The ``AT+CMEE`` setting of the port whose command runs now (how its errors read)."""
        aux = self.serving_aux
        return self.settings.cmee if aux is None else aux.cmee

    @property
    def sim(self) -> SimCard | None:
        """The SIM in the active slot (None for an empty slot)."""
        card = self.slots[self.active_slot - 1]
        return card if card is not None and card.present else None

    def start(self) -> None:
        """Plug in and power on (the first power-on is instant)."""
        self._port.open()
        self._spawn_named("processor", self._process())
        if self.aux is not None:
            self.aux.open()
            self._spawn_named("processor2", self.aux.process())
        self._power_on(0.0)
        # The first power-on happened before anyone looked: the SIM has long settled.
        self.sim_settle_until = 0.0

    async def close(self) -> None:
        """Unplug and wait for every task to end."""
        self.unplug()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def reboot(self) -> None:
        """``AT+CFUN=1,1``: the port stays open, settings reset, the boot banner follows."""
        self._power_on(self.timing.boot_s)

    def _power_on(self, delay_s: float) -> None:
        self.cancel("registration")
        self.cancel("call")
        self.cancel("sim_init")
        self.call = None
        self.reg = RegState()
        self._registered.clear()
        if delay_s <= 0:
            self._boot_now()
            return
        self.booting = True
        self.run_named("boot", self._boot_later(delay_s))

    async def _boot_later(self, delay_s: float) -> None:
        await self.clock.sleep(delay_s)
        self._boot_now()

    def reset_settings(self) -> None:
        """ATZ / AT&F / boot: volatile settings back to defaults; echo back on unless the model
        keeps it (``Habits.echo_after_reset``, B9)."""
        echo = self.settings.echo
        self.settings = Settings()
        self.sms_settings = SmsSettings()
        if not self.habits.has_pdu_mode:
            self.settings.cmgf = 1  # a text-only model has no other mode
        if not self.habits.echo_after_reset:
            self.settings.echo = echo

    def _boot_now(self) -> None:
        self.reset_settings()
        self._framer = LineFramer()
        if self.aux is not None:
            self.aux.reset_settings()
            self.aux.reset_input()
        self.awaiting_sms = None
        self.cfun = 1
        self.booting = False
        for line in self.dialect.boot_lines:
            self.urc(line)
        if self.dialect.rssi_urc_period_s is not None:
            self.run_named("rssi", self._rssi_loop())
        self._begin_sim_init(0.0)

    async def _rssi_loop(self) -> None:
        """Huawei noise: ``^RSSI`` every period, ``^MODE`` every other period."""
        tick = 0
        while True:
            await self.clock.sleep(self.timing.rssi_period_s)
            tick += 1
            self.urc(f"^RSSI: {self.signal if self.cfun == 1 else 99}")
            if tick % 2 == 0:
                self.urc("^MODE: 17,17" if self.reg.registered else "^MODE: 0,0")

    # -- tasks -----------------------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run ``coro`` as a tracked task (cancelled on close)."""
        task = asyncio.get_running_loop().create_task(coro, name=f"sim-{self.id}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _spawn_named(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        self.cancel(name)
        self._named[name] = self.spawn(coro, name)

    def run_named(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        """Replace the task called ``name`` (registration, call, ...)."""
        self._spawn_named(name, coro)

    def cancel(self, name: str) -> None:
        """Cancel the task called ``name`` if it runs (not the current task)."""
        task = self._named.pop(name, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("simulator_task_failed", task=task.get_name(), exc=task.exception())

    # -- output ----------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Send raw bytes to the client (honours split mode and the chunking habit)."""
        if not self.plugged:
            return
        if self.split or self.habits.chunking or self._split_buffer:
            start = not self._split_buffer
            self._split_buffer += data
            if start:
                self._spawn_named("splitter", self._drip())
            return
        self._port.write(data)

    async def _drip(self) -> None:
        """Write the buffer one byte (split mode) or 1-9 bytes (chunking, B14) at a time. The
        cuts follow from the seed and the bytes that start the run, not from what came before
        (a boot URC that did or did not glue on must not shift every later answer's cuts)."""
        rng = random.Random(f"{self._chunk_seed}:{bytes(self._split_buffer).hex()}")
        while self._split_buffer:
            size = 1 if self.split else rng.randint(1, 9)
            piece = bytes(self._split_buffer[:size])
            del self._split_buffer[:size]
            self._port.write(piece)
            await asyncio.sleep(CHUNK_GAP_S)

    def urc(self, line: str) -> None:
        """Emit an unsolicited line on the URC port (dropped while hung, booting or unplugged):
        framed ``\r\r\n`` by a ``crcrlf`` model (B7), held for the next final result or echo by
        a gluing one (B8/B13) on port 1."""
        if self.urc_port == 2 and self.aux is not None:
            self.aux.line(line)
        else:
            self._primary_urc(line)

    def _primary_urc(self, line: str) -> None:
        if self.hung or self.booting or not self.plugged:
            return
        end = "\r\r\n" if self.habits.crcrlf else "\r\n"
        data = f"{end}{line}{end}".encode("latin-1")
        if not self.habits.glue_urcs:
            self.write(data)
            return
        self._held += data
        if self._hold_timer is None:
            loop = asyncio.get_running_loop()
            self._hold_timer = loop.call_later(GLUE_HOLD_S, self._flush_held)

    def _take_held(self) -> bytes:
        """The held URCs (and no timer left to flush them)."""
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        held = bytes(self._held)
        self._held.clear()
        return held

    def _flush_held(self) -> None:
        self._hold_timer = None
        held = self._take_held()
        if held and not self.hung:
            self.write(held)

    def final(self, result: str, port: int | None = 1) -> None:
        """A final result that completes a command later (a dial's ``OK``/``CONNECT``) on AT
        port ``port`` (None: the URC port), with held URCs glued after it on port 1."""
        if self.hung:
            return
        if (port or self.urc_port) == 2 and self.aux is not None:
            self.aux.write(f"\r\n{result}\r\n".encode("latin-1"))
            return
        self.write(f"\r\n{result}\r\n".encode("latin-1") + self._take_held())

    def late_answer(self, line: str, result: str, port: int) -> None:
        """An information line and the final result of a command answered late on ``port``
        (B15: the ``+CUSD`` line and the ``OK`` of ``AT+CUSD=1``)."""
        if self.hung:
            return
        if port == 2 and self.aux is not None:
            self.aux.write(f"\r\n{line}\r\n".encode("latin-1"))
        else:
            self.write(f"\r\n{line}\r\n".encode("latin-1"))
        self.final(result, port)

    def call_line(self, line: str, port: int | None) -> None:
        """A call's end (``NO CARRIER``, ``BUSY``…) on the AT port that dialled or answered it
        (None: the URC port), framed like a URC."""
        target = port or self.urc_port
        if target == 2 and self.aux is not None:
            self.aux.line(line)
        else:
            self._primary_urc(line)

    def _reply(self, reply: Reply) -> None:
        data = reply.framed().encode("latin-1")
        if reply.final is not None:
            data += self._take_held()  # B8: \r\nOK\r\n\r\n+CMTI: "ME",1\r\n in one write
        self.write(data)

    # -- input -----------------------------------------------------------------------------
    def _on_data(self, data: bytes) -> None:
        if self.hung or self.booting:
            return
        if self.settings.echo:
            if self._held:  # B13: the held URC lands inside the echo (AT\r\n+CREG: 1\r\n+CSQ)
                data_out = data[:2] + self._take_held() + data[2:]
                self.write(data_out)
            else:
                self.write(data)
        for event in self._framer.feed(data):
            try:
                self._events.put_nowait(event)
            except asyncio.QueueFull:
                self.log.warning("simulator_input_dropped")

    async def _process(self) -> None:
        while True:
            event = await self._events.get()
            if self.hung or self.booting:
                continue
            if self.slow_s > 0:
                await asyncio.sleep(self.slow_s)
            reply = self.handle_event(event, 1)
            if reply is not None and not self.hung:
                self._reply(reply)
                if reply.prompt:
                    self._framer.enter_text_mode()

    def handle_event(self, event: Event, port: int) -> Reply | None:
        """Run one event from AT port ``port`` (1 or 2) against the modem's one state."""
        self.serving_port = port
        try:
            return self._handle(event)
        except Exception:  # never let a command kill the modem
            self.log.exception("simulator_command_crashed", port=port)
            return Reply(final="ERROR")
        finally:
            self.serving_port = 1

    def _handle(self, event: Event) -> Reply | None:
        if isinstance(event, Overflow):
            return Reply(final="ERROR")
        if isinstance(event, SmsText | SmsCancelled):
            number, self.awaiting_sms = self.awaiting_sms, None
            if number is None:
                return None
            if isinstance(event, SmsCancelled):
                return Reply()
            return self._commands.messaging.sms_submitted(number, event.text)
        assert isinstance(event, CommandLine)
        try:
            commands = parse_line(event.text)
        except AtSyntaxError:
            return Reply(final="ERROR")
        lines: list[str] = []
        for command in commands:
            try:
                reply = self._commands.execute(command)
            except AtCommandError as failure:
                return Reply(lines, failure.render(self.cmee))
            lines += reply.lines
            if reply.final != "OK" or reply.prompt:
                return Reply(lines, reply.final, reply.prompt)
        return Reply(lines)

    # -- SIM and registration --------------------------------------------------------------
    def _begin_sim_init(self, delay_s: float) -> None:
        """The SIM (re)initialises: busy for ``delay_s``, then ready URCs and registration."""
        self.cancel("sim_init")
        if delay_s <= 0:
            self._sim_init_done()
            return
        self.sim_busy = True
        self.set_reg(RegState())
        self.run_named("sim_init", self._sim_init_later(delay_s))

    async def _sim_init_later(self, delay_s: float) -> None:
        await self.clock.sleep(delay_s)
        self._sim_init_done()

    def _sim_init_done(self) -> None:
        self.sim_busy = False
        # B10: READY, yet the SIM files stay busy a while (CME 14) on some models.
        self.sim_settle_until = self.clock.now() + self.habits.sim_busy_after_switch_s
        sim = self.sim
        if sim is not None:
            if sim.lock is LockState.READY:
                for line in self.dialect.sim_ready_lines:
                    self.urc(line)
            else:
                self.urc(f"+CPIN: {sim.lock.value}")
        self.refresh_registration()

    def select_slot(self, slot: int) -> None:
        """Switch SIM slot (the SIM re-initialises, registration restarts)."""
        if slot == self.active_slot:
            return
        self.active_slot = slot
        self.end_call("NO CARRIER", 31)
        self._begin_sim_init(self.timing.sim_init_s)

    def sim_unlocked(self) -> None:
        """After a correct PIN/PUK (or a SIM change): ready URCs, then registration."""
        self._begin_sim_init(0.5)

    def sim_changed(self) -> None:
        """The active SIM's behaviour changed: re-initialise it if locked/removed, else the
        network re-evaluates the registration."""
        sim = self.sim
        if sim is None or sim.lock is not LockState.READY:
            self._begin_sim_init(0.5)
        else:
            self.refresh_registration()

    def target_registration(self) -> RegState:
        """Where the network will put this modem (ignoring the delay)."""
        sim = self.sim
        if (
            self.booting
            or self.cfun != 1
            or self.settings.cops_mode == 2
            or sim is None
            or self.sim_busy
            or sim.lock is not LockState.READY
        ):
            return RegState(NOT_REGISTERED)
        block = self.carrier.block_of(sim.iccid)
        if block is not None and block.action is BlockAction.DENY:
            return RegState(DENIED, block.cause)
        if sim.behaviour is Behaviour.DENIED:
            return RegState(DENIED, sim.reject_cause)
        if sim.behaviour is Behaviour.SEARCHING:
            return RegState(SEARCHING)
        if sim.behaviour is Behaviour.ROAMING:
            return RegState(ROAMING)
        return RegState(HOME)

    def refresh_registration(self) -> None:
        """Move toward the target registration (immediately, or after the SIM's delay)."""
        self.cancel("registration")
        target = self.target_registration()
        if target == self.reg:
            return
        if target.stat in (NOT_REGISTERED, SEARCHING) or (
            self.reg.registered and target.stat == DENIED
        ):
            self.set_reg(target)
            return
        if self.reg.registered and target.registered:
            self.set_reg(target)
            return
        self.set_reg(RegState(SEARCHING))
        sim = self.sim
        delay = sim.registration_delay_s if sim is not None else 0.0
        self.run_named("registration", self._register_later(delay, target))

    def refresh_registration_soon(self, delay_s: float) -> None:
        """The network acts after ``delay_s`` simulated seconds (e.g. a detach after a block)."""
        self.run_named("registration", self._refresh_later(delay_s))

    async def _refresh_later(self, delay_s: float) -> None:
        await self.clock.sleep(delay_s)
        self.refresh_registration()

    async def _register_later(self, delay_s: float, target: RegState) -> None:
        await self.clock.sleep(delay_s)
        if self.target_registration() == target:
            self.set_reg(target)

    def set_reg(self, state: RegState) -> None:
        """Change the registration state and report it per each command's n."""
        if state == self.reg:
            return
        self.reg = state
        if state.registered:
            self._registered.set()
        else:
            self._registered.clear()
        if state.stat == DENIED and state.reject_cause is not None:
            self.last_cause = REJECT_CAUSES.get(state.reject_cause, "Unspecified")
            self.last_cause_code = state.reject_cause
        if not state.registered:
            self.end_call("NO CARRIER", 31)
        for command in REG_COMMANDS:
            if command == "+C5GREG" and not self.dialect.has_5g:
                continue
            n = self.settings.reg_n[command]
            line = unsolicited(command, n, state, self.dialect, self.cell)
            if line is not None:
                self.urc(line)
        if self.dialect.family == "huawei":
            self.urc(f"^SRVST: {2 if state.registered else 0}")
            self.urc("^MODE: 17,17" if state.registered else "^MODE: 0,0")

    def end_call(self, result: str, cause: int) -> None:
        """End the current call (if any) with a final URC such as ``NO CARRIER``."""
        if self.call is not None:
            finish_call(self, result, cause)

    # -- fault injection -------------------------------------------------------------------
    def hang(self, on: bool = True) -> None:
        """Firmware hang: read everything, answer nothing."""
        self.hung = on

    def unplug(self) -> None:
        """USB gone: the client gets EIO; the stable path disappears."""
        for name in list(self._named):
            if name not in ("processor", "processor2"):
                self.cancel(name)
        self.call = None
        self._split_buffer.clear()
        self._take_held()
        self._port.close()
        if self.aux is not None:
            self.aux.close()  # the USB device is gone with all its interfaces

    def replug(self) -> None:
        """USB back: a new PTY behind the same stable path; the modem boots."""
        if self.plugged:
            return
        while not self._events.empty():
            self._events.get_nowait()
        self._port.open()
        if "processor" not in self._named:
            self._spawn_named("processor", self._process())
        if self.aux is not None:
            self.aux.reset_input()
            self.aux.open()
            if "processor2" not in self._named:
                self._spawn_named("processor2", self.aux.process())
        self._power_on(self.timing.boot_s)

    def inject_garbage(self, data: bytes | int) -> bytes:
        """Write garbage to the client (given bytes, or ``n`` random bytes)."""
        payload = os.urandom(data) if isinstance(data, int) else data
        self.write(payload)
        return payload

    def slow(self, delay_s: float) -> None:
        """Delay every answer by ``delay_s`` real seconds (0 = normal)."""
        self.slow_s = delay_s

    def split_bytes(self, on: bool = True) -> None:
        """Write every reply one byte at a time."""
        self.split = on

    def urc_storm(self, count: int) -> None:
        """Emit ``count`` harmless vendor URCs at once."""
        noise = self._noise_lines()
        for index in range(count):
            self.urc(noise[index % len(noise)])

    def _noise_lines(self) -> list[str]:
        if self.dialect.family == "huawei":
            return [f"^RSSI: {self.signal}", '^HCSQ: "LTE",50,42,120,22', "^MODE: 17,17"]
        if self.dialect.qind_csq:
            return [f'+QIND: "csq",{self.signal},99']
        return [f"+CIEV: 2,{min(5, self.signal // 6)}"]

    def set_signal(self, rssi: int) -> None:
        """Change the CSQ rssi (0..31, 99 unknown); vendor signal URCs follow."""
        self.signal = rssi
        if self.dialect.qind_csq:
            self.urc(f'+QIND: "csq",{rssi},99')
        if self.dialect.family == "huawei":
            self.urc(f"^RSSI: {rssi}")

    # -- operator side ---------------------------------------------------------------------
    def incoming_call(self, number: str | None, rings: int = 3) -> None:
        """Someone calls the SIM in the active slot (``number`` None: withheld) and gives up
        after ``rings`` rings unless answered or hung up (:mod:`simbank.simulator.incoming`)."""
        incoming_call(self, number, rings)

    def answer(self) -> bool:
        """Answer the ringing call as a PBX on the modem's other port would (True if one rang)."""
        return answer(self)

    def sms_arrived(
        self, index: int, sender: str, text: str, scts: str, *, pdu: str = "", tpdu_length: int = 0
    ) -> None:
        """New message (one part) in the active SIM's store: ``+CMTI: "SM",<index>`` for mt=1;
        for mt=2 ``+CMT`` with the text (text mode) or ``+CMT: ,<length>`` and the PDU."""
        mt = self.settings.cnmi_mt
        if mt == 1:
            self.urc(f'+CMTI: "SM",{index}')
        elif mt == 2 and self.settings.cmgf == 0 and pdu:
            self.urc(f"+CMT: ,{tpdu_length}\r\n{pdu}")
        elif mt == 2:
            self.urc(f'+CMT: "{sender}",,"{scts}"\r\n{text}')

    async def wait_registered(self) -> None:
        """Wait until the network registration is home/roaming (wrap in a timeout)."""
        await self._registered.wait()

    def __repr__(self) -> str:
        return f"SimulatedModem({self.id!r}, {self.dialect.name}, slot={self.active_slot})"
