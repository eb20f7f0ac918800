"""+CREG / +CGREG / +CEREG / +C5GREG parsing, solicited and unsolicited (27.007 §7.2, §10.1.20,
§10.1.22, §10.1.42).

Solicited answers start with ``<n>``; unsolicited reports start with ``<stat>``. When the caller
does not say which it is, we decide like ModemManager's ``mm_3gpp_parse_creg_response``: a
``<stat>`` is always a short unquoted decimal, while the field after the first one in an
unsolicited report is a LAC/TAC (quoted, hex, 4+ digits, or empty).
"""

from __future__ import annotations

from simbank.drivers.fields import (
    body_of,
    is_decimal,
    is_quoted,
    opt_hex,
    opt_int,
    split_fields,
    to_int,
)
from simbank.drivers.types import Domain, Registration, RegStat
from simbank.errors import ProtocolGarbage

PREFIX_DOMAIN: dict[str, Domain] = {
    "+CREG": Domain.CS,
    "+CGREG": Domain.PS,
    "+CEREG": Domain.EPS,
    "+C5GREG": Domain.NR5G,
}

# Position of each optional field after <stat>, per domain.
_LAYOUT: dict[Domain, dict[str, int]] = {
    # +CREG: <stat>[,[<lac>],[<ci>],[<AcT>][,<cause_type>,<reject_cause>]]
    Domain.CS: {"lac": 0, "ci": 1, "act": 2, "cause_type": 3, "reject_cause": 4},
    # +CGREG: <stat>[,[<lac>],[<ci>],[<AcT>],[<rac>][,<cause_type>,<reject_cause>]]
    Domain.PS: {"lac": 0, "ci": 1, "act": 2, "rac": 3, "cause_type": 4, "reject_cause": 5},
    # +CEREG: <stat>[,[<tac>],[<ci>],[<AcT>][,[<cause_type>],[<reject_cause>][,...PSM timers]]]
    Domain.EPS: {"lac": 0, "ci": 1, "act": 2, "cause_type": 3, "reject_cause": 4},
    # +C5GREG: <stat>[,[<tac>],[<ci>],[<AcT>],[<Allowed_NSSAI_length>],[<Allowed_NSSAI>]
    #          [,<cause_type>,<reject_cause>]]
    Domain.NR5G: {"lac": 0, "ci": 1, "act": 2, "cause_type": 5, "reject_cause": 6},
}


def _c5greg_without_nssai(rest: list[str]) -> bool:
    """``<tac>,<ci>,<AcT>,<cause_type>,<reject_cause>``: +C5GREG with the NSSAI fields left out.

    27.007 puts ``<Allowed_NSSAI_length>,<Allowed_NSSAI>`` (a quoted string) before the cause;
    some implementations (our simulator among them) omit both. Five fields whose last is an
    unquoted number and whose fourth is a cause type (0/1) can only be that short form.
    """
    return (
        len(rest) == 5 and rest[3] in ("0", "1") and not is_quoted(rest[4]) and is_decimal(rest[4])
    )


def looks_like_stat(field: str) -> bool:
    """A ``<stat>`` is an unquoted decimal 0..11 (``001`` tolerated, Iridium pads to 3)."""
    return not is_quoted(field) and is_decimal(field) and len(field) <= 3 and int(field) <= 11


def is_solicited(fields: list[str]) -> bool:
    """Guess whether fields (prefix removed) start with ``<n>`` (answer) or ``<stat>`` (URC)."""
    if len(fields) == 1:
        return False
    return looks_like_stat(fields[1]) and is_decimal(fields[0])


def parse_registration(
    line: str, *, solicited: bool | None = None, domain: Domain | None = None
) -> Registration:
    """Parse one registration line in any form.

    ``line`` carries its ``+CxREG:`` prefix; without a prefix, ``domain`` is required.
    ``solicited``: True for an answer to ``AT+CxREG?``, False for a URC, None to decide from the
    fields. Raises :class:`ProtocolGarbage` if the line is not a registration report.
    """
    text = line.strip()
    if text.startswith("+") or domain is None:
        prefix, body = body_of(text, tuple(PREFIX_DOMAIN))
        domain = PREFIX_DOMAIN[prefix]
    else:
        body = text
    if not body:
        raise ProtocolGarbage("empty registration report", raw=line)
    fields = split_fields(body, raw=line)
    if solicited is None:
        solicited = is_solicited(fields)
    n: int | None = None
    if solicited:
        if len(fields) < 2:
            raise ProtocolGarbage("solicited registration answer without <stat>", raw=line)
        n = to_int(fields[0], raw=line, what="<n>")
        fields = fields[1:]
    stat_value = to_int(fields[0], raw=line, what="<stat>")
    stat = RegStat(stat_value) if stat_value <= max(RegStat) else RegStat.UNKNOWN
    rest = fields[1:]
    layout = _LAYOUT[domain]
    if domain is Domain.NR5G and _c5greg_without_nssai(rest):
        layout = _LAYOUT[Domain.EPS]

    def field(name: str) -> str | None:
        index = layout.get(name)
        if index is None or index >= len(rest):
            return None
        return rest[index]

    return Registration(
        domain=domain,
        stat=stat,
        lac=opt_hex(field("lac")),
        ci=opt_hex(field("ci")),
        act=opt_int(field("act")),
        reject_cause=opt_int(field("reject_cause")),
        raw=line.strip(),
        cause_type=opt_int(field("cause_type")),
        rac=opt_hex(field("rac")),
        n=n,
    )


def parse_registration_mode(line: str) -> int:
    """The ``<n>`` of a solicited answer (what ``AT+CxREG=<n>`` left in force)."""
    _prefix, body = body_of(line, tuple(PREFIX_DOMAIN))
    fields = split_fields(body, raw=line)
    return to_int(fields[0], raw=line, what="<n>")
