"""Huawei ^HCSQ as real modems print it (issue 11 item 7: level 0 is a value, not "unknown").

Sources:
  MM-T  ModemManager src/plugins/huawei/tests/test-modem-helpers-huawei.c, hcsq_tests[]
        (the six real formats: quoted, unquoted, no blank, NOSERVICE both ways)
  MM-S  ModemManager src/plugins/huawei/mm-broadband-modem-huawei.c get_rssi_dbm,
        get_rsrp_dbm, get_sinr_db, get_rsrq_db, get_ecio_db (the scales)
  HW    Huawei ME909s AT Command Interface Specification §^HCSQ: 0 is the lowest level
        ("< floor"), 255 is "not known or not detectable"
"""

from __future__ import annotations

import pytest

from simbank.drivers.parse.signal import parse_hcsq

# line, rssi, rsrp, sinr, rsrq, rscp, ecno, quality, source
# fmt: off
HCSQ_ROWS = [
    ('^HCSQ:"LTE",30,19,66,0', -91, -122, -7.0, -20.0, None, None, 19, "MM-T LTE, rsrq 0 (no blank)"),
    ('^HCSQ: "WCDMA",30,30,58', -91, None, None, None, -91, -3.5, 35, "MM-T WCDMA"),
    ('^HCSQ: "GSM",36,255', -85, None, None, None, None, None, 45, "MM-T GSM, 255 ignored"),
    ("^HCSQ: LTE,33,40,135,11", -88, -101, 6.8, -14.5, None, None, 41, "MM-T unquoted sysmode"),
    ('^HCSQ: "NOSERVICE"', None, None, None, None, None, None, 0, "MM-T NOSERVICE quoted"),
    ("^HCSQ: NOSERVICE", None, None, None, None, None, None, 0, "MM-T NOSERVICE unquoted"),
    # Level 0 is the bottom of each scale (MM-S, HW), never "unknown":
    ('^HCSQ: "LTE",0,0,0,0', -121, -141, -20.2, -20.0, None, None, 0, "HW all levels 0"),
    ('^HCSQ: "WCDMA",0,0,0', -121, None, None, None, -121, -32.5, 0, "HW WCDMA levels 0"),
    ('^HCSQ: "LTE",96,97,251,34', -25, -44, 30.0, -3.0, None, None, 100, "HW top of every scale"),
    # 255 is the only "not known"; LTE without RSRP falls back to RSSI for the quality.
    ('^HCSQ: "LTE",40,255,255,255', -81, None, None, None, None, None, 52, "HW 255 = not known"),
]
# fmt: on


@pytest.mark.parametrize(
    ("line", "rssi", "rsrp", "sinr", "rsrq", "rscp", "ecno", "quality", "src"),
    HCSQ_ROWS,
    ids=[r[-1] for r in HCSQ_ROWS],
)
def test_hcsq_real_formats(
    line: str,
    rssi: int | None,
    rsrp: int | None,
    sinr: float | None,
    rsrq: float | None,
    rscp: int | None,
    ecno: float | None,
    quality: int | None,
    src: str,
) -> None:
    sig = parse_hcsq(line)
    assert (sig.rssi_dbm, sig.rsrp_dbm, sig.rscp_dbm) == (rssi, rsrp, rscp)
    assert sig.sinr_db == (None if sinr is None else pytest.approx(sinr))
    assert sig.rsrq_db == (None if rsrq is None else pytest.approx(rsrq))
    assert sig.ecno_db == (None if ecno is None else pytest.approx(ecno))
    assert sig.quality == quality
