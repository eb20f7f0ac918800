"""+CREG / +CGREG / +CEREG / +C5GREG parsing, solicited and unsolicited (27.007 §7.2, §10.1.20,
§10.1.22, §10.1.42).

Solicited answers start with ``<n>``; unsolicited reports start with ``<stat>``. When the caller
does not say which it is, we decide like ModemManager's ``mm_3gpp_parse_creg_response``: a
``<stat>`` is always a short unquoted decimal, while the field after the first one in an
unsolicited report is a LAC/TAC (quoted, hex, 3+ digits, or empty). The fields after
``<stat>`` are then placed by domain and count (``_layout``), which covers every layout in
ModemManager's CREG/CGREG/CEREG/C5GREG tables, the 27.007 ``n=3`` cause fields and the
``n=4/5`` PSM timers.
"""

from __future__ import annotations

from simbank.drivers.parse.fields import (
    body_of,
    is_decimal,
    is_quoted,
    opt_hex,
    opt_int,
    split_fields,
    to_int,
    unquote,
)
from simbank.drivers.types import Domain, Registration, RegStat
from simbank.errors import ProtocolGarbage

PREFIX_DOMAIN: dict[str, Domain] = {
    "+CREG": Domain.CS,
    "+CGREG": Domain.PS,
    "+CEREG": Domain.EPS,
    "+C5GREG": Domain.NR5G,
}

# Position of each optional field after <stat>. Which layout applies depends on the domain and
# on how many fields follow <stat> (see _layout): the same count means different things per
# command, and some modems use layouts 27.007 does not list (ModemManager creg_regex[]).
Layout = dict[str, int]
_BASIC: Layout = {"lac": 0, "ci": 1, "act": 2}
# 27.007 n=3 (+CREG, +CEREG, and +CGREG without <rac>):
#   <stat>,[<lac>],[<ci>],[<AcT>],<cause_type>,<reject_cause>[,PSM timers on +CEREG n=4/5]
_WITH_CAUSE: Layout = {**_BASIC, "cause_type": 3, "reject_cause": 4}
# +CREG "ETSI 27.007 v9.20 CREG=2 unsolicited with RAC" and +CGREG n=2: ...,<AcT>,<rac>
_RAC_LAST: Layout = {**_BASIC, "rac": 3}
# +CGREG n=3: <stat>,[<lac>],[<ci>],[<AcT>],[<rac>],<cause_type>,<reject_cause>
_PS_WITH_CAUSE: Layout = {**_RAC_LAST, "cause_type": 4, "reject_cause": 5}
# +CEREG "27.007 v8.6 with RAC" (Novatel E362, MM test_cereg2_novatel_lte_*):
#   <stat>,<tac>,<rac>,<ci>,<AcT>
_EPS_RAC: Layout = {"lac": 0, "rac": 1, "ci": 2, "act": 3}
# +C5GREG: <stat>,[<tac>],[<ci>],[<AcT>],[<Allowed_NSSAI_length>],[<Allowed_NSSAI>]
#          [,<cause_type>,<reject_cause>]
_NR5G: Layout = {**_BASIC, "cause_type": 5, "reject_cause": 6}

_MAX_RAC_HEX = 2  # <rac>: one octet


def _c5greg_without_nssai(rest: list[str]) -> bool:
    """``<tac>,<ci>,<AcT>,<cause_type>,<reject_cause>``: +C5GREG with the NSSAI fields left out.

    27.007 puts ``<Allowed_NSSAI_length>,<Allowed_NSSAI>`` (a quoted string) before the cause;
    some implementations (our simulator among them) omit both. Five fields whose last is an
    unquoted number and whose fourth is a cause type (0/1) can only be that short form.
    """
    return (
        len(rest) == 5 and rest[3] in ("0", "1") and not is_quoted(rest[4]) and is_decimal(rest[4])
    )


def _is_rac(field: str) -> bool:
    """A routing area code: one octet, 1-2 hex digits (quoted or not)."""
    value = unquote(field)
    return 0 < len(value) <= _MAX_RAC_HEX and opt_hex(value) is not None


def _eps_rac_form(rest: list[str]) -> bool:
    """``<tac>,<rac>,<ci>,<AcT>``: four fields after <stat> whose second is a one-octet RAC."""
    return len(rest) == 4 and _is_rac(rest[1]) and opt_int(rest[3]) is not None


def _layout(domain: Domain, rest: list[str]) -> Layout:
    """The field positions for ``rest`` (the fields after <stat>) of a ``domain`` report."""
    count = len(rest)
    if domain is Domain.CS:
        return _RAC_LAST if count == 4 and _is_rac(rest[3]) else _WITH_CAUSE
    if domain is Domain.PS:
        return _WITH_CAUSE if count == 5 else _PS_WITH_CAUSE
    if domain is Domain.EPS:
        return _EPS_RAC if _eps_rac_form(rest) else _WITH_CAUSE
    return _WITH_CAUSE if _c5greg_without_nssai(rest) else _NR5G


def _is_padded(field: str) -> bool:
    """``002``: a number written with leading zeros (Iridium pads every integer)."""
    return len(field) > 1 and field.startswith("0")


def looks_like_stat(field: str, *, padded: bool = False) -> bool:
    """A ``<stat>`` is an unquoted decimal 0..11 of at most two digits.

    ``padded``: the line pads its integers with zeros (Iridium ``+CREG:002,001,…``, MM
    ``+CGREG:002,0011,…``), so any length is fine. Otherwise a longer number is a LAC/TAC
    (``+CREG: 1,0001,0010,0`` is a URC; ModemManager item_is_lac_not_stat).
    """
    if is_quoted(field) or not is_decimal(field) or int(field) > max(RegStat):
        return False
    return padded or len(field) <= 2


def is_solicited(fields: list[str]) -> bool:
    """Guess whether fields (prefix removed) start with ``<n>`` (answer) or ``<stat>`` (URC)."""
    if len(fields) == 1:
        return False
    return is_decimal(fields[0]) and looks_like_stat(fields[1], padded=_is_padded(fields[0]))


def _location(field: str | None) -> str | None:
    """A LAC/TAC/CI/RAC: hex, or ``None`` when empty or garbled (Gobi 1000 ``  0 5``)."""
    if field is None or " " in unquote(field):
        return None
    return opt_hex(field)


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
    layout = _layout(domain, rest)

    def field(name: str) -> str | None:
        index = layout.get(name)
        if index is None or index >= len(rest):
            return None
        return rest[index]

    return Registration(
        domain=domain,
        stat=stat,
        lac=_location(field("lac")),
        ci=_location(field("ci")),
        act=opt_int(field("act")),
        reject_cause=opt_int(field("reject_cause")),
        raw=line.strip(),
        cause_type=opt_int(field("cause_type")),
        rac=_location(field("rac")),
        n=n,
    )


def parse_registration_mode(line: str) -> int:
    """The ``<n>`` of a solicited answer (what ``AT+CxREG=<n>`` left in force)."""
    _prefix, body = body_of(line, tuple(PREFIX_DOMAIN))
    fields = split_fields(body, raw=line)
    return to_int(fields[0], raw=line, what="<n>")
