"""Delivery reports the simulated network sends back (23.040 SMS-STATUS-REPORT, 27.005
§3.4.1 ``+CDS`` / ``+CDSI``).

After an accepted SMS-SUBMIT that asked for one (TP-SRR, or in text mode an ``AT+CSMP`` first
octet with 0x20), the network reports after ``Timing.status_report_s`` simulated seconds
(:data:`STATUS_REPORT_S` where the scenario has no such field) with TP-MR = the reference
``+CMGS`` answered for that segment and TP-ST = ``Carrier.delivery_status_for(destination)``
(0x00 delivered; :meth:`Carrier.fail_delivery` makes a destination fail). ``AT+CNMI`` ``<ds>``
routes it as the report arrives: 0 dropped, 1 a ``+CDS`` URC (``+CDS: <length>`` and the PDU
line in PDU mode, ``+CDS: <fo>,<mr>,"<ra>",<tora>,"<scts>","<dt>",<st>`` in text mode), 2
stored in the SIM's "SR" storage and announced ``+CDSI: "SR",<index>``. A report for a SIM that
is no longer the active one is lost, as a real network's would be to a detached subscriber.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from simbank.simulator.deliver_pdu import (
    encode_status_report,
    text_status_report,
    text_timestamp,
)

if TYPE_CHECKING:
    from simbank.simulator.modem import SimulatedModem
    from simbank.simulator.scenario import Timing
    from simbank.simulator.sim import SimCard

#: Simulated seconds from an accepted SMS to its report when ``Timing`` has no
#: ``status_report_s``.
STATUS_REPORT_S = 1.0


def now_utc() -> datetime:
    """The network's time stamp (wall-clock UTC, whole seconds)."""
    return datetime.now(UTC).replace(microsecond=0)


def report_delay_s(timing: Timing) -> float:
    """``timing.status_report_s`` (simulated seconds; :data:`STATUS_REPORT_S` by default)."""
    return float(timing.status_report_s)


async def report_later(
    modem: SimulatedModem, sim: SimCard, reference: int, destination: str, submitted: datetime
) -> None:
    """Wait for the network, then hand the report to the modem (task body)."""
    await modem.clock.sleep(report_delay_s(modem.timing))
    status = modem.carrier.delivery_status_for(destination)
    emit_report(
        modem,
        sim,
        reference=reference,
        destination=destination,
        submitted=submitted,
        discharged=now_utc(),
        status=status,
    )


def emit_report(
    modem: SimulatedModem,
    sim: SimCard,
    *,
    reference: int,
    destination: str,
    submitted: datetime,
    discharged: datetime,
    status: int,
) -> None:
    """Route one report as ``<ds>`` and ``AT+CMGF`` are now."""
    ds = modem.sms_settings.ds
    if ds == 0 or modem.sim is not sim:
        modem.log.info("simulator_status_report_dropped", reference=reference, ds=ds)
        return
    pdu, length = encode_status_report(reference, destination, submitted, discharged, status)
    fields = text_status_report(reference, destination, submitted, discharged, status)
    modem.log.info("simulator_status_report", reference=reference, status=status, ds=ds)
    if ds == 2:
        index = sim.store_report(
            destination, fields, text_timestamp(discharged), pdu=pdu, tpdu_length=length
        )
        modem.urc(f'+CDSI: "SR",{index}')
    elif modem.settings.cmgf == 0:
        modem.urc(f"+CDS: {length}\r\n{pdu}")
    else:
        modem.urc(f"+CDS: {fields}")
