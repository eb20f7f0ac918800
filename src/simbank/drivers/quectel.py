"""Quectel (EC25, EG25-G, EC21, EG91, RM500Q…): ``AT+QCCID``, ``AT+QUIMSLOT`` (older firmware
``AT+QDSIM``, 0-based), ``+QIND: "csq"`` signal URCs.

Source: Quectel EC2x&EG9x&EG2x-G&EM05 Series AT Commands Manual (QCCID, QDSIM, QUIMSLOT,
QINDCFG / +QIND) and docs/modems.md.
"""

from __future__ import annotations

from typing import ClassVar

from simbank.at.results import MEDIUM, Command
from simbank.drivers.base import UrcParser, info_lines
from simbank.drivers.generic import GenericDriver
from simbank.drivers.parse.fields import first_int
from simbank.drivers.parse.signal import parse_qind_csq
from simbank.errors import ProtocolGarbage


class QuectelDriver(GenericDriver):
    dialect: ClassVar[str] = "quectel"
    iccid_commands: ClassVar[tuple[tuple[str, str | None], ...]] = (("AT+QCCID", "+QCCID"),)
    # EC25/EG25-G manual: boot (RDY, +QUSIM, +QIND: SMS DONE), power-down, SIM hot-plug, NITZ.
    urc_names: ClassVar[frozenset[str]] = frozenset(
        {"+QIND", "+QUSIM", "RDY", "POWERED DOWN", "+QSIMSTAT", "+QNITZ"}
    )
    # Set once the firmware turned out to lack AT+QUIMSLOT and needs AT+QDSIM (0-based).
    legacy_dsim: bool = False

    def vendor_urc_parsers(self) -> dict[str, UrcParser]:
        return {"+QIND": lambda urc: parse_qind_csq(urc.text)}

    async def _probe_slot_switch(self) -> bool:
        """``AT+QUIMSLOT?`` (RM5xx/EM12, newer EC2x firmware), else ``AT+QDSIM?`` (older
        EC2x/EG25-G, 0-based); neither answered means a single-SIM model."""
        self.legacy_dsim = False
        if await self._answers("AT+QUIMSLOT?", "+QUIMSLOT"):
            return True
        if await self._answers("AT+QDSIM?", "+QDSIM"):
            self.legacy_dsim = True
            return True
        return False

    async def _active_slot(self) -> int:
        if not self.legacy_dsim:
            response = await self._request(
                Command("AT+QUIMSLOT?", prefix="+QUIMSLOT", timeout=MEDIUM), check=False
            )
            if response.ok and (lines := info_lines(response, "+QUIMSLOT")):
                return first_int(lines[0], "+QUIMSLOT")
            self.legacy_dsim = True
        response = await self._request(Command("AT+QDSIM?", prefix="+QDSIM", timeout=MEDIUM))
        lines = info_lines(response, "+QDSIM")
        if not lines:
            raise ProtocolGarbage("AT+QDSIM? without +QDSIM", raw=response.final.raw)
        return first_int(lines[0], "+QDSIM") + 1

    async def _select_slot(self, slot: int) -> None:
        if not self.legacy_dsim:
            if await self._accepted(f"AT+QUIMSLOT={slot}", MEDIUM):
                return
            self.legacy_dsim = True
        await self._request(Command(f"AT+QDSIM={slot - 1}", timeout=MEDIUM))
