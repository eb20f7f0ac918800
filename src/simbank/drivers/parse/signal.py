"""Signal reports: +CSQ, +CESQ (27.007 §8.5, §8.69), Huawei ^RSSI / ^HCSQ, Quectel +QIND "csq"."""

from __future__ import annotations

from simbank.drivers.parse.fields import body_of, opt_int, split_fields, to_int, unquote
from simbank.drivers.types import Signal
from simbank.errors import ProtocolGarbage

_RSSI_MIN_DBM = -113
_RSSI_MAX_DBM = -51


def csq_rssi_dbm(rssi: int) -> int | None:
    """27.007 +CSQ ``<rssi>`` → dBm: 0 → -113 (or less), 31 → -51 (or more), 99 unknown.

    100..191 is the TD-SCDMA extension (100 → -116 dBm ... 191 → -25 dBm).
    """
    if 0 <= rssi <= 31:
        return _RSSI_MIN_DBM + 2 * rssi
    if 100 <= rssi <= 191:
        return rssi - 216
    return None


def quality_from_dbm(dbm: int | None) -> int | None:
    """A 0..100 % figure from an RSSI in dBm, linear over the +CSQ range -113..-51 dBm."""
    if dbm is None:
        return None
    span = _RSSI_MAX_DBM - _RSSI_MIN_DBM
    return max(0, min(100, round((dbm - _RSSI_MIN_DBM) * 100 / span)))


def quality_from_rsrp(rsrp_dbm: int | None) -> int | None:
    """A 0..100 % figure from LTE RSRP, linear over -140..-44 dBm (27.007 +CESQ range)."""
    if rsrp_dbm is None:
        return None
    return max(0, min(100, round((rsrp_dbm + 140) * 100 / 96)))


def _ber(value: int | None) -> int | None:
    return value if value is not None and 0 <= value <= 7 else None


def parse_csq(line: str) -> Signal:
    """``+CSQ: <rssi>,<ber>``."""
    _prefix, body = body_of(line, ("+CSQ",))
    fields = split_fields(body, raw=line)
    rssi = to_int(fields[0], raw=line, what="<rssi>")
    ber = opt_int(fields[1]) if len(fields) > 1 else None
    dbm = csq_rssi_dbm(rssi)
    return Signal(rssi_dbm=dbm, quality=quality_from_dbm(dbm), raw=line.strip(), ber=_ber(ber))


def parse_cesq(line: str) -> Signal:
    """``+CESQ: <rxlev>,<ber>,<rscp>,<ecno>,<rsrq>,<rsrp>`` (255 / 99 = not known)."""
    _prefix, body = body_of(line, ("+CESQ",))
    fields = split_fields(body, raw=line)
    if len(fields) < 6:
        raise ProtocolGarbage("+CESQ needs 6 fields", raw=line)
    rxlev, ber, rscp, ecno, rsrq, rsrp = (
        to_int(f, raw=line, what="+CESQ field") for f in fields[:6]
    )
    rssi_dbm = rxlev - 111 if 0 <= rxlev <= 63 else None  # 0: < -110 dBm, 63: >= -48 dBm
    rscp_dbm = rscp - 121 if 0 <= rscp <= 96 else None  # 0: < -120 dBm, 96: >= -25 dBm
    ecno_db = -24.5 + ecno / 2 if 0 <= ecno <= 49 else None  # 0: < -24 dB, 49: >= 0 dB
    rsrq_db = -20 + rsrq / 2 if 0 <= rsrq <= 34 else None  # 0: < -19.5 dB, 34: >= -3 dB
    rsrp_dbm = rsrp - 141 if 0 <= rsrp <= 97 else None  # 0: < -140 dBm, 97: >= -44 dBm
    quality = quality_from_rsrp(rsrp_dbm)
    if quality is None and rscp_dbm is not None:
        quality = max(0, min(100, round((rscp_dbm + 120) * 100 / 95)))
    if quality is None:
        quality = quality_from_dbm(rssi_dbm)
    return Signal(
        rssi_dbm=rssi_dbm,
        quality=quality,
        raw=line.strip(),
        ber=_ber(ber),
        rsrp_dbm=rsrp_dbm,
        rsrq_db=rsrq_db,
        rscp_dbm=rscp_dbm,
        ecno_db=ecno_db,
    )


def parse_huawei_rssi(line: str) -> Signal:
    """Huawei ``^RSSI: <rssi>`` (same scale as +CSQ)."""
    _prefix, body = body_of(line, ("^RSSI",))
    rssi = to_int(split_fields(body, raw=line)[0], raw=line, what="<rssi>")
    dbm = csq_rssi_dbm(rssi)
    return Signal(rssi_dbm=dbm, quality=quality_from_dbm(dbm), raw=line.strip())


HCSQ_UNKNOWN = 255  # the only "not known" value of every ^HCSQ field


def _hcsq_level(value: int | None, top: int) -> int | None:
    """A ^HCSQ level 0..``top``; 255 (not known), absent or out of range → ``None``."""
    if value is None or not 0 <= value <= top:
        return None
    return value


def _hcsq_dbm(value: int | None, floor: int, top: int) -> int | None:
    """Huawei ^HCSQ level in 1 dB steps: 0 means below ``floor`` (reported as floor - 1)."""
    level = _hcsq_level(value, top)
    return None if level is None else floor - 1 + level


def _hcsq_half_db(value: int | None, floor: float, top: int) -> float | None:
    """A level in 0.5 dB steps: 0 → ``floor`` - 0.5 (below the floor), ``top`` → the ceiling."""
    level = _hcsq_level(value, top)
    return None if level is None else floor - 0.5 + level / 2


def parse_hcsq(line: str) -> Signal:
    """Huawei ``^HCSQ: <sysmode>[,<v1>[,<v2>[,<v3>[,<v4>]]]]`` (Huawei ME909s AT manual §^HCSQ).

    GSM: rssi. WCDMA / TD-SCDMA: rssi, rscp, ecio. LTE: rssi, rsrp, sinr, rsrq. NOSERVICE:
    nothing. The sysmode may be quoted or not. Every level starts at 0 (the lowest valid
    value, "below the floor"); only 255 means not known. Scales as ModemManager's
    mm-broadband-modem-huawei.c (get_rssi_dbm, get_rsrp_dbm, get_sinr_db, get_rsrq_db,
    get_ecio_db): rssi/rscp 0..96 → -121 + v dBm, rsrp 0..97 → -141 + v dBm, sinr 0..251 →
    -20.2 + v/5 dB, rsrq 0..34 → -20 + v/2 dB, ecio 0..65 → -32.5 + v/2 dB.
    """
    _prefix, body = body_of(line, ("^HCSQ",))
    fields = split_fields(body, raw=line)
    mode = unquote(fields[0]).upper()
    values = [opt_int(f) for f in fields[1:]]
    values += [None] * (4 - len(values))
    raw = line.strip()
    if mode == "NOSERVICE":
        return Signal(rssi_dbm=None, quality=0, raw=raw)
    if mode not in {"GSM", "WCDMA", "LTE", "TD-SCDMA", "CDMA", "EVDO"}:
        raise ProtocolGarbage(f"unknown ^HCSQ system mode {mode!r}", raw=line)
    rssi_dbm = _hcsq_dbm(values[0], -120, 96)
    if mode == "LTE":
        rsrp_dbm = _hcsq_dbm(values[1], -140, 97)
        sinr = _hcsq_level(values[2], 251)
        quality = quality_from_rsrp(rsrp_dbm)
        return Signal(
            rssi_dbm=rssi_dbm,
            quality=quality_from_dbm(rssi_dbm) if quality is None else quality,
            raw=raw,
            rsrp_dbm=rsrp_dbm,
            sinr_db=None if sinr is None else round(-20.2 + sinr / 5, 1),
            rsrq_db=_hcsq_half_db(values[3], -19.5, 34),
        )
    if mode in {"WCDMA", "TD-SCDMA"}:
        return Signal(
            rssi_dbm=rssi_dbm,
            quality=quality_from_dbm(rssi_dbm),
            raw=raw,
            rscp_dbm=_hcsq_dbm(values[1], -120, 96),
            ecno_db=_hcsq_half_db(values[2], -32, 65),
        )
    return Signal(rssi_dbm=rssi_dbm, quality=quality_from_dbm(rssi_dbm), raw=raw)


def parse_qind_csq(line: str) -> Signal | None:
    """Quectel ``+QIND: "csq",<rssi>,<ber>``; ``None`` for the other +QIND kinds."""
    _prefix, body = body_of(line, ("+QIND",))
    fields = split_fields(body, raw=line)
    if unquote(fields[0]).lower() != "csq":
        return None
    if len(fields) < 2:
        raise ProtocolGarbage('+QIND: "csq" without <rssi>', raw=line)
    rssi = to_int(fields[1], raw=line, what="<rssi>")
    ber = opt_int(fields[2]) if len(fields) > 2 else None
    dbm = csq_rssi_dbm(rssi)
    return Signal(rssi_dbm=dbm, quality=quality_from_dbm(dbm), raw=line.strip(), ber=_ber(ber))
