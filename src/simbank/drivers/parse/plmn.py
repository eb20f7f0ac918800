"""The SIM's home network (MCC + MNC) from its IMSI, with the MNC length done right.

An IMSI is MCC (3 digits) + MNC (2 or 3 digits) + MSIN; nothing in the IMSI itself says how
long the MNC is. In order of trust:

1. EF_AD of the SIM (3GPP TS 31.102 §4.2.18, TS 51.011 §10.3.18): byte 4, low nibble, is the
   MNC length (2 or 3). Read with ``AT+CRSM=176,28589,0,0,4`` (:data:`EF_AD_READ`) and parse
   with :func:`parse_ef_ad_mnc_length`. ModemManager does exactly this (mm-base-sim.c
   load_operator_identifier / parse_mnc_length).
2. The numeric ``+COPS`` of the serving network, when the SIM is at home: a 5- or 6-digit
   PLMN that begins the IMSI is the home network.
3. The MCCs whose MNCs all have three digits, from AOSP's MccTable (``smallestDigitsMnc`` = 3;
   frameworks/opt/telephony MccTable.java, as in LineageOS android_frameworks_opt_telephony).
   Every other MCC is assumed to use two digits, as Android does.
"""

from __future__ import annotations

from simbank.drivers.parse.fields import is_decimal
from simbank.drivers.parse.identity import crsm_success, parse_crsm
from simbank.errors import ProtocolGarbage

EF_AD_FILE_ID = 28589  # 0x6FAD
EF_AD_READ = f"AT+CRSM=176,{EF_AD_FILE_ID},0,0,4"
"""READ BINARY of the first four bytes of EF_AD."""

MNC_LENGTHS = frozenset({2, 3})
_EF_AD_MNC_BYTE = 3  # 0-based: byte 4 of the file
_MCC_LEN = 3
_MIN_IMSI_LEN = 6
_MAX_IMSI_LEN = 15  # ITU-T E.212
_PLMN_LENGTHS = frozenset({5, 6})

THREE_DIGIT_MNC_MCCS: frozenset[str] = frozenset(
    {
        "302",  # Canada
        "310",  # United States
        "311",
        "312",
        "313",
        "314",
        "315",
        "316",
        "334",  # Mexico
        "338",  # Jamaica
        "342",  # Barbados
        "344",  # Antigua and Barbuda
        "346",  # Cayman Islands
        "348",  # British Virgin Islands
        "365",  # Anguilla
        "708",  # Honduras
        "722",  # Argentina
        "732",  # Colombia
    }
)
"""MCCs where every MNC has three digits (AOSP MccTable ``smallestDigitsMnc`` = 3). Countries
that mix lengths (India 404/405, Trinidad 374, ...) are not listed: only EF_AD or +COPS can
tell for them."""


def parse_ef_ad_mnc_length(line: str) -> int:
    """The MNC length (2 or 3) from the ``+CRSM`` answer to :data:`EF_AD_READ`.

    ``+CRSM: 144,0,"00000002"`` → 2. Raises :class:`ProtocolGarbage` on a failed read, a
    short file (EF_AD of old SIMs has only 3 bytes) or a length other than 2 or 3.
    """
    sw1, sw2, data = parse_crsm(line)
    if not crsm_success(sw1, sw2):
        raise ProtocolGarbage(f"+CRSM status {sw1},{sw2} reading EF_AD", raw=line, code=sw1)
    octets = len(data) // 2
    if octets <= _EF_AD_MNC_BYTE:
        raise ProtocolGarbage("EF_AD has no MNC length byte", raw=line)
    start = 2 * _EF_AD_MNC_BYTE
    length = int(data[start : start + 2], 16) & 0x0F  # b5-b8 are RFU
    if length not in MNC_LENGTHS:
        raise ProtocolGarbage(f"EF_AD MNC length {length} is not 2 or 3", raw=line)
    return length


def mnc_length_for_mcc(mcc: str) -> int:
    """3 for the MCCs of :data:`THREE_DIGIT_MNC_MCCS`, else 2 (a guess: prefer EF_AD)."""
    return 3 if mcc in THREE_DIGIT_MNC_MCCS else 2


def home_network(
    imsi: str, mnc_length: int | None = None, *, serving_plmn: str | None = None
) -> str:
    """MCC + MNC of the SIM's home network, e.g. ``"310260"`` or ``"26201"``.

    ``mnc_length``: from :func:`parse_ef_ad_mnc_length` when the SIM answered (always wins).
    ``serving_plmn``: the numeric ``+COPS`` operator (5 or 6 digits); used when it begins the
    IMSI (the SIM is at home). Otherwise the MCC table decides. Raises
    :class:`ProtocolGarbage` if ``imsi`` is not 6-15 digits.
    """
    if not is_decimal(imsi) or not _MIN_IMSI_LEN <= len(imsi) <= _MAX_IMSI_LEN:
        raise ProtocolGarbage("IMSI must be 6-15 digits", raw=imsi)
    if mnc_length in MNC_LENGTHS:
        return imsi[: _MCC_LEN + mnc_length]
    if mnc_length is not None:
        raise ValueError(f"MNC length must be 2 or 3, not {mnc_length}")
    serving = (serving_plmn or "").strip().strip('"')
    if is_decimal(serving) and len(serving) in _PLMN_LENGTHS and imsi.startswith(serving):
        return serving
    return imsi[: _MCC_LEN + mnc_length_for_mcc(imsi[:_MCC_LEN])]
