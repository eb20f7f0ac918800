"""The AT command set a simulated modem answers (common 27.007/27.005 + vendor dialects)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from simbank.simulator.at_server import DIAL_RE, Command, Kind
from simbank.simulator.calls import BARRING, UNSPECIFIED, clcc_line, hang_up, start_call
from simbank.simulator.carrier import BlockAction
from simbank.simulator.dialects import SlotStyle
from simbank.simulator.incoming import IncomingCommands
from simbank.simulator.messaging import MessagingCommands
from simbank.simulator.registration import REG_COMMANDS, solicited
from simbank.simulator.results import Reply, cme, plain
from simbank.simulator.sim import Behaviour, LockState, swapped_bcd
from simbank.simulator.sim_gate import sim_present, sim_ready, sim_settled

if TYPE_CHECKING:
    from simbank.simulator.modem import SimulatedModem

Handler = Callable[[Command], Reply]
OPERATOR_NAMES = ("TEST NETWORK", "TEST", "00101")


def _ok(*lines: str) -> Reply:
    return Reply(list(lines))


class CommandSet:
    """Maps each command to its behaviour on one modem."""

    def __init__(self, modem: SimulatedModem) -> None:
        self.m = modem
        table: dict[str, Handler] = {
            "": lambda _c: _ok(),
            "E": self._echo,
            "V": self._verbose,
            "Q": self._quiet,
            "Z": self._reset,
            "&F": self._reset,
            "&W": lambda _c: _ok(),
            "I": self._info,
            "D": self._dial,
            "H": self._hangup,
            "+CHUP": self._hangup,
            "+CMEE": self._cmee,
            "+CGMI": lambda _c: _ok(self.m.dialect.manufacturer),
            "+GMI": lambda _c: _ok(self.m.dialect.manufacturer),
            "+CGMM": lambda _c: _ok(self.m.dialect.model),
            "+GMM": lambda _c: _ok(self.m.dialect.model),
            "+CGMR": lambda _c: _ok(self.m.dialect.revision),
            "+GMR": lambda _c: _ok(self.m.dialect.revision),
            "+CGSN": lambda _c: _ok(self.m.imei),
            "+GSN": lambda _c: _ok(self.m.imei),
            "+CPIN": self._cpin,
            "+CIMI": self._cimi,
            "+CRSM": self._crsm,
            "+CSQ": self._csq,
            "+COPS": self._cops,
            "+CFUN": self._cfun,
            "+CLCC": self._clcc,
            "+CNUM": self._cnum,
        }
        habits = modem.dialect.habits
        if habits.has_cesq:
            table["+CESQ"] = self._cesq
        if habits.has_ceer:
            table["+CEER"] = self._ceer
        for command in REG_COMMANDS:
            if command != "+C5GREG" or modem.dialect.has_5g:
                table[command] = self._make_reg(command)
        for name, kind, prefix in modem.dialect.iccid_commands:
            table[name] = self._make_iccid(kind, prefix)
        slot_handlers: dict[SlotStyle, dict[str, Handler]] = {
            SlotStyle.NONE: {},
            SlotStyle.QUECTEL: {"+QUIMSLOT": self._quimslot, "+QDSIM": self._qdsim},
            SlotStyle.SIMCOM: {"+SMSIMCFG": self._smsimcfg},
            SlotStyle.HUAWEI: {"^SCICHG": self._scichg},
            SlotStyle.FIBOCOM: {"+GTDUALSIM": self._gtdualsim},
        }
        table.update(slot_handlers[modem.dialect.slot_style])
        self.messaging = MessagingCommands(modem)
        table.update(self.messaging.table)
        table.update(IncomingCommands(modem).table)
        self.table = table
        top = 3 if modem.dialect.reg_n3 else 2
        self.test_answers = {name: f"{name}: (0-{top})" for name in REG_COMMANDS} | {
            "+CFUN": "+CFUN: (0,1,4),(0-1)",
            "+CMEE": "+CMEE: (0-2)",
            "+CMGF": "+CMGF: (0,1)",
        }
        if modem.dialect.clcc_urc:
            self.test_answers["+CLCC"] = "+CLCC: (0-1)"  # A5: SIM7600, not a bare OK

    def execute(self, command: Command) -> Reply:
        """Run one command; unknown → ``ERROR``; bad arguments → ``ERROR`` / CME 50."""
        handler = self.table.get(command.name)
        if handler is None and command.name.startswith("S") and command.name[1:].isdigit():
            return _ok("000") if command.kind is Kind.READ else _ok()
        if handler is None or command.name in self.m.refused_commands:
            raise plain(self.m.habits.unknown_answer)  # A1/D1
        if command.kind is Kind.TEST and command.name not in ("+COPS",):
            answer = self.test_answers.get(command.name)
            return _ok(answer) if answer else _ok()
        try:
            return handler(command)
        except ValueError:
            raise plain() from None

    # -- basic -------------------------------------------------------------------------------
    def _echo(self, c: Command) -> Reply:
        value = c.int_arg(0, 0)
        if value not in (0, 1):
            raise plain()
        aux = self.m.serving_aux
        if aux is not None:
            aux.echo = value == 1
        else:
            self.m.settings.echo = value == 1
        return _ok()

    def _verbose(self, c: Command) -> Reply:
        if c.int_arg(0, 0) != 1:
            raise plain()  # only verbose result codes are simulated
        return _ok()

    def _quiet(self, c: Command) -> Reply:
        if c.int_arg(0, 0) != 0:
            raise plain()
        return _ok()

    def _reset(self, _c: Command) -> Reply:
        aux = self.m.serving_aux
        if aux is not None:
            aux.reset_settings()  # the second port's own echo and CMEE only
        else:
            self.m.reset_settings()
        return _ok()

    def _info(self, _c: Command) -> Reply:
        d = self.m.dialect
        return _ok(d.manufacturer, d.model, f"Revision: {d.revision}")

    def _cmee(self, c: Command) -> Reply:
        aux = self.m.serving_aux
        if c.kind is Kind.READ:
            return _ok(f"+CMEE: {self.m.cmee}")
        value = c.int_arg(0, 0)
        if value not in (0, 1, 2):
            raise plain()
        if aux is not None:
            aux.cmee = int(value or 0)
        else:
            self.m.settings.cmee = int(value or 0)
        return _ok()

    # -- SIM -----------------------------------------------------------------------------------
    def _cpin(self, c: Command) -> Reply:
        sim = sim_present(self.m)
        if c.kind is Kind.READ:
            return _ok(f"+CPIN: {sim.lock.value}")
        if c.kind is not Kind.SET or not c.args:
            raise cme(50)
        if sim.lock is LockState.READY:
            raise cme(3)
        code = c.arg(0, "") or ""
        if sim.enter_pin(code, c.arg(1)):
            self.m.sim_unlocked()
            return _ok()
        raise cme(16)

    def _cimi(self, _c: Command) -> Reply:
        return _ok(sim_settled(self.m, unlocked=True).imsi)

    def _cnum(self, c: Command) -> Reply:
        if c.kind is not Kind.EXEC:
            raise plain()
        sim_settled(self.m, unlocked=True)
        return _ok()  # the simulated SIMs store no MSISDN: no +CNUM line (27.007 allows it)

    def _make_iccid(self, kind: str, prefix: str) -> Handler:
        def handler(c: Command) -> Reply:
            expected = Kind.READ if kind == "read" else Kind.EXEC
            if c.kind is not expected:
                raise plain()
            return _ok(f"{prefix}: {sim_settled(self.m).iccid}")

        return handler

    def _crsm(self, c: Command) -> Reply:
        if c.kind is not Kind.SET:
            raise cme(50)
        sim = sim_settled(self.m)
        command, file_id = c.int_arg(0), c.int_arg(1)
        if command == 176 and file_id == 12258:
            return _ok(f'+CRSM: 144,0,"{swapped_bcd(sim.iccid)}"')
        if command == 176 and file_id == 28589:  # EF_AD: UE operation mode, MNC length
            return _ok(f'+CRSM: 144,0,"000000{sim.mnc_length:02X}"')
        return _ok('+CRSM: 106,130,""')

    # -- slots -------------------------------------------------------------------------------
    def _select(self, slot: int | None) -> Reply:
        if slot is None or not 1 <= slot <= len(self.m.slots):
            raise cme(50)
        self.m.select_slot(slot)
        return _ok()

    def _quimslot(self, c: Command) -> Reply:
        if c.kind is Kind.READ:
            return _ok(f"+QUIMSLOT: {self.m.active_slot}")
        return self._select(c.int_arg(0))

    def _qdsim(self, c: Command) -> Reply:
        if c.kind is Kind.READ:
            return _ok(f"+QDSIM: {self.m.active_slot - 1}")
        value = c.int_arg(0)
        return self._select(None if value is None else value + 1)

    def _smsimcfg(self, c: Command) -> Reply:
        if c.kind is Kind.READ:
            return _ok(f"+SMSIMCFG: 1,{self.m.active_slot}")
        if c.int_arg(0) != 1:
            raise cme(50)
        return self._select(c.int_arg(1))

    def _scichg(self, c: Command) -> Reply:
        if c.kind is Kind.READ:
            current = self.m.active_slot - 1
            return _ok(f"^SCICHG: {current},{1 - current}")
        primary, secondary = c.int_arg(0), c.int_arg(1, None)
        if primary is None or primary not in (0, 1):
            raise cme(50)
        if secondary is not None and secondary != 1 - primary:
            raise cme(50)
        return self._select(primary + 1)

    def _gtdualsim(self, c: Command) -> Reply:
        if c.kind is Kind.READ:
            return _ok(f"+GTDUALSIM: {self.m.active_slot - 1}")
        value = c.int_arg(0)
        return self._select(None if value is None else value + 1)

    # -- network -------------------------------------------------------------------------------
    def _make_reg(self, name: str) -> Handler:
        def handler(c: Command) -> Reply:
            m = self.m
            if c.kind is Kind.READ:
                n = m.settings.reg_n[name]
                return _ok(solicited(name, n, m.reg, m.dialect, m.cell))
            if c.kind is not Kind.SET:
                raise plain()
            level = c.int_arg(0, 0)
            if level is None or not 0 <= level <= 3 or (level == 3 and not m.dialect.reg_n3):
                raise plain()
            m.settings.reg_n[name] = level
            return _ok()

        return handler

    def _csq(self, _c: Command) -> Reply:
        rssi = self.m.signal if self.m.cfun == 1 else 99
        return _ok(f"+CSQ: {rssi},99")

    def _cesq(self, _c: Command) -> Reply:
        if self.m.cfun != 1 or self.m.signal == 99:
            return _ok("+CESQ: 99,99,255,255,255,255")
        rsrp = min(97, self.m.signal * 3)
        rsrq = min(34, 5 + self.m.signal)
        return _ok(f"+CESQ: 99,99,255,255,{rsrq},{rsrp}")

    def _cops(self, c: Command) -> Reply:
        m = self.m
        if c.kind is Kind.TEST:
            return _ok('+COPS: (2,"TEST NETWORK","TEST","00101",7),,(0-4),(0-2)')
        if c.kind is Kind.READ:
            if not m.reg.registered:
                return _ok(f"+COPS: {m.settings.cops_mode}")
            name = OPERATOR_NAMES[m.settings.cops_format]
            act = 7 if m.dialect.act == 7 else 0
            return _ok(f'+COPS: {m.settings.cops_mode},{m.settings.cops_format},"{name}",{act}')
        mode = c.int_arg(0, 0)
        if mode == 3:
            fmt = c.int_arg(1, 0)
            if fmt not in (0, 1, 2):
                raise cme(50)
            m.settings.cops_format = fmt
            return _ok()
        if mode not in (0, 1, 2, 4):
            raise cme(50)
        m.settings.cops_mode = 2 if mode == 2 else 0
        m.refresh_registration()
        return _ok()

    def _cfun(self, c: Command) -> Reply:
        m = self.m
        if c.kind is Kind.READ:
            return _ok(f"+CFUN: {m.cfun}")
        fun, reset = c.int_arg(0), c.int_arg(1, 0)
        if fun not in (0, 1, 4) or reset not in (0, 1):
            raise cme(50)
        if reset == 1:
            m.run_named("reboot", self._reboot())
            return _ok()
        m.cfun = fun
        if fun != 1:
            m.end_call("NO CARRIER", UNSPECIFIED)
        m.refresh_registration()
        return _ok()

    async def _reboot(self) -> None:
        await self.m.clock.sleep(0)
        self.m.reboot()

    # -- calls -------------------------------------------------------------------------------
    def _dial(self, c: Command) -> Reply:
        m = self.m
        dial = (c.arg(0, "") or "").strip()
        if not dial.endswith(";"):
            raise plain()  # data calls are not simulated
        number = dial[:-1].strip()
        if not DIAL_RE.match(number):
            raise plain()
        sim = sim_ready(self.m)
        if m.call is not None:
            raise cme(3)
        if not m.reg.registered:
            raise cme(30)
        block = m.carrier.call_attempt(sim.iccid, sim.operator)
        current = m.carrier.block_of(sim.iccid)
        if sim.behaviour is Behaviour.BARRED or (
            current is not None and current.action is BlockAction.BAR
        ):
            m.carrier.stats.calls_rejected += 1
            start_call(m, number, fail_cause=BARRING, port=m.serving_port)
        elif block is not None or current is not None:
            m.carrier.stats.calls_rejected += 1
            start_call(m, number, fail_cause=UNSPECIFIED, port=m.serving_port)
        else:
            start_call(m, number, port=m.serving_port)
        if m.habits.dial_ok != "immediate":
            return Reply(final=None)  # B2: the final result comes on answer (or never)
        return _ok()

    def _hangup(self, c: Command) -> Reply:
        hang_up(self.m, self.m.serving_port, "ATH" if c.name == "H" else f"AT{c.name}")
        return _ok()

    def _clcc(self, c: Command) -> Reply:
        """``AT+CLCC`` lists the one call; ``AT+CLCC=<0|1>`` / ``AT+CLCC?`` switch and show the
        URC on a model that has it (SIMCom; elsewhere the set form is ``ERROR``)."""
        m = self.m
        if c.kind is Kind.SET:
            value = c.int_arg(0)
            if not m.dialect.clcc_urc or value not in (0, 1):
                raise plain()
            m.settings.clcc = int(value or 0)
            return _ok()
        if c.kind is Kind.READ and m.dialect.clcc_urc:
            return _ok(f"+CLCC: {m.settings.clcc}")
        call = m.call
        return _ok() if call is None else _ok(clcc_line(call))

    def _ceer(self, _c: Command) -> Reply:
        """The last call's or registration's cause, in the model's shape (E3)."""
        text = self.m.last_cause
        style = self.m.habits.ceer_style
        if style == "empty":
            return _ok("+CEER:")
        if style == "ok_only":
            return _ok()
        if style == "textual":
            if self.m.last_cause_code is None:
                return _ok("+CEER: No cause information available")
            return _ok(f"+CEER: {text}")
        if style == "numbered":
            if self.m.last_cause_code is None:
                return _ok('+CEER: "0 Unknown"')
            return _ok(f'+CEER: "{self.m.last_cause_code} {text}"')
        if self.m.dialect.ceer_cc_info:
            return _ok(f'+CEER: "CC INFO","{text}"')
        return _ok(f'+CEER: "{text}"')
