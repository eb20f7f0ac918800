"""A modem's retained state as the Home Assistant tests feed it to discovery."""

from __future__ import annotations

from typing import Any

from simbank.contract import ModemState

ICCID = "89990100000000016013"


def modem_state(**changes: Any) -> ModemState:
    data: dict[str, Any] = {
        "id": "m1",
        "port": "/dev/ttyUSB2",
        "state": "ready",
        "model": "EC25",
        "manufacturer": "Quectel",
        "iccid": ICCID,
        "active_slot": 1,
        "registration": {"state": "registered_home", "operator": "Test PLMN"},
        "signal": {"rssi_dbm": -73, "quality": 20},
    }
    data.update(changes)
    return ModemState.model_validate(data)
