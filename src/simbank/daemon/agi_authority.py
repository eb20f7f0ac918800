"""The daemon's answer to the FastAGI scripts: the ``call/authorize`` and ``call/complete``
commands themselves, so a dialplan's ``AGI()`` and an MQTT request take the same path
(checks, book before act, the modem held until complete or expiry)."""

from __future__ import annotations

from collections.abc import Mapping

from simbank.contract import AuthorizeRequest, CompleteRequest
from simbank.daemon.commands.pbx import PbxCommands
from simbank.errors import Refused


class DaemonAuthority:
    """Satisfies :class:`simbank.agi.Authorizer`. A dialplan that names no longest call gets
    ``[compliance] max_call_duration_s``; a request the contract refuses raises pydantic's
    ``ValidationError``, which the script sets as ``validation_error``."""

    def __init__(self, pbx: PbxCommands, default_max_s: int) -> None:
        self.pbx = pbx
        self.default_max_s = default_max_s

    async def authorize(
        self, number: str, modem: str | None, max_duration_s: int | None
    ) -> Mapping[str, object]:
        request = AuthorizeRequest(
            number=number, modem=modem, max_duration_s=max_duration_s or self.default_max_s
        )
        refusing = self.pbx.gw.storage_refusal()
        if refusing is not None:  # degraded: refused at once, as the MQTT router does
            cause, why, _ = refusing
            raise Refused("storage_unavailable", f"the gateway cannot book now: {why}", cause=cause)
        return await self.pbx.authorize(request)

    async def complete(
        self, booking: str, duration_s: int, outcome: str, cause: int | None
    ) -> Mapping[str, object]:
        request = CompleteRequest.model_validate(
            {"booking": booking, "duration_s": duration_s, "outcome": outcome, "cause": cause}
        )
        return await self.pbx.complete(request)
