"""The ``[agi]`` section: the optional FastAGI endpoint a PBX asks before it dials."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from simbank.addresses import is_loopback
from simbank.config.section import Section


class AgiConfig(Section):
    """Optional FastAGI endpoint: `AGI(agi://127.0.0.1:4573/authorize,${EXTEN})` books a call
    and names the modem's PBX device; `AGI(agi://127.0.0.1:4573/complete)` in the hangup handler
    settles it (docs/pbx.md)."""

    enabled: bool = Field(default=False, description="Serve FastAGI.")
    host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Address to bind; loopback unless allow_remote (FastAGI has no login).",
    )
    port: int = Field(default=4573, ge=1, le=65535, description="TCP port (FastAGI's is 4573).")
    allow_remote: bool = Field(
        default=False,
        description="Allow binding a non-loopback address: anyone who reaches the port can book "
        "calls, so only on a network that holds nothing but the PBX.",
    )
    max_connections: int = Field(
        default=32,
        ge=1,
        le=1024,
        description="Connections served at once; one more is closed at once (the dialplan sees "
        "no booking and does not dial).",
    )
    read_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="How long Asterisk may take to send its environment block or answer a "
        "command before the connection is closed.",
    )
    authorize_timeout_s: float = Field(
        default=120.0,
        gt=0,
        le=900,
        description="How long authorize (or complete) may take, a SIM switch included; after "
        "that the channel gets SIMBANK_REFUSED=error.",
    )

    @model_validator(mode="after")
    def _loopback(self) -> Self:
        if not self.allow_remote and not is_loopback(self.host):
            raise ValueError(
                f"host {self.host!r} is not loopback: FastAGI has no authentication, anyone "
                "who reaches the port books calls; set allow_remote = true to bind it anyway"
            )
        return self
