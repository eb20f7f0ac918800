"""Pure parsers of simbank.drivers against tables of real modem answers.

Sources, cited per row:
  MM      ModemManager src/tests/test-modem-helpers.c (CREG/CGREG tables, real devices named)
  27.007  3GPP TS 27.007 syntax (§7.2 +CREG, §10.1.20 +CGREG, §10.1.22 +CEREG, §10.1.42
          +C5GREG, §8.5 +CSQ, §8.69 +CESQ, §7.18 +CLCC, §7.15 +CUSD); rows marked "27.007 form"
          are built from the syntax with fictional values
  24.008  3GPP TS 24.008 Annex H / table 10.5.123 (cause names)
  QUEC    Quectel EC2x/EG9x AT Commands Manual (+QCCID, +QIND, +CEER "CC INFO")
  QLOG    Quectel +QCCID answers in public device logs (Chinese issuers, hex letter, no Luhn)
  SIMCOM  SIM7500/SIM7600 AT Command Manual (+CICCID → +ICCID, +CPIN: NOT READY, +CEER)
  HUAWEI  Huawei ME909s AT Command Interface Specification (^ICCID, ^RSSI, ^HCSQ, ^CEND)
  LEGATO  Sierra Legato AT platform adaptor comment: +CEREG: 2,1,"0001","01A2D001",7
  27.005  3GPP TS 27.005 text mode (+CMTI, +CMGR, +CMGS)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simbank.drivers import parse as p
from simbank.drivers.types import (
    CallDirection,
    CallState,
    Domain,
    Registration,
    RegStat,
    SimStatus,
)
from simbank.errors import ProtocolGarbage

CS, PS, EPS, NR = Domain.CS, Domain.PS, Domain.EPS, Domain.NR5G

# ---------------------------------------------------------------------------------------------
# Registration: line, solicited hint, domain, n, stat, lac, ci, act, rac, cause_type, reject, src
# ---------------------------------------------------------------------------------------------
RegRow = tuple[
    str, bool | None, Domain, int | None, int, str | None, str | None, int | None,
    str | None, int | None, int | None, str,
]  # fmt: skip

# fmt: off
REG_ROWS: list[RegRow] = [
    ("+CREG: 1,3", True, CS, 1, 3, None, None, None, None, None, None, "MM creg1_solicited"),
    ("+CREG: 3", False, CS, None, 3, None, None, None, None, None, None, "MM creg1_unsolicited"),
    ("+CREG: 0,1,84CD,00D30173", True, CS, 0, 1, "84CD", "00D30173", None, None, None, None, "MM Sierra Mercury"),
    ("+CREG: 1,84CD,00D30156", False, CS, None, 1, "84CD", "00D30156", None, None, None, None, "MM Sierra Mercury"),
    ('+CREG: 2,1,"CE00","01CEAD8F"', True, CS, 2, 1, "CE00", "01CEAD8F", None, None, None, None, "MM SE K850i"),
    ('+CREG: 1,"CE00","00005449"', False, CS, None, 1, "CE00", "00005449", None, None, None, None, "MM SE K850i"),
    ("+CREG: 2,0,00,0", True, CS, 2, 0, "00", "0", None, None, None, None, "MM Huawei E160G unregistered"),
    ("+CREG: 2,1,8BE3,2BAF", True, CS, 2, 1, "8BE3", "2BAF", None, None, None, None, "MM Huawei E160G"),
    ("+CREG: 2,8BE3,2BAF", False, CS, None, 2, "8BE3", "2BAF", None, None, None, None, "MM Huawei E160G"),
    ('+CREG: 2,1,"8BE3","00002BAF"', True, CS, 2, 1, "8BE3", "00002BAF", None, None, None, None, "MM SE TM-506"),
    ("+CREG: 2,,", False, CS, None, 2, None, None, None, None, None, None, "MM Novatel XU870"),
    ('+CREG:002,001,"18d8","ffff"', True, CS, 2, 1, "18D8", "FFFF", None, None, None, None, "MM Iridium"),
    ("+CGREG: 1,3", True, PS, 1, 3, None, None, None, None, None, None, "MM cgreg1_solicited"),
    ("+CGREG: 3", False, PS, None, 3, None, None, None, None, None, None, "MM cgreg1_unsolicited"),
    ('+CGREG: 2,1,"8BE3","00002B5D",3', True, PS, 2, 1, "8BE3", "00002B5D", 3, None, None, None, "MM Ericsson F3607gw"),
    ('+CGREG: 1,"8BE3","00002B5D",3', False, PS, None, 1, "8BE3", "00002B5D", 3, None, None, None, "MM Ericsson F3607gw"),
    ('+CGREG: 5,"0502","0404736D",2', False, PS, None, 5, "0502", "0404736D", 2, None, None, None, "MM SE MD400"),
    ('+CGREG: 1,"1422","00000142",3,"00"', False, PS, None, 1, "1422", "00000142", 3, "00", None, None, "MM CGREG with RAC"),
    # 27.007 n=3 forms: <cause_type>,<reject_cause> after <AcT> (after <rac> on +CGREG)
    ('+CREG: 3,3,"00C3","0000A13B",0,0,11', True, CS, 3, 3, "00C3", "0000A13B", 0, None, 0, 11, "27.007 form §7.2 n=3"),
    ('+CREG: 3,"00C3","0000A13B",0,0,11', False, CS, None, 3, "00C3", "0000A13B", 0, None, 0, 11, "27.007 form §7.2 n=3"),
    ('+CGREG: 3,3,"00C3","0000A13B",2,"0A",0,17', True, PS, 3, 3, "00C3", "0000A13B", 2, "0A", 0, 17, "27.007 form §10.1.20 n=3"),
    ('+CGREG: 3,"00C3","0000A13B",2,"0A",0,17', False, PS, None, 3, "00C3", "0000A13B", 2, "0A", 0, 17, "27.007 form §10.1.20 n=3"),
    ("+CEREG: 3,3,,,,0,15", True, EPS, 3, 3, None, None, None, None, 0, 15, "27.007 form §10.1.22 empty location"),
    ('+CEREG: 3,"4E54","0A8C3D01",7,0,15', False, EPS, None, 3, "4E54", "0A8C3D01", 7, None, 0, 15, "27.007 form §10.1.22 n=3"),
    ('+CEREG: 2,1,"0001","01A2D001",7', True, EPS, 2, 1, "0001", "01A2D001", 7, None, None, None, "LEGATO"),
    ('+CEREG: 1,"F2F5","0140589A",7', False, EPS, None, 1, "F2F5", "0140589A", 7, None, None, None, "27.007 form §10.1.22"),
    ('+CEREG: 4,1,"0001","01A2D001",7,,,"00000110","00101100"', True, EPS, 4, 1, "0001", "01A2D001", 7, None, None, None, "27.007 form n=4 PSM timers"),
    ('+CREG: 2,1,"D509","80D413D",7', True, CS, 2, 1, "D509", "80D413D", 7, None, None, None, "QUEC EC25 7-digit E-UTRAN CI"),
    ('+CEREG: 2,5,"A1B2C3","0123ABCD",7', True, EPS, 2, 5, "A1B2C3", "0123ABCD", 7, None, None, None, "27.007 form 3-byte TAC"),
    ('+C5GREG: 2,1,"00A1B2","00000001A2B3C4D5",11,1,"01"', True, NR, 2, 1, "00A1B2", "00000001A2B3C4D5", 11, None, None, None, "27.007 form §10.1.42"),
    ('+C5GREG: 1,"00A1B2","00000001A2B3C4D5",11,1,"01"', False, NR, None, 1, "00A1B2", "00000001A2B3C4D5", 11, None, None, None, "27.007 form §10.1.42"),
    ("+C5GREG: 3,,,,,,0,7", False, NR, None, 3, None, None, None, None, 0, 7, "27.007 form §10.1.42 n=3 denied"),
    ("+C5GREG: 3,3,,,,0,7", True, NR, 3, 3, None, None, None, None, 0, 7, "short form without NSSAI (simulator)"),
    ('+C5GREG: 3,"001A2B","0012ABCD",11,0,15', False, NR, None, 3, "001A2B", "0012ABCD", 11, None, 0, 15, "short form without NSSAI"),
    ('+CEREG: 2,6,"00C3","0000A13B",7', True, EPS, 2, 6, "00C3", "0000A13B", 7, None, None, None, "27.007 form stat 6 SMS only"),
    ("+CEREG: 8", False, EPS, None, 8, None, None, None, None, None, None, "27.007 form stat 8"),
    ("+CEREG: 2,11", True, EPS, 2, 11, None, None, None, None, None, None, "27.007 form stat 11"),
    ("+CREG: 10", False, CS, None, 10, None, None, None, None, None, None, "27.007 form stat 10"),
]
# fmt: on


@pytest.mark.parametrize(
    ("line", "hint", "domain", "n", "stat", "lac", "ci", "act", "rac", "ctype", "reject", "src"),
    REG_ROWS,
    ids=[f"{row[0]} [{row[-1]}]" for row in REG_ROWS],
)
@pytest.mark.parametrize("use_hint", [True, False], ids=["hinted", "guessed"])
def test_registration_forms(
    line: str,
    hint: bool | None,
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
    use_hint: bool,
) -> None:
    reg = p.parse_registration(line, solicited=hint if use_hint else None)
    assert (reg.domain, reg.n, reg.stat, reg.lac, reg.ci, reg.act) == (
        domain,
        n,
        stat,
        lac,
        ci,
        act,
    )
    assert (reg.rac, reg.cause_type, reg.reject_cause) == (rac, ctype, reject)
    assert reg.raw == line


@pytest.mark.parametrize(
    ("line", "stat", "n", "src"),
    [
        # Arrived as URCs but in the solicited form (MM "unsolicited" tests of MD400 and X220D).
        ('+CREG: 2,5,"0502","0404736D"', 5, 2, "MM SE MD400"),
        ("+CGREG: 2,1, 81ED, 1A9CEB", 1, 2, "MM Alcatel X220D, stray spaces"),
    ],
)
def test_solicited_form_recognised_without_hint(line: str, stat: int, n: int, src: str) -> None:
    reg = p.parse_registration(line)
    assert (reg.stat, reg.n) == (stat, n)
    assert reg.ci is not None


def test_samsung_wave_non_numeric_act_is_dropped() -> None:
    # MM Samsung Wave S8500: "+CREG: 2,1,000B,2816, B, C2816" — AcT is not a number.
    reg = p.parse_registration("+CREG: 2,1,000B,2816, B, C2816")
    assert (reg.stat, reg.lac, reg.ci, reg.act) == (RegStat.HOME, "000B", "2816", None)


def test_registration_without_prefix_needs_domain() -> None:
    reg = p.parse_registration('1,"CE00","00005449"', domain=Domain.PS)
    assert (reg.domain, reg.stat, reg.lac) == (Domain.PS, RegStat.HOME, "CE00")
    with pytest.raises(ProtocolGarbage):
        p.parse_registration('1,"CE00","00005449"')


@pytest.mark.parametrize(
    "line", ["+CREG:", "+CREG: ", "+CREG: x", '+CREG: 1,"CE00', "+COPS: 0", "+CREG: ,1", "RING"]
)
def test_registration_garbage(line: str) -> None:
    with pytest.raises(ProtocolGarbage):
        p.parse_registration(line)


def test_registration_mode() -> None:
    assert p.parse_registration_mode('+CEREG: 3,1,"0001","01A2D001",7') == 3


@pytest.mark.parametrize(
    ("stat", "state", "registered", "roaming"),
    [
        (RegStat.NOT_REGISTERED, "not_registered", False, False),
        (RegStat.HOME, "registered_home", True, False),
        (RegStat.SEARCHING, "searching", False, False),
        (RegStat.DENIED, "denied", False, False),
        (RegStat.UNKNOWN, "unknown", False, False),
        (RegStat.ROAMING, "roaming", True, True),
        (RegStat.HOME_SMS_ONLY, "registered_home_sms_only", True, False),
        (RegStat.ROAMING_SMS_ONLY, "roaming_sms_only", True, True),
        (RegStat.EMERGENCY_ONLY, "emergency_only", False, False),
        (RegStat.HOME_CSFB_NOT_PREFERRED, "registered_home_csfb_not_preferred", True, False),
        (RegStat.ROAMING_CSFB_NOT_PREFERRED, "roaming_csfb_not_preferred", True, True),
        (RegStat.RLOS, "rlos_only", False, False),
    ],
)
def test_registration_state_names(
    stat: RegStat, state: str, registered: bool, roaming: bool
) -> None:
    reg = Registration(domain=Domain.EPS, stat=stat, act=7)
    assert (reg.state, reg.registered, reg.roaming) == (state, registered, roaming)
    assert reg.access_tech is not None
    assert reg.access_tech.label == "eutran"


# ---------------------------------------------------------------------------------------------
# Signal
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "dbm", "quality", "ber", "src"),
    [
        ("+CSQ: 31,99", -51, 100, None, "27.007 §8.5 top of scale"),
        ("+CSQ: 0,0", -113, 0, 0, "27.007 §8.5 bottom of scale"),
        ("+CSQ: 99,99", None, None, None, "27.007 §8.5 not known"),
        ("+CSQ: 15,0", -83, 48, 0, "27.007 form"),
        ("+CSQ: 20,99", -73, 65, None, "QUEC EC25 example"),
        ("+CSQ: 100,99", -116, 0, None, "27.007 TD-SCDMA extension"),
        ("+CSQ:27,99", -59, 87, None, "no blank after colon"),
    ],
)
def test_csq(line: str, dbm: int | None, quality: int | None, ber: int | None, src: str) -> None:
    sig = p.parse_csq(line)
    assert (sig.rssi_dbm, sig.quality, sig.ber) == (dbm, quality, ber)


def test_cesq_lte() -> None:
    # SIMCOM / 27.007 §8.69: only E-UTRA values known.
    sig = p.parse_cesq("+CESQ: 99,99,255,255,20,40")
    assert (sig.rssi_dbm, sig.rsrp_dbm, sig.rsrq_db, sig.quality) == (None, -101, -10.0, 41)


def test_cesq_gsm_and_utran() -> None:
    gsm = p.parse_cesq("+CESQ: 40,0,255,255,255,255")
    assert (gsm.rssi_dbm, gsm.ber, gsm.rsrp_dbm) == (-71, 0, None)
    assert gsm.quality == p.quality_from_dbm(-71)
    umts = p.parse_cesq("+CESQ: 99,99,40,30,255,255")
    assert (umts.rscp_dbm, umts.ecno_db, umts.rssi_dbm) == (-81, -9.5, None)


def test_cesq_all_unknown() -> None:
    sig = p.parse_cesq("+CESQ: 99,99,255,255,255,255")
    assert (sig.rssi_dbm, sig.quality, sig.rsrp_dbm, sig.rscp_dbm) == (None, None, None, None)
    with pytest.raises(ProtocolGarbage):
        p.parse_cesq("+CESQ: 99,99,255")


def test_huawei_rssi() -> None:
    assert p.parse_huawei_rssi("^RSSI: 17").rssi_dbm == -79  # HUAWEI ^RSSI, +CSQ scale
    assert p.parse_huawei_rssi("^RSSI:99").rssi_dbm is None


def test_huawei_hcsq() -> None:
    lte = p.parse_hcsq('^HCSQ: "LTE",50,49,160,25')  # HUAWEI ^HCSQ LTE example layout
    assert (lte.rssi_dbm, lte.rsrp_dbm, lte.rsrq_db) == (-71, -92, -7.5)
    assert lte.sinr_db == pytest.approx(11.8)
    wcdma = p.parse_hcsq('^HCSQ: "WCDMA",30,30,58')
    assert (wcdma.rssi_dbm, wcdma.rscp_dbm, wcdma.ecno_db) == (-91, -91, -3.5)
    assert p.parse_hcsq('^HCSQ: "GSM",40').rssi_dbm == -81
    none = p.parse_hcsq('^HCSQ: "NOSERVICE"')
    assert (none.rssi_dbm, none.quality) == (None, 0)
    with pytest.raises(ProtocolGarbage):
        p.parse_hcsq('^HCSQ: "WIMAX",1')


def test_quectel_qind() -> None:
    sig = p.parse_qind_csq('+QIND: "csq",20,99')  # QUEC AT+QINDCFG="csq",1
    assert sig is not None
    assert sig.rssi_dbm == -73
    assert p.parse_qind_csq("+QIND: SMS DONE") is None
    assert p.parse_qind_csq("+QIND: PB DONE") is None
    with pytest.raises(ProtocolGarbage):
        p.parse_qind_csq('+QIND: "csq"')


# ---------------------------------------------------------------------------------------------
# Operator
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "name", "mode", "fmt", "act"),
    [
        ('+COPS: 0,0,"T-Mobile",7', "T-Mobile", 0, 0, 7),  # 27.007 §7.3 form
        ('+COPS: 0,2,"26201",7', "26201", 0, 2, 7),
        ('+COPS: 1,0,"CHINA MOBILE",7', "CHINA MOBILE", 1, 0, 7),
        ('+COPS: 0,0,"Vodafone.de",2', "Vodafone.de", 0, 0, 2),
        ('+COPS: 0,0,"AT&T"', "AT&T", 0, 0, None),
        ("+COPS: 0", None, 0, None, None),  # not registered
        ("+COPS: 2", None, 2, None, None),
    ],
)
def test_cops(line: str, name: str | None, mode: int, fmt: int | None, act: int | None) -> None:
    op = p.parse_cops(line)
    assert (op.name, op.mode, op.format, op.act) == (name, mode, fmt, act)


# ---------------------------------------------------------------------------------------------
# ICCID
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "iccid", "src"),
    [
        ("+CCID: 89014103211118510720", "89014103211118510720", "27.007-style +CCID"),
        ('+CCID: "89014103211118510720"', "89014103211118510720", "quoted +CCID"),
        ("+QCCID: 89860317482032831892", "89860317482032831892", "QLOG"),
        ("+QCCID: 89860439101880931012", "89860439101880931012", "QLOG, 8986 without Luhn"),
        ("+QCCID: 898604071118C0501150", "898604071118C0501150", "QLOG, China Mobile hex letter"),
        ("+ICCID: 8944200011231044047", "8944200011231044047", "SIMCOM AT+CICCID, 19 digits"),
        ("^ICCID: 89883030000005421166", "89883030000005421166", "HUAWEI AT^ICCID?"),
        ('^ICCID: "89883030000005421166"', "89883030000005421166", "HUAWEI quoted"),
        ("89014103211118510720", "89014103211118510720", "SIM800 AT+CCID bare digits"),
        ("+CCID: 8944200011231044047F", "8944200011231044047", "trailing F padding"),
        ("+CCID: 8944200011231044047f", "8944200011231044047", "lower-case padding"),
        ("+CCID: 898600123456789012", "898600123456789012", "18 digits, no check digit"),
    ],
)
def test_iccid_forms(line: str, iccid: str, src: str) -> None:
    assert p.parse_iccid(line) == iccid


@pytest.mark.parametrize(
    "line",
    [
        "+CCID: 1234",
        "+CCID: ",
        "",
        "+CCID: 8901410321111851072X",
        "+CCID: 79014103211118510720",  # not an 89 telecom ICCID
        "+CCID: 890141032111185107201234",  # too long
        "+CMGS: 12",
    ],
)
def test_iccid_garbage(line: str) -> None:
    with pytest.raises(ProtocolGarbage):
        p.parse_iccid(line)


@pytest.mark.parametrize(
    ("line", "iccid"),
    [
        # 27.007 §8.18 READ BINARY of EF_ICCID: nibble-swapped BCD.
        ('+CRSM: 144,0,"98101430121181157002"', "89014103211118510720"),
        ('+CRSM: 144,0,"984402001132014440F7"', "8944200011231044047"),
        ('+CRSM: 144,0,"98991000000000000031"', "89990100000000000013"),
    ],
)
def test_crsm_iccid(line: str, iccid: str) -> None:
    assert p.parse_crsm_iccid(line) == iccid


@pytest.mark.parametrize(
    "line",
    ['+CRSM: 148,4,""', '+CRSM: 106,130,""', '+CRSM: 144,0,"9810143012118115700"', "+CRSM: 144"],
)
def test_crsm_iccid_errors(line: str) -> None:
    with pytest.raises(ProtocolGarbage):
        p.parse_crsm_iccid(line)


def test_luhn() -> None:
    # A wrong check digit is no longer garbage: see test_drivers_iccid.py (checksum warning).
    assert p.luhn_valid("89014103211118510720")
    assert not p.luhn_valid("89014103211118510721")
    assert p.luhn_required("8944200011231044047")
    assert not p.luhn_required("89860439101880931012")
    assert not p.luhn_required("898600123456789012")


# ---------------------------------------------------------------------------------------------
# SIM status, identity
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "status"),
    [
        ("+CPIN: READY", SimStatus.READY),
        ("+CPIN: SIM PIN", SimStatus.PIN),
        ("+CPIN: SIM PUK", SimStatus.PUK),
        ("+CPIN: PH-SIM PIN", SimStatus.PIN),
        ("+CPIN: SIM PIN2", SimStatus.READY),
        ("+CPIN: SIM PUK2", SimStatus.READY),
        ("+CPIN: NOT READY", SimStatus.NOT_READY),  # SIMCOM during SIM init
        ("+CPIN: NOT INSERTED", SimStatus.ABSENT),
        ('+CPIN: "READY"', SimStatus.READY),
        ("+CPIN:READY", SimStatus.READY),
    ],
)
def test_cpin(line: str, status: SimStatus) -> None:
    assert p.parse_cpin(line) is status


def test_cpin_garbage_and_cme() -> None:
    with pytest.raises(ProtocolGarbage):
        p.parse_cpin("+CPIN: MAYBE")
    assert p.sim_status_from_cme(10) is SimStatus.ABSENT
    assert p.sim_status_from_cme(14) is SimStatus.NOT_READY
    assert p.sim_status_from_cme(11) is SimStatus.PIN
    assert p.sim_status_from_cme(12) is SimStatus.PUK
    assert p.sim_status_from_cme(13) is SimStatus.ERROR
    assert p.sim_status_from_cme(None) is SimStatus.ERROR


@pytest.mark.parametrize(
    ("line", "prefix", "value"),
    [
        ("Quectel", "+CGMI", "Quectel"),  # QUEC bare answer
        ("+CGMI: SIMCOM INCORPORATED", "+CGMI", "SIMCOM INCORPORATED"),
        ('"Motorola"', "+CGMI", "Motorola"),  # MM devid table (Motorola ROKR E2)
        ("Manufacturer: huawei", "+CGMI", "huawei"),  # MM devid table (Huawei E1550 ATI)
        ("+CGMM: SIMCOM_SIM7600E-H", "+CGMM", "SIMCOM_SIM7600E-H"),
        ("+GMM: ME909s-120", "+CGMM", "ME909s-120"),
    ],
)
def test_clean_identity(line: str, prefix: str, value: str) -> None:
    assert p.clean_identity(line, prefix) == value


def test_imei_and_imsi() -> None:
    assert p.parse_imei("350000000000001") == "350000000000001"
    assert p.parse_imei('+CGSN: "350000000000001"') == "350000000000001"
    assert p.parse_imei("\n129512359199159,SE393939TS".strip()) == "129512359199159"  # MM Option
    assert p.parse_imei("0x3B0C4B98") is None  # MM C-MOTECH: an ESN, not an IMEI
    assert p.parse_imsi("001010123456789") == "001010123456789"
    assert p.parse_imsi("+CIMI: 001010123456789") == "001010123456789"
    with pytest.raises(ProtocolGarbage):
        p.parse_imsi("ERROR")


# ---------------------------------------------------------------------------------------------
# Calls
# ---------------------------------------------------------------------------------------------
def test_clcc() -> None:
    call = p.parse_clcc('+CLCC: 1,0,2,0,0,"+15550100001",145')
    assert (call.id, call.direction, call.state, call.mode, call.multiparty) == (
        1,
        CallDirection.MOBILE_ORIGINATED,
        CallState.DIALING,
        0,
        False,
    )
    assert (call.number, call.number_type) == ("+15550100001", 145)
    incoming = p.parse_clcc('+CLCC: 2,1,4,0,0,"+15550100002",145,""')
    assert (incoming.direction, incoming.state) == (
        CallDirection.MOBILE_TERMINATED,
        CallState.INCOMING,
    )
    bare = p.parse_clcc("+CLCC: 1,0,3,0,0")
    assert (bare.state, bare.number) == (CallState.ALERTING, None)
    for bad in ("+CLCC: 1,0,9,0,0", "+CLCC: 1,0,0", "+CLCC: 1,2,0,0,0"):
        with pytest.raises(ProtocolGarbage):
            p.parse_clcc(bad)


BRIEF_CAUSES = [1, 3, 8, 16, 17, 18, 19, 21, 22, 27, 28, 31, 34, 38, 41, 42, 44, 47, 50, 55]
BRIEF_CAUSES += [57, 58, 63, 65, 68, 69, 79, 81, 88, 95, 96, 97, 98, 99, 100, 101, 102, 111, 127]


@pytest.mark.parametrize("code", sorted(p.CAUSE_NAMES))
def test_every_annex_h_name_maps_back(code: int) -> None:
    name = p.CAUSE_NAMES[code]
    assert p.cause_from_text(name) == code
    assert p.parse_ceer(f'+CEER: "{name}"').code == code
    assert p.parse_ceer(f'+CEER: "CC INFO","{name}"').code == code


def test_cause_table_covers_the_brief() -> None:
    assert set(BRIEF_CAUSES) <= set(p.CAUSE_NAMES)


@pytest.mark.parametrize(
    ("line", "code", "src"),
    [
        ('+CEER: "CC INFO","Normal call clearing"', 16, "QUEC"),
        ('+CEER: "CC INFO","User busy"', 17, "QUEC"),
        ("+CEER: Normal call clearing", 16, "SIMCOM unquoted"),
        ('+CEER: "Operator determined barring"', 8, "27.007 free text"),
        ("+CEER: No cause information available", None, "SIMCOM after no call"),
        ('+CEER: "CC INFO","Call rejected"', 21, "QUEC"),
        ("+CEER: Call rejected due to feature at the destination", 24, "longest name wins"),
        ("+CEER: Unallocated number", 1, "alias"),
        ("+CEER: Bearer capability not authorised", 57, "British spelling"),
        ("+CEER: 34", 34, "numeric report"),
        ("+CEER: CC,17", 17, "numeric after a tag"),
        ('+CEER: "CC INFO","No user responding"', 18, "QUEC"),
        ("+CEER: NORMAL, UNSPECIFIED", 31, "upper case"),
    ],
)
def test_ceer(line: str, code: int | None, src: str) -> None:
    assert p.parse_ceer(line).code == code


def test_ceer_numeric_gets_name() -> None:
    assert p.parse_ceer("+CEER: 34").text == "No circuit/channel available"


@pytest.mark.parametrize(
    ("line", "code", "duration"),
    [
        ("^CEND: 1,0,104,16", 16, 0),  # HUAWEI: normal clearing
        ("^CEND: 1,12,104,17", 17, 12),
        ("^CEND: 1,0,29", None, 0),  # ended before reaching the network: no cc_cause
    ],
)
def test_cend(line: str, code: int | None, duration: int) -> None:
    assert p.parse_cend(line).code == code
    assert p.parse_cend_duration(line) == duration


# ---------------------------------------------------------------------------------------------
# USSD, SMS
# ---------------------------------------------------------------------------------------------
def test_cusd() -> None:
    reply = p.parse_cusd('+CUSD: 0,"Your balance is 10.00 TEST",15')
    assert (reply.status, reply.text, reply.dcs) == (0, "Your balance is 10.00 TEST", 15)
    assert p.parse_cusd('+CUSD: 1,"1 Balance 2 Bundles",15').status == 1
    assert p.parse_cusd("+CUSD: 4").text is None
    ucs2 = p.parse_cusd('+CUSD: 0,"00420061006C0061006E00630065",72')
    assert ucs2.text == "Balance"
    with pytest.raises(ProtocolGarbage):
        p.parse_cusd('+CUSD: "x"')


def test_cmti_cmgr_cmgs() -> None:
    sms = p.parse_cmti('+CMTI: "SM",3')  # 27.005 §3.4.1
    assert (sms.storage, sms.index) == ("SM", 3)
    assert p.parse_cmti('+CMTI: "ME",12').index == 12
    msg = p.parse_cmgr('+CMGR: "REC UNREAD","+15550100001",,"24/01/02,10:11:12+32"', "Hello")
    assert (msg.status, msg.sender, msg.text) == ("REC UNREAD", "+15550100001", "Hello")
    assert msg.timestamp == datetime(2024, 1, 2, 10, 11, 12, tzinfo=timezone(timedelta(hours=8)))
    assert p.parse_cmgs("+CMGS: 42") == 42
    assert p.parse_scts('"24/13/02,10:11:12+00"') is None
    with pytest.raises(ProtocolGarbage):
        p.parse_cmti('+CMTI: "SM"')


# ---------------------------------------------------------------------------------------------
# Property: parsers raise nothing but ProtocolGarbage, whatever the modem sends.
# ---------------------------------------------------------------------------------------------
LINE_PARSERS: dict[str, Callable[[str], object]] = {
    "+CREG": p.parse_registration,
    "+CGREG": p.parse_registration,
    "+CEREG": p.parse_registration,
    "+C5GREG": p.parse_registration,
    "+CSQ": p.parse_csq,
    "+CESQ": p.parse_cesq,
    "^RSSI": p.parse_huawei_rssi,
    "^HCSQ": p.parse_hcsq,
    "+QIND": p.parse_qind_csq,
    "+COPS": p.parse_cops,
    "+CCID": p.parse_iccid,
    "+CRSM": p.parse_crsm_iccid,
    "+CPIN": p.parse_cpin,
    "+CIMI": p.parse_imsi,
    "+CGSN": p.parse_imei,
    "+CLCC": p.parse_clcc,
    "+CEER": p.parse_ceer,
    "^CEND": p.parse_cend,
    "+CUSD": p.parse_cusd,
    "+CMTI": p.parse_cmti,
    "+CMGS": p.parse_cmgs,
}

AT_ALPHABET = st.sampled_from(list('0123456789,"ABCFabcf +-:;^ \t\x00é²٣'))


@settings(max_examples=300)
@given(
    prefix=st.sampled_from(sorted(LINE_PARSERS)),
    body=st.one_of(st.text(max_size=60), st.text(alphabet=AT_ALPHABET, max_size=60)),
    noise=st.sampled_from(["", ":", ": ", " "]),
)
def test_parsers_raise_only_protocol_garbage(prefix: str, body: str, noise: str) -> None:
    parser = LINE_PARSERS[prefix]
    # Any exception other than ProtocolGarbage escapes suppress() and fails the test.
    for line in (prefix + noise + body, body):
        with contextlib.suppress(ProtocolGarbage):
            parser(line)
    for solicited in (True, False):
        with contextlib.suppress(ProtocolGarbage):
            p.parse_registration(prefix + noise + body, solicited=solicited)
    with contextlib.suppress(ProtocolGarbage):
        p.parse_cmgr(prefix + noise + body, body)


@given(st.text(max_size=80))
def test_cause_from_text_total(text: str) -> None:
    code = p.cause_from_text(text)
    assert code is None or code in p.CAUSE_NAMES
