"""Render docs/configuration.md from the pydantic field descriptions (a test keeps it in sync).

Run ``python -m simbank.config.reference > docs/configuration.md`` after changing a model.
"""

from __future__ import annotations

import inspect
import types
import typing

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from simbank.config.agi import AgiConfig
from simbank.config.models import (
    ComplianceConfig,
    Config,
    DetectionConfig,
    GatewayConfig,
    HomeAssistantConfig,
    LoggingConfig,
    MetricsConfig,
    ModemConfig,
    MqttConfig,
    PolicyConfig,
    RotationConfig,
    SmsConfig,
)
from simbank.config.storage import StorageConfig

_HEADER = """# Configuration reference

`simbank.toml` is TOML; unknown keys are errors, and so are values of the wrong TOML type
(`port = "1883"` or `port = true` is refused, not read as 1883 or 1; an integer is fine where a
float is expected). `simbankd check-config FILE` validates a file; `simbankd run` exits with
status 78 (EX_CONFIG) and one `file: key.path: message` line per problem when it is invalid.
Both also check what the file names: an MQTT password file that is missing, unreadable or
empty, TLS files that do not load, a password that would cross the network in clear, metrics
on a non-loopback address without `allow_remote`. A modem's serial port that does not exist is
*not* an error (modems are plugged in later; the daemon reports the modem `absent` and opens
the port when it appears): `check-config` prints a note for it. A port value that is not an
absolute path, or an MQTT or metrics port outside 1-65535, is an error. An example:
[config/simbank.example.toml](../config/simbank.example.toml).

This page is generated from the field descriptions in `src/simbank/config/` (`models.py`,
`policy.py`, `messaging.py`).
"""


def _type_name(annotation: object) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f'`"{a}"`' for a in typing.get_args(annotation))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if annotation is type(None):
        return "none"
    return getattr(annotation, "__name__", str(annotation))


def _section(title: str, model: type[BaseModel]) -> list[str]:
    doc = inspect.cleandoc(model.__doc__ or "")
    lines = [
        f"## `{title}`",
        "",
        doc,
        "",
        "| key | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for name, field in model.model_fields.items():
        if field.default is not PydanticUndefined:
            default = f"`{field.default}`" if field.default is not None else "—"
        elif field.default_factory is not None:
            value = field.default_factory()  # type: ignore[call-arg]
            if isinstance(value, BaseModel):
                default = "its section's defaults"
            elif isinstance(value, dict) and value:
                default = f"`{sorted(value)}` with their defaults"
            else:
                default = f"`{value}`"
        else:
            default = "**required**"
        lines.append(
            f"| `{name}` | {_type_name(field.annotation)} | {default} | {field.description or ''} |"
        )
    return [*lines, ""]


def render() -> str:
    out = [_HEADER]
    out += _section("(top level)", Config)
    out += _section("[gateway]", GatewayConfig)
    out += _section("[mqtt]", MqttConfig)
    out += _section("[detection]", DetectionConfig)
    out += _section("[[modems]]", ModemConfig)
    out += _section("[policies.<name>]", PolicyConfig)
    out += _section("[rotation]", RotationConfig)
    out += _section("[compliance]", ComplianceConfig)
    out += _section("[metrics]", MetricsConfig)
    out += _section("[homeassistant]", HomeAssistantConfig)
    out += _section("[sms]", SmsConfig)
    out += _section("[agi]", AgiConfig)
    out += _section("[storage]", StorageConfig)
    out += _section("[logging]", LoggingConfig)
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
