"""Which driver speaks to a modem, by name (config) or by its AT+CGMI / AT+CGMM identity; and
the vendor URC names of all the dialects."""

from __future__ import annotations

import re
from dataclasses import dataclass

from simbank.drivers.fibocom import FibocomDriver
from simbank.drivers.generic import GenericDriver
from simbank.drivers.huawei import HuaweiDriver
from simbank.drivers.quectel import QuectelDriver
from simbank.drivers.simcom import SimcomDriver

DRIVERS: dict[str, type[GenericDriver]] = {
    driver.dialect: driver
    for driver in (GenericDriver, QuectelDriver, SimcomDriver, HuaweiDriver, FibocomDriver)
}

VENDOR_URC_NAMES: frozenset[str] = frozenset().union(*(d.urc_names for d in DRIVERS.values()))
"""The URC names of every dialect, beyond the 27.007/27.005 ones of the codec. ``open_port``
gives them all to every channel, not only the modem's own dialect's: until the generic probe
has read ``AT+CGMI`` nobody knows the dialect, and a modem's boot URCs (``RDY``, ``^SIMST``,
``+QUSIM``) must not be read as the answer to it; and a dialect configured by hand may be the
wrong one."""


@dataclass(frozen=True, slots=True)
class IdentityPattern:
    """A manufacturer regex, an optional model regex, and the driver they select."""

    manufacturer: re.Pattern[str]
    model: re.Pattern[str] | None
    driver: type[GenericDriver]


def _p(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# First match wins. Manufacturer strings as the modems print them (docs/modems.md):
# "Quectel", "SIMCOM INCORPORATED", "SIMCOM_Ltd", "Huawei Technologies Co., Ltd.", "HUAWEI",
# "Fibocom", "FIBOCOM". The model-only rows catch firmware with an odd or empty AT+CGMI.
IDENTITY_PATTERNS: tuple[IdentityPattern, ...] = (
    IdentityPattern(_p(r"\bquectel"), None, QuectelDriver),
    IdentityPattern(_p(r"\bsimcom"), None, SimcomDriver),
    IdentityPattern(_p(r"\bhuawei"), None, HuaweiDriver),
    IdentityPattern(_p(r"\bfibocom"), None, FibocomDriver),
    IdentityPattern(_p(r""), _p(r"^(EC2\d|EG2\d|EG9\d|EC200|RM5\d\d|EM0\d|BG9\d)"), QuectelDriver),
    IdentityPattern(_p(r""), _p(r"^SIM(7\d{3}|800|900|5\d{3}|8\d{3})"), SimcomDriver),
    IdentityPattern(_p(r""), _p(r"^(ME9\d\d|MU709|ME906|E3372)"), HuaweiDriver),
    IdentityPattern(_p(r""), _p(r"^(L6\d0|L8\d0|FM1\d0|FM350|NL668|FG\d{3})"), FibocomDriver),
)


def driver_for_identity(manufacturer: str, model: str) -> type[GenericDriver]:
    """The dialect for an identity; :class:`GenericDriver` when nothing matches."""
    manufacturer = manufacturer.strip()
    model = model.strip()
    for pattern in IDENTITY_PATTERNS:
        if not pattern.manufacturer.search(manufacturer):
            continue
        if pattern.model is not None and not pattern.model.search(model):
            continue
        return pattern.driver
    return GenericDriver


def driver_by_name(name: str) -> type[GenericDriver]:
    """A driver by its dialect name (``"auto"`` is the caller's business); KeyError if unknown."""
    return DRIVERS[name]
