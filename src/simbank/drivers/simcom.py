"""SIMCom (SIM7600E-H, SIM7100, SIM800): ``AT+CICCID`` → ``+ICCID:``, ``AT+SMSIMCFG`` dual-SIM
select (1-based). Source: SIM7500_SIM7600 Series AT Command Manual (CICCID, SMSIMCFG) and
docs/modems.md. SIM800 (2G) answers ``AT+CCID`` with bare digits, which the generic fallback
reads."""

from __future__ import annotations

from typing import ClassVar

from simbank.at.results import MEDIUM, Command
from simbank.drivers.base import info_lines
from simbank.drivers.generic import GenericDriver
from simbank.drivers.parse.fields import body_of, split_fields, to_int
from simbank.drivers.types import Domain
from simbank.errors import ProtocolGarbage


class SimcomDriver(GenericDriver):
    dialect: ClassVar[str] = "simcom"
    iccid_commands: ClassVar[tuple[tuple[str, str | None], ...]] = (("AT+CICCID", "+ICCID"),)
    # SIM7600/SIM800 manuals: boot and SIM readiness, STK, network time and daylight saving.
    urc_names: ClassVar[frozenset[str]] = frozenset(
        {
            "SMS DONE", "PB DONE", "Call Ready", "SMS Ready", "+STIN", "*PSUTTZ", "DST",
            "+PACSP", "+SIMCARD",
        }
    )  # fmt: skip
    # SIM7600 manual §AT+CLCC: ``AT+CLCC=1`` reports each call's changes as +CLCC URCs.
    call_reports_command: ClassVar[str | None] = "AT+CLCC=1"
    # SIM7600/SIM7100/SIM800 are 2G-4G modems: no +C5GREG.
    domains: ClassVar[tuple[Domain, ...]] = (Domain.CS, Domain.PS, Domain.EPS)

    async def _probe_slot_switch(self) -> bool:
        return await self._answers("AT+SMSIMCFG?", "+SMSIMCFG")

    async def _active_slot(self) -> int:
        response = await self._request(
            Command("AT+SMSIMCFG?", prefix="+SMSIMCFG", timeout=MEDIUM), check=False
        )
        lines = info_lines(response, "+SMSIMCFG") if response.ok else []
        if not lines:
            response.raise_for_error()
            raise ProtocolGarbage("AT+SMSIMCFG? without +SMSIMCFG", raw=response.final.raw)
        # +SMSIMCFG: <mode>,<slot>
        _prefix, body = body_of(lines[0], ("+SMSIMCFG",))
        fields = split_fields(body, raw=lines[0])
        if len(fields) < 2:
            raise ProtocolGarbage("+SMSIMCFG needs <mode>,<slot>", raw=lines[0])
        return to_int(fields[1], raw=lines[0], what="<slot>")

    async def _select_slot(self, slot: int) -> None:
        await self._request(Command(f"AT+SMSIMCFG=1,{slot}", timeout=MEDIUM))
