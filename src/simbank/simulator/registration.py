"""Registration reports (+CREG/+CGREG/+CEREG/+C5GREG) in every 27.007 field form (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from simbank.simulator.dialects import Dialect

REG_COMMANDS = ("+CREG", "+CGREG", "+CEREG", "+C5GREG")

NOT_REGISTERED = 0
HOME = 1
SEARCHING = 2
DENIED = 3
ROAMING = 5


@dataclass(frozen=True)
class Cell:
    """Where the simulated network puts a registered modem."""

    lac: int = 0x1A2B
    ci: int = 0x0012ABCD
    rac: int = 0x01


@dataclass(frozen=True)
class RegState:
    """The network-side registration status of a modem."""

    stat: int = NOT_REGISTERED
    reject_cause: int | None = None

    @property
    def registered(self) -> bool:
        """Home or roaming."""
        return self.stat in (HOME, ROAMING)


def _fields(command: str, n: int, state: RegState, dialect: Dialect, cell: Cell) -> list[str]:
    """The fields after <stat> for report level ``n`` (27.007 optional-field rules)."""
    if n < 2:
        return []
    if command == "+C5GREG":
        act = 11
        lac = f'"{cell.lac:06X}"'
    elif command == "+CEREG":
        act = 7
        lac = f'"{cell.lac:04X}"'
    else:
        act = dialect.act
        lac = f'"{cell.lac:04X}"'
    ci_digits = dialect.ci_digits if command in ("+CREG", "+CGREG") else 8
    ci_value = cell.ci & ((1 << (4 * ci_digits)) - 1)
    with_rac = command == "+CGREG" and dialect.cgreg_rac
    if state.registered:
        fields = [lac, f'"{ci_value:0{ci_digits}X}"', str(act)]
        if with_rac:
            fields.append(f'"{cell.rac:02X}"')
    else:
        fields = ["", "", ""] + ([""] if with_rac else [])
    if n >= 3 and state.reject_cause is not None:
        fields += ["0", str(state.reject_cause)]
    elif not state.registered:
        return []
    return fields


def solicited(command: str, n: int, state: RegState, dialect: Dialect, cell: Cell) -> str:
    """Answer to ``AT+CREG?``: ``+CREG: <n>,<stat>[,...]``."""
    parts = [str(n), str(state.stat), *_fields(command, n, state, dialect, cell)]
    return f"{command}: {','.join(parts)}"


def unsolicited(command: str, n: int, state: RegState, dialect: Dialect, cell: Cell) -> str | None:
    """The URC for a change at report level ``n`` (None when n=0)."""
    if n == 0:
        return None
    parts = [str(state.stat), *_fields(command, n, state, dialect, cell)]
    return f"{command}: {','.join(parts)}"
