"""Fibocom (L610, FM150, L850-GL): ``AT+CCID`` as generic, ``AT+GTDUALSIM`` slot select
(0-based). Source: docs/modems.md (Fibocom L610 AT command manual, GTDUALSIM)."""

from __future__ import annotations

from typing import ClassVar

from simbank.at.results import MEDIUM, Command
from simbank.drivers.base import info_lines
from simbank.drivers.generic import GenericDriver
from simbank.drivers.parse.fields import first_int
from simbank.errors import ProtocolGarbage


class FibocomDriver(GenericDriver):
    dialect: ClassVar[str] = "fibocom"
    # L610 manual: SIM readiness and hot-plug, phonebook ready.
    urc_names: ClassVar[frozenset[str]] = frozenset({"+SIM READY", "+PBREADY", "+SIM DROP"})

    async def _probe_slot_switch(self) -> bool:
        return await self._answers("AT+GTDUALSIM?", "+GTDUALSIM")

    async def _active_slot(self) -> int:
        response = await self._request(
            Command("AT+GTDUALSIM?", prefix="+GTDUALSIM", timeout=MEDIUM)
        )
        lines = info_lines(response, "+GTDUALSIM")
        if not lines:
            raise ProtocolGarbage("AT+GTDUALSIM? without +GTDUALSIM", raw=response.final.raw)
        return first_int(lines[0], "+GTDUALSIM") + 1

    async def _select_slot(self, slot: int) -> None:
        await self._request(Command(f"AT+GTDUALSIM={slot - 1}", timeout=MEDIUM))
