"""The ``[sms]`` section: how received messages are put together and handed on."""

from __future__ import annotations

from pydantic import Field, field_validator

from simbank.config.section import Section


class SmsConfig(Section):
    """Received SMS: reassembly of concatenated messages, and optional forwarding."""

    reassembly_timeout_s: float = Field(
        default=3600.0,
        ge=60,
        le=7 * 86400,
        description="How long the parts of a concatenated message wait for their siblings; "
        "after that what arrived is kept as one message whose `missing` lists the rest.",
    )
    forward_command: list[str] = Field(
        default_factory=list,
        description="A command run for every received message (Gammu's RunOnReceive habit): "
        "argv as a list, the program an absolute path, run without a shell; the message as one "
        "JSON document on stdin, as sms/list shows the message (id, iccid, modem, received_at, "
        "sent_at, sender, text, parts, missing, acked), and SIMBANK_SMS_ID / SIMBANK_ICCID in "
        "its environment. Empty: no forwarding.",
    )
    forward_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="A forward still running after this long is killed (its process group).",
    )

    @field_validator("forward_command")
    @classmethod
    def _argv(cls, value: list[str]) -> list[str]:
        if value and not value[0].startswith("/"):
            raise ValueError("the program must be an absolute path (no shell, no PATH lookup)")
        if any(not arg or "\0" in arg for arg in value):
            raise ValueError("arguments must be non-empty strings without NUL")
        return value
