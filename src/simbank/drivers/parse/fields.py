"""Splitting an AT information line into its parameters (27.007 §4.1 syntax).

Shared by the pure parsers. Every failure is a :class:`~simbank.errors.ProtocolGarbage`
carrying the raw line.
"""

from __future__ import annotations

from simbank.errors import ProtocolGarbage


def body_of(line: str, prefixes: tuple[str, ...]) -> tuple[str, str]:
    """Return ``(prefix, body)`` for a line starting with one of ``prefixes`` (case-insensitive).

    ``"+CREG: 1,5"`` → ``("+CREG", "1,5")``. The colon and the blanks after it are removed.
    """
    text = line.strip()
    upper = text.upper()
    # Longest first so "+CGREG" is never taken for "+CG".
    for prefix in sorted(prefixes, key=len, reverse=True):
        if upper.startswith(prefix.upper()):
            rest = text[len(prefix) :]
            if rest.startswith(":"):
                return prefix, rest[1:].strip()
            if not rest:
                return prefix, ""
    raise ProtocolGarbage(f"expected one of {', '.join(prefixes)}", raw=line)


def split_fields(body: str, *, raw: str | None = None) -> list[str]:
    """Split on commas outside double quotes; each field stripped of blanks (quotes kept)."""
    fields: list[str] = []
    current: list[str] = []
    quoted = False
    for char in body:
        if char == '"':
            quoted = not quoted
            current.append(char)
        elif char == "," and not quoted:
            fields.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if quoted:
        raise ProtocolGarbage("unterminated quoted string", raw=raw if raw is not None else body)
    fields.append("".join(current).strip())
    return fields


def is_quoted(field: str) -> bool:
    """True for ``"..."``."""
    return len(field) >= 2 and field[0] == '"' and field[-1] == '"'


def unquote(field: str) -> str:
    """Strip one pair of surrounding double quotes and blanks."""
    field = field.strip()
    if is_quoted(field):
        return field[1:-1]
    return field


def is_decimal(field: str) -> bool:
    """ASCII decimal digits only (``str.isdigit`` alone accepts superscripts)."""
    return field.isascii() and field.isdigit()


def to_int(field: str, *, raw: str, what: str) -> int:
    """A mandatory decimal field (quotes tolerated)."""
    value = unquote(field)
    if not is_decimal(value) or len(value) > 9:
        raise ProtocolGarbage(f"{what}: not a number: {field!r}", raw=raw)
    return int(value)


def opt_int(field: str | None) -> int | None:
    """An optional decimal field: empty, absent or malformed → ``None``."""
    if field is None:
        return None
    value = unquote(field)
    if not is_decimal(value) or len(value) > 9:
        return None
    return int(value)


def opt_hex(field: str | None) -> str | None:
    """An optional hex field (LAC, TAC, CI, RAC), normalised to upper case without quotes.

    Empty, absent or non-hex → ``None``.
    """
    if field is None:
        return None
    value = unquote(field).replace(" ", "")
    if not value or len(value) > 16:
        return None
    if not all(c in "0123456789abcdefABCDEF" for c in value):
        return None
    return value.upper()


def first_int(line: str, prefix: str) -> int:
    """The first field of ``<prefix>: <n>,…`` as an int."""
    _prefix, body = body_of(line, (prefix,))
    return to_int(split_fields(body, raw=line)[0], raw=line, what=prefix)
