"""Huawei (ME909s-120, MU709s-2, ME906s): ``AT^ICCID?``, ``AT^SCICHG`` slot select (0-based
primary,secondary), ``^RSSI`` / ``^HCSQ`` signal URCs and the ``^CEND`` call-end report with its
24.008 cause; USSD requests as packed GSM-7 hex first (ModemManager's Huawei plugin). Source:
HUAWEI ME909s Series LTE Module AT Command Interface Specification and docs/modems.md."""

from __future__ import annotations

from typing import ClassVar

from simbank.at.results import MEDIUM, Command, Urc
from simbank.drivers.base import UrcParser, info_lines
from simbank.drivers.generic import GenericDriver
from simbank.drivers.parse.calls import parse_cend
from simbank.drivers.parse.fields import first_int
from simbank.drivers.parse.signal import parse_hcsq, parse_huawei_rssi
from simbank.drivers.types import CallCause, Domain
from simbank.errors import ProtocolGarbage


class HuaweiDriver(GenericDriver):
    dialect: ClassVar[str] = "huawei"
    iccid_commands: ClassVar[tuple[tuple[str, str | None], ...]] = (("AT^ICCID?", "^ICCID"),)
    domains: ClassVar[tuple[Domain, ...]] = (Domain.CS, Domain.PS, Domain.EPS)
    # ME909s manual: signal, mode and service, boot and SIM state, call progress (^ORIG,
    # ^CONF, ^CONN, ^CEND), STK, data link and flow, network time, SMS memory full.
    urc_names: ClassVar[frozenset[str]] = frozenset(
        {
            "^RSSI", "^MODE", "^BOOT", "^SIMST", "^SRVST", "^HCSQ", "^CEND", "^ORIG", "^CONF",
            "^CONN", "^STIN", "^NDISSTAT", "^DSFLOWRPT", "^NWTIME", "^CERSSI", "^SMMEMFULL",
        }
    )  # fmt: skip
    # The cause of the last ^CEND seen; preferred to AT+CEER, which these modems often leave
    # empty.
    last_cend: CallCause | None = None

    def vendor_urc_parsers(self) -> dict[str, UrcParser]:
        return {
            "^RSSI": lambda urc: parse_huawei_rssi(urc.text),
            "^HCSQ": lambda urc: parse_hcsq(urc.text),
            "^CEND": self._on_cend,
        }

    def _on_cend(self, urc: Urc) -> CallCause:
        cause = parse_cend(urc.text)
        self.last_cend = cause
        return cause

    async def last_call_cause(self) -> CallCause:
        if self.last_cend is not None and self.last_cend.code is not None:
            return self.last_cend
        return await super().last_call_cause()

    async def dial(self, number: str) -> None:
        self.last_cend = None
        await super().dial(number)

    #: The USSD code goes first as packed GSM-7 hex (``*100#`` → ``AT+CUSD=1,"AA180C3602",15``):
    #: "Huawei devices don't use the current charset (as per AT+CSCS) in the CUSD command, they
    #: instead expect data encoded in GSM-7 already" (ModemManager
    #: ``plugins/huawei/mm-broadband-modem-huawei.c`` L2686-2712; Gammu sends the same, issue
    #: 374). Firmware that wants text gets it once after a refusal.
    ussd_packed_first = True

    async def _probe_slot_switch(self) -> bool:
        # Single-slot sticks answer ERROR (MU/ME firmware) or COMMAND NOT SUPPORT (E1xxx).
        return await self._answers("AT^SCICHG?", "^SCICHG")

    async def _probe_vendor_capabilities(self) -> dict[str, bool]:
        return {"hcsq": await self._supports("AT^HCSQ?")}

    async def _active_slot(self) -> int:
        response = await self._request(Command("AT^SCICHG?", prefix="^SCICHG", timeout=MEDIUM))
        lines = info_lines(response, "^SCICHG")
        if not lines:
            raise ProtocolGarbage("AT^SCICHG? without ^SCICHG", raw=response.final.raw)
        return first_int(lines[0], "^SCICHG") + 1

    async def _select_slot(self, slot: int) -> None:
        primary = slot - 1
        secondary = 1 - primary if self.slots == 2 else 0
        await self._request(Command(f"AT^SCICHG={primary},{secondary}", timeout=MEDIUM))
