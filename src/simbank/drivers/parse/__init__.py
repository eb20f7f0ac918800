"""All pure AT-answer parsers of the drivers in one import.

Each parser takes one line (with its prefix) and returns a typed value from
:mod:`simbank.drivers.types`, or raises :class:`~simbank.errors.ProtocolGarbage` — never any
other exception. The code lives in one module per topic.
"""

from simbank.drivers.parse.calls import (
    CAUSE_NAMES,
    cause_from_text,
    parse_ceer,
    parse_cend,
    parse_cend_duration,
    parse_clcc,
)
from simbank.drivers.parse.identity import (
    clean_identity,
    luhn_required,
    luhn_valid,
    normalise_iccid,
    parse_cops,
    parse_cpin,
    parse_crsm_iccid,
    parse_iccid,
    parse_imei,
    parse_imsi,
    sim_status_from_cme,
    swap_bcd,
)
from simbank.drivers.parse.messaging import (
    parse_cmgr,
    parse_cmgs,
    parse_cmti,
    parse_cusd,
    parse_scts,
)
from simbank.drivers.parse.registration import (
    PREFIX_DOMAIN,
    is_solicited,
    parse_registration,
    parse_registration_mode,
)
from simbank.drivers.parse.signal import (
    csq_rssi_dbm,
    parse_cesq,
    parse_csq,
    parse_hcsq,
    parse_huawei_rssi,
    parse_qind_csq,
    quality_from_dbm,
)

__all__ = [
    "CAUSE_NAMES",
    "PREFIX_DOMAIN",
    "cause_from_text",
    "clean_identity",
    "csq_rssi_dbm",
    "is_solicited",
    "luhn_required",
    "luhn_valid",
    "normalise_iccid",
    "parse_ceer",
    "parse_cend",
    "parse_cend_duration",
    "parse_cesq",
    "parse_clcc",
    "parse_cmgr",
    "parse_cmgs",
    "parse_cmti",
    "parse_cops",
    "parse_cpin",
    "parse_crsm_iccid",
    "parse_csq",
    "parse_cusd",
    "parse_hcsq",
    "parse_huawei_rssi",
    "parse_iccid",
    "parse_imei",
    "parse_imsi",
    "parse_qind_csq",
    "parse_registration",
    "parse_registration_mode",
    "parse_scts",
    "quality_from_dbm",
    "sim_status_from_cme",
    "swap_bcd",
]
