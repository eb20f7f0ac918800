"""Load simbank.toml into :class:`Config`, turning every problem into a ``file: key.path: message`` line."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from pydantic import ValidationError

from simbank.config.models import Config
from simbank.errors import ConfigError

EXIT_CONFIG = 78  # EX_CONFIG from sysexits.h: what systemd and operators expect on a bad config


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


_TOML_TYPES = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a float",
    list: "an array",
    dict: "a table",
}


def _got(value: object) -> str:
    """What the file holds, in TOML's words: ``a string ("1883")``."""
    kind = _TOML_TYPES.get(type(value), type(value).__name__)
    if isinstance(value, list | dict):
        return kind
    shown = json.dumps(value) if isinstance(value, str) else str(value).lower()
    return f"{kind} ({shown[:40]}{'...' if len(shown) > 40 else ''})"


def validation_lines(source: str, exc: ValidationError) -> list[str]:
    """One ``file: key.path: message`` line per pydantic error; a value of the wrong type
    says what it is (``mqtt.port: Input should be a valid integer, not a string ("1883")``)."""
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        elif err["type"].endswith("_type") and not isinstance(err["input"], dict):
            expected = "Input should be a path" if err["type"] == "path_type" else message
            message = f"{expected.split(',', 1)[0]}, not {_got(err['input'])}"
        lines.append(f"{source}: {_path(loc)}: {' '.join(message.split())}")
    return lines


def parse_config(text: str, source: str = "<config>") -> Config:
    """Parse TOML text; raise ConfigError with one line per problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = f"{source}: (syntax): {exc}"
        raise ConfigError(line, [line]) from exc
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        lines = validation_lines(source, exc)
        raise ConfigError(lines[0], lines) from exc


def load_config(path: str | Path) -> Config:
    """Read and validate a config file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        line = f"{source}: (file): cannot read: {reason}"
        raise ConfigError(line, [line]) from exc
    return parse_config(text, source)
