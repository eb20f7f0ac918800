"""Identity (AT+CGMI / AT+CGMM answers) → dialect. Manufacturer strings as docs/modems.md lists
them, from the vendors' AT manuals; model-only rows cover firmware with an odd AT+CGMI."""

from __future__ import annotations

import pytest

from simbank.drivers.fibocom import FibocomDriver
from simbank.drivers.generic import GenericDriver
from simbank.drivers.huawei import HuaweiDriver
from simbank.drivers.quectel import QuectelDriver
from simbank.drivers.registry import DRIVERS, driver_by_name, driver_for_identity
from simbank.drivers.simcom import SimcomDriver
from simbank.drivers.types import Domain


@pytest.mark.parametrize(
    ("manufacturer", "model", "driver"),
    [
        ("Quectel", "EC25", QuectelDriver),
        ("Quectel", "EG25", QuectelDriver),
        ("Quectel_Ltd", "UC15", QuectelDriver),  # older Quectel firmware
        ("QUECTEL", "RM500Q-GL", QuectelDriver),
        ("SIMCOM INCORPORATED", "SIMCOM_SIM7600E-H", SimcomDriver),
        ("SIMCOM_Ltd", "SIMCOM_SIM800", SimcomDriver),
        ("SIMCOM INCORPORATED", "SIMCOM_SIM7100E", SimcomDriver),
        ("Huawei Technologies Co., Ltd.", "ME909s-120", HuaweiDriver),
        ("HUAWEI", "MU709s-2", HuaweiDriver),
        ("huawei", "E1550", HuaweiDriver),  # ModemManager devid table (Huawei E1550)
        ("Fibocom", "L610", FibocomDriver),
        ("FIBOCOM", "FM150-AE", FibocomDriver),
        ("Fibocom Wireless Inc.", "L850-GL", FibocomDriver),
        ("", "EC21", QuectelDriver),
        ("Manufacturer", "SIM7600G", SimcomDriver),
        ("", "ME906s", HuaweiDriver),
        ("", "L610", FibocomDriver),
        ("Sierra Wireless, Incorporated", "EM7455", GenericDriver),
        ("Telit", "LE910C1-EU", GenericDriver),
        ("u-blox", "SARA-R410M-02B", GenericDriver),
        ("", "", GenericDriver),
        ("  Quectel  ", " EC25 ", QuectelDriver),
    ],
)
def test_driver_for_identity(manufacturer: str, model: str, driver: type[GenericDriver]) -> None:
    assert driver_for_identity(manufacturer, model) is driver


def test_drivers_by_name() -> None:
    assert set(DRIVERS) == {"generic", "quectel", "simcom", "huawei", "fibocom"}
    for name, driver in DRIVERS.items():
        assert driver.dialect == name
        assert driver_by_name(name) is driver
    with pytest.raises(KeyError):
        driver_by_name("auto")


def test_dialects_override_only_what_differs() -> None:
    assert QuectelDriver.iccid_commands == (("AT+QCCID", "+QCCID"),)
    assert SimcomDriver.iccid_commands == (("AT+CICCID", "+ICCID"),)
    assert HuaweiDriver.iccid_commands == (("AT^ICCID?", "^ICCID"),)
    assert FibocomDriver.iccid_commands == GenericDriver.iccid_commands == ()
    assert Domain.NR5G in GenericDriver.domains
    assert Domain.NR5G not in SimcomDriver.domains
    for driver in (QuectelDriver, SimcomDriver, HuaweiDriver, FibocomDriver):
        assert "_select_slot" in vars(driver)
        assert "probe" not in vars(driver)
        assert "setup_urcs" not in vars(driver)
