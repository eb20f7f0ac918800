"""Every registration layout real modems use (issue 11 item 7: +CEREG with the RAC field).

Sources, cited per row:
  MM     ModemManager src/tests/test-modem-helpers.c, the test_creg*/cgreg*/cereg*/c5greg*
         functions (name given; "sol" / "unsol" = the solicited flag MM tests the line with)
  GAMMU  gammu tests/at-creg/*.dump and tests/at-creg-corner/*.dump (file given)
  E2     modem-realism.md E2: docomo n=3 report (grade U: provenance unresolved)
  27.007 rows built from the TS 27.007 syntax with fictional values
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simbank.drivers.parse.registration import parse_registration
from simbank.drivers.types import Domain
from simbank.errors import ProtocolGarbage

CS, PS, EPS, NR = Domain.CS, Domain.PS, Domain.EPS, Domain.NR5G

Row = tuple[
    str, bool, Domain, int | None, int, str | None, str | None, int | None, str | None,
    int | None, int | None, str,
]  # fmt: skip

# line, solicited, domain, n, stat, lac, ci, act, rac, cause_type, reject_cause, source
# fmt: off
ROWS: list[Row] = [
    ("+CREG: 11", False, CS, None, 11, None, None, None, None, None, None, "MM creg1_multidigit_stat_unsolicited"),
    ('+CREG: 11,"33FE","a3fb477"', False, CS, None, 11, "33FE", "A3FB477", None, None, None, None, "MM creg2_multidigit_stat_unsolicited"),
    ("+CREG: 1,1,84CD,00D30173", True, CS, 1, 1, "84CD", "00D30173", None, None, None, None, "MM creg2_mercury_solicited"),
    ("+CREG:2,1,0001,0010", True, CS, 2, 1, "0001", "0010", None, None, None, None, "MM creg2_no_leading_zeros_solicited"),
    ('+CREG:002,001,"0001","0010"', True, CS, 2, 1, "0001", "0010", None, None, None, None, "MM creg2_leading_zeros_solicited"),
    ("+CREG: 1,0001,0010,0", False, CS, None, 1, "0001", "0010", 0, None, None, None, "MM creg2_no_leading_zeros_unsolicited"),
    ('+CREG: 001,"0001","0010",000', False, CS, None, 1, "0001", "0010", 0, None, None, None, "MM creg2_leading_zeros_unsolicited"),
    ("+CREG: 10,0001,0010,0", False, CS, None, 10, "0001", "0010", 0, None, None, None, "MM creg2_multidigit_stat_no_leading_zeros_unsolicited"),
    ('+CREG: 0011,"0001","0010",000', False, CS, None, 11, "0001", "0010", 0, None, None, None, "MM creg2_multidigit_stat_leading_zeros_unsolicited"),
    ('+CREG: 2,6,"8B37","0A265185",7', True, CS, 2, 6, "8B37", "0A265185", 7, None, None, None, "MM creg2_ublox_solicited"),
    ('+CREG: 6,"8B37","0A265185",7', False, CS, None, 6, "8B37", "0A265185", 7, None, None, None, "MM creg2_ublox_unsolicited"),
    ("+CREG: 2,1,  0 5, 2715", True, CS, 2, 1, None, "2715", None, None, None, None, "MM creg2_gobi_weird_solicited (garbled LAC dropped)"),
    ("+CREG: 2,1,4CA,81DE445", True, CS, 2, 1, "4CA", "81DE445", None, None, None, None, "GAMMU at-creg/huawei.dump"),
    ('+CREG: 0,1,"5E25","605F",2', True, CS, 0, 1, "5E25", "605F", 2, None, None, None, "GAMMU at-creg/telit.dump"),
    ('+CREG: 2,5,"2AF5","0B88E350",2', True, CS, 2, 5, "2AF5", "0B88E350", 2, None, None, None, "GAMMU at-creg/sierra312u.dump"),
    ('+CREG: 2,1,"","605F"', True, CS, 2, 1, None, "605F", None, None, None, None, "GAMMU at-creg-corner/empty-lac.dump"),
    ('+CGREG: 11,"B092","00000697",3,"00"', False, PS, None, 11, "B092", "00000697", 3, "00", None, None, "MM cgreg2_multidigit_stat_with_rac_unsolicited"),
    ('+CGREG: 1,"1422","00000142",3,"00"', False, PS, None, 1, "1422", "00000142", 3, "00", None, None, "MM cgreg2_unsolicited_with_rac"),
    ("+CGREG:2,10,ebbd,f025", True, PS, 2, 10, "EBBD", "F025", None, None, None, None, "MM cgreg2_multidigit_stat_no_leading_zeros_solicited"),
    ('+CGREG:002,0011,"0f0d","14c3"', True, PS, 2, 11, "0F0D", "14C3", None, None, None, None, "MM cgreg2_multidigit_stat_leading_zeros_solicited"),
    ('+CGREG: 2, 1, "0426", "F00F"', True, PS, 2, 1, "0426", "F00F", None, None, None, None, "MM cgreg2_thuraya_solicited"),
    ('+CGREG: 1, "0426", "F00F"', False, PS, None, 1, "0426", "F00F", None, None, None, None, "MM cgreg2_thuraya_unsolicited"),
    ("+CEREG: 1,3", True, EPS, 1, 3, None, None, None, None, None, None, "MM cereg1_solicited"),
    ("+CEREG: 3", False, EPS, None, 3, None, None, None, None, None, None, "MM cereg1_unsolicited"),
    ("+CEREG: 2,1, 1F00, 79D903 ,7", True, EPS, 2, 1, "1F00", "79D903", 7, None, None, None, "MM cereg2_solicited"),
    ("+CEREG: 1, 1F00, 79D903 ,7", False, EPS, None, 1, "1F00", "79D903", 7, None, None, None, "MM cereg2_unsolicited"),
    ('+CEREG: 2,10,"8d83","671f98a",7', True, EPS, 2, 10, "8D83", "671F98A", 7, None, None, None, "MM cereg2_multidigit_stat_solicited"),
    # The five-field layouts with a RAC between TAC and CI (Novatel E362 and others):
    ("+CEREG: 2,10, 2CA8, 20 ,B5583D ,7", True, EPS, 2, 10, "2CA8", "B5583D", 7, "20", None, None, "MM cereg2_multidigit_stat_with_rac_solicited"),
    ("+CEREG: 11, 78FE, 20 ,14419E ,7", False, EPS, None, 11, "78FE", "14419E", 7, "20", None, None, "MM cereg2_multidigit_stat_with_rac_unsolicited"),
    ("+CEREG: 2,1, 1F00, 20 ,79D903 ,7", True, EPS, 2, 1, "1F00", "79D903", 7, "20", None, None, "MM cereg2_novatel_lte_solicited"),
    ("+CEREG: 1, 1F00, 20 ,79D903 ,7", False, EPS, None, 1, "1F00", "79D903", 7, "20", None, None, "MM cereg2_novatel_lte_unsolicited"),
    ("+CEREG: 2, 0001, 00000100, 7", False, EPS, None, 2, "0001", "00000100", 7, None, None, None, "MM cereg2_altair_lte_unsolicited"),
    ("+C5GREG: 1,3", True, NR, 1, 3, None, None, None, None, None, None, "MM c5greg1_solicited"),
    ("+C5GREG: 1, 10", True, NR, 1, 10, None, None, None, None, None, None, "MM c5greg1_multidigit_stat_solicited"),
    ("+C5GREG: 3", False, NR, None, 3, None, None, None, None, None, None, "MM c5greg1_unsolicited"),
    ("+C5GREG: 2,1,1F00,79D903,11,6,ABCDEF", True, NR, 2, 1, "1F00", "79D903", 11, None, None, None, "MM c5greg2_solicited"),
    ("+C5GREG: 1,1F00,79D903,11,6,ABCDEF", False, NR, None, 1, "1F00", "79D903", 11, None, None, None, "MM c5greg2_unsolicited"),
    # n=3: <cause_type>,<reject_cause> reach the Registration.
    ('+CEREG: 3,3,"124A","02ED0202",7,0,0', True, EPS, 3, 3, "124A", "02ED0202", 7, None, 0, 0, "E2 docomo denied, cause 0"),
    ('+CEREG: 3,"124A","02ED0202",7,0,0', False, EPS, None, 3, "124A", "02ED0202", 7, None, 0, 0, "E2 as a URC"),
    ('+CEREG: 3,3,"124A","02ED0202",7,0,15', True, EPS, 3, 3, "124A", "02ED0202", 7, None, 0, 15, "27.007 §10.1.22 n=3, #15"),
    ('+CGREG: 3,"00C3","0000A13B",2,0,7', False, PS, None, 3, "00C3", "0000A13B", 2, None, 0, 7, "non-standard: +CGREG n=3 with the <rac> field left out"),
    ('+CGREG: 3,3,"00C3","0000A13B",2,,0,7', True, PS, 3, 3, "00C3", "0000A13B", 2, None, 0, 7, "27.007 n=3 +CGREG empty <rac>"),
    ('+CREG: 3,"00C3","0000A13B",0,1,11', False, CS, None, 3, "00C3", "0000A13B", 0, None, 1, 11, "27.007 n=3 vendor cause type"),
    ('+CEREG: 5,3,"124A","02ED0202",7,0,11,"00000110","00101100"', True, EPS, 5, 3, "124A", "02ED0202", 7, None, 0, 11, "27.007 n=5 with PSM timers"),
]
# fmt: on


@pytest.mark.parametrize(
    ("line", "sol", "domain", "n", "stat", "lac", "ci", "act", "rac", "ctype", "reject", "src"),
    ROWS,
    ids=[r[-1] for r in ROWS],
)
@pytest.mark.parametrize("told", [True, False], ids=["told", "guessed"])
def test_real_registration_layouts(
    line: str,
    sol: bool,
    domain: Domain,
    n: int | None,
    stat: int,
    lac: str | None,
    ci: str | None,
    act: int | None,
    rac: str | None,
    ctype: int | None,
    reject: int | None,
    src: str,
    told: bool,
) -> None:
    reg = parse_registration(line, solicited=sol if told else None)
    got = (reg.domain, reg.n, reg.stat, reg.lac, reg.ci, reg.act, reg.rac)
    assert got == (domain, n, stat, lac, ci, act, rac)
    assert (reg.cause_type, reg.reject_cause) == (ctype, reject)


@pytest.mark.parametrize(
    ("line", "n", "stat", "lac", "ci", "act", "src"),
    [
        # Arrive as URCs but in the solicited layout: only the fields tell.
        ("+CEREG: 1, 2, 0001, 00000100, 7", 1, 2, "0001", "00000100", 7, "MM cereg2_altair_lte_solicited"),
        ("+CREG: 2,11,003F,8FE3, B, C2816", 2, 11, "003F", "8FE3", None, "MM creg2_s8500_wave_multidigit_stat_unsolicited"),
        ('+CREG: 2,5,"0502","0404736D"', 2, 5, "0502", "0404736D", None, "MM creg2_md400_unsolicited"),
    ],
)  # fmt: skip
def test_solicited_layout_in_a_urc(
    line: str, n: int, stat: int, lac: str, ci: str, act: int | None, src: str
) -> None:
    reg = parse_registration(line)
    assert (reg.n, reg.stat, reg.lac, reg.ci, reg.act) == (n, stat, lac, ci, act)


@pytest.mark.parametrize(
    "line",
    ['+CREG: 2,1,"0B,"0100701",7', '+CREG: 2,1,"5E25'],
    ids=["GAMMU at-creg-corner/mismatched-quotes.dump", "GAMMU at-creg-corner/single-quote.dump"],
)
def test_broken_quotes_are_garbage(line: str) -> None:
    with pytest.raises(ProtocolGarbage):
        parse_registration(line)


FIELD = st.one_of(
    st.integers(0, 13).map(str),
    st.text(alphabet="0123456789ABCDEF", min_size=1, max_size=8),
    st.text(alphabet="0123456789ABCDEF", max_size=8).map(lambda s: f'"{s}"'),
    st.just(""),
    st.text(max_size=4),
)


@given(
    prefix=st.sampled_from(["+CREG", "+CGREG", "+CEREG", "+C5GREG"]),
    fields=st.lists(FIELD, min_size=0, max_size=10),
    solicited=st.sampled_from([True, False, None]),
)
def test_any_field_list_parses_or_is_garbage(
    prefix: str, fields: list[str], solicited: bool | None
) -> None:
    line = f"{prefix}: {','.join(fields)}"
    with contextlib.suppress(ProtocolGarbage):
        reg = parse_registration(line, solicited=solicited)
        assert reg.raw == line.strip()
