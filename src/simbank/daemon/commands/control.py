"""The gateway commands: ``status``, ``modem/reset``, ``traffic/pause``, ``traffic/resume``."""

from __future__ import annotations

from typing import Any

from simbank.contract import ModemRequest, PauseRequest, Request
from simbank.daemon.commands.access import ModemAccess
from simbank.daemon.runtime import BankRuntime


class ControlCommands:
    """``status``, ``modem/reset``, ``traffic/pause``, ``traffic/resume``."""

    def __init__(self, runtime: BankRuntime, access: ModemAccess) -> None:
        self.gw = runtime
        self.access = access

    async def status(self, _req: Request) -> dict[str, Any]:
        gw = self.gw
        return {
            "modems": {m: s.model_dump(mode="json") for m, s in gw.board.modems.items()},
            "sims": {i: s.model_dump(mode="json") for i, s in gw.board.sims.items()},
            "traffic": {
                "paused": gw.paused_reason is not None,
                "pause_reason": gw.paused_reason,
                "circuit_open": gw.circuit.is_open,
                "blocks_in_window": gw.circuit.blocks_in_window(gw.clock.now()),
            },
        }

    async def modem_reset(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, ModemRequest)
        sup = self.access.ready(req.modem)
        await self.access.lock(sup)
        try:
            await sup.reset()
        finally:
            sup.lock.release()
        self.gw.ledger.audit(self.gw.clock.now(), "operator", "modem_reset", {"modem": req.modem})
        return {
            "modem": req.modem,
            "state": "ready" if sup.ready else "probing",
            "iccid": sup.iccid,
        }

    async def traffic_pause(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, PauseRequest)
        gw = self.gw
        reason = req.reason or "paused by an operator"
        gw.set_paused(reason)
        gw.ledger.audit(gw.clock.now(), "operator", "traffic_pause", {"reason": reason})
        gw.board.event("circuit_opened", reason="operator", note=reason)
        return {"paused": True, "reason": reason}

    async def traffic_resume(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, PauseRequest)
        gw = self.gw
        was_open = gw.circuit.is_open
        gw.set_paused(None)
        gw.close_circuit()
        gw.ledger.audit(
            gw.clock.now(),
            "operator",
            "traffic_resume",
            {"reason": req.reason, "circuit_was_open": was_open},
        )
        gw.board.event("circuit_closed", reason="operator", note=req.reason)
        return {"paused": False, "circuit_open": False}
