"""Probing serial ports for modems, read-only.

Each port is opened as the daemon opens it (``drivers.port.open_port``: an exclusive
``flock``), so a port the daemon or another locking program holds fails to open and is
reported ``in use``; a port another process has open without a lock is found in ``/proc``
first (``ports.holders``) and not opened at all. Then ``AT`` (twice at most; the channel copes
with echo and stray lines) and, on ``OK``, only queries that change nothing:

* ``AT+CGMI``, ``AT+CGMM``, ``AT+CGMR`` (``ATI`` when they say nothing), ``AT+CGSN``;
* ``AT+CPIN?``; the ICCID by the dialect's command, ``AT+CCID`` or ``AT+CRSM`` READ BINARY
  of EF_ICCID (``GenericDriver.read_iccid``), then the other dialects' ICCID commands;
* the dialect's slot query (``AT+QUIMSLOT?``, ``AT+SMSIMCFG?``, ``AT^SCICHG?``,
  ``AT+GTDUALSIM?``: read forms), for the slot count guess.

No ``ATE0``, no ``AT+CMEE``, no ``AT+CFUN``, no slot select: the modem is left as it was found.
Ports are probed side by side under one TaskGroup; every exchange has a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import TypeVar

import structlog

from simbank.at.channel import AtChannel
from simbank.at.results import Command
from simbank.drivers.generic import GenericDriver
from simbank.drivers.parse.identity import clean_identity, parse_iccid, parse_imei
from simbank.drivers.port import open_port
from simbank.drivers.registry import DRIVERS, driver_for_identity
from simbank.drivers.types import SimStatus
from simbank.errors import PortLost, PortUnavailable, SimbankError
from simbank.scan.findings import PortFinding, PortStatus, UsbInfo, parse_ati
from simbank.scan.ports import (
    LOCK_DIRS,
    PROC,
    Candidate,
    candidates,
    holders,
    is_char_device,
    is_pty,
    sees_every_holder,
    uucp_locks,
)
from simbank.scan.sysfs import SYSFS, usb_info

_log = structlog.get_logger(__name__)
_T = TypeVar("_T")

#: ``AT`` is sent at most this many times before a port counts as not answering.
AT_ATTEMPTS = 2


def _busy(exc: PortUnavailable) -> bool:
    """The open failed because another process holds the port (pyserial's flock: EAGAIN;
    TIOCEXCL: EBUSY)."""
    cause = exc.__cause__
    code = getattr(cause, "errno", None)
    return code in (errno.EBUSY, errno.EAGAIN) or "exclusively lock" in str(cause)


async def _bounded(step: Awaitable[_T], limit: float) -> _T | None:
    """``step``'s result, or None when the modem errs, talks garbage or stays silent."""
    try:
        async with asyncio.timeout(limit):
            return await step
    except PortLost:
        raise
    except (SimbankError, TimeoutError):
        return None


async def _line(channel: AtChannel, text: str, prefix: str, answer_s: float) -> str:
    response = await channel.request(Command(text, timeout=answer_s), check=False)
    if not response.ok:
        return ""
    return next((v for v in (clean_identity(line, prefix) for line in response.lines) if v), "")


async def _imei(channel: AtChannel, answer_s: float) -> str | None:
    response = await channel.request(Command("AT+CGSN", timeout=answer_s), check=False)
    if not response.ok:
        return None
    return next((i for i in (parse_imei(line) for line in response.lines) if i), None)


async def _other_iccid(channel: AtChannel, driver: GenericDriver, answer_s: float) -> str | None:
    """The ICCID commands of the dialects other than ``driver``'s (a modem of an unknown
    make may still speak one of them)."""
    tried = {text for text, _prefix in type(driver).iccid_commands}
    for dialect in DRIVERS.values():
        for text, prefix in dialect.iccid_commands:
            if text in tried:
                continue
            tried.add(text)
            response = await channel.request(
                Command(text, prefix=prefix, timeout=answer_s, answers=True), check=False
            )
            for line in response.lines if response.ok else []:
                with contextlib.suppress(SimbankError):
                    return parse_iccid(line)
    return None


async def _answers_at(channel: AtChannel, answer_s: float) -> bool:
    for _attempt in range(AT_ATTEMPTS):
        response = await _bounded(
            channel.request(Command("AT", timeout=answer_s), check=False), answer_s * 2
        )
        if response is not None and response.ok:
            return True
    return False


async def _converse(channel: AtChannel, base: PortFinding, answer_s: float) -> PortFinding:
    path = base.path
    if not await _answers_at(channel, answer_s):
        if channel.garbage_seen or channel.resyncs:
            return _with(
                base,
                PortStatus.GARBAGE,
                f"no OK to AT within {answer_s:g} s ({channel.garbage_seen} unreadable lines): "
                "not an AT port, or another baud rate",
            )
        return _with(base, PortStatus.SILENT, f"no answer to AT within {answer_s:g} s")
    limit = answer_s * 2
    manufacturer = await _bounded(_line(channel, "AT+CGMI", "+CGMI", answer_s), limit) or ""
    model = await _bounded(_line(channel, "AT+CGMM", "+CGMM", answer_s), limit) or ""
    revision = await _bounded(_line(channel, "AT+CGMR", "+CGMR", answer_s), limit) or ""
    if not (manufacturer and model):
        response = await _bounded(
            channel.request(Command("ATI", timeout=answer_s), check=False), limit
        )
        if response is not None and response.ok:
            ati = parse_ati(response.lines)
            manufacturer, model, revision = (
                manufacturer or ati[0],
                model or ati[1],
                revision or ati[2],
            )
    imei = await _bounded(_imei(channel, answer_s), limit)
    driver_class = driver_for_identity(manufacturer, model)
    driver = driver_class(channel, slots=2)
    notes: list[str] = []
    # Each of these may send a few commands, each with the driver's own timeout: bound the
    # whole step by a few of ours.
    long_limit = max(answer_s * 4, 6.0)
    sim = await _bounded(driver.sim_status(), long_limit)
    iccid = None
    if sim is not SimStatus.ABSENT:
        iccid = await _bounded(driver.read_iccid(), long_limit)
        if iccid is None:
            iccid = await _bounded(_other_iccid(channel, driver, answer_s), long_limit)
        if iccid is None:
            notes.append("ICCID not readable (no SIM, or a locked one)")
    slot_switch = False
    if await _bounded(driver.active_slot(), long_limit) is not None:
        slot_switch = driver.can_switch_slots
    _log.debug("scan_port_answered", port=path, manufacturer=manufacturer, model=model)
    return PortFinding(
        path=base.path,
        device=base.device,
        by_id=base.by_id,
        usb=base.usb,
        status=PortStatus.ANSWERED,
        manufacturer=manufacturer,
        model=model,
        revision=revision,
        imei=imei,
        sim=sim.value if sim is not None else None,
        iccid=iccid,
        driver=driver_class.dialect,
        slot_switch=slot_switch,
        notes=tuple(notes),
    )


def _with(base: PortFinding, status: PortStatus, detail: str) -> PortFinding:
    return PortFinding(
        path=base.path,
        device=base.device,
        by_id=base.by_id,
        usb=base.usb,
        status=status,
        detail=detail,
    )


async def probe_port(
    candidate: Candidate,
    *,
    baudrate: int,
    timeout: float,  # noqa: ASYNC109 - each AT exchange's own limit, not the whole call's
    usb: UsbInfo | None = None,
    held_by: Sequence[str] = (),
    unchecked: bool = False,
) -> PortFinding:
    """What one port is: probed read-only, or left alone when someone else has it (or may
    have it: ``unchecked``, when other users' open files cannot be seen)."""
    base = PortFinding(
        candidate.path, candidate.device, PortStatus.UNAVAILABLE, by_id=candidate.by_id, usb=usb
    )
    if held_by:
        return _with(base, PortStatus.IN_USE, f"open by {', '.join(held_by)}: not probed")
    if unchecked:
        return _with(
            base,
            PortStatus.UNCHECKED,
            "not probed: another user's program (ModemManager, minicom) may have it open and"
            " only root can see that; run `sudo simbankd scan` (or --assume-free)",
        )
    if not is_char_device(candidate.device):
        return _with(base, PortStatus.UNAVAILABLE, "not a character device")
    try:
        channel = await open_port(
            candidate.path, baudrate, candidate.path, timeout=max(timeout, 1.0)
        )
    except PortUnavailable as exc:
        if _busy(exc):
            return _with(
                base, PortStatus.IN_USE, "locked by another process (simbankd?): not probed"
            )
        return _with(base, PortStatus.UNAVAILABLE, str(exc))
    try:
        return await _converse(channel, base, timeout)
    except PortLost as exc:
        return _with(base, PortStatus.UNAVAILABLE, f"lost while probing: {exc}")
    finally:
        channel.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await channel.wait_closed()


async def scan(
    patterns: Sequence[str],
    *,
    baudrate: int = 115200,
    timeout: float = 2.0,  # noqa: ASYNC109 - each AT exchange's own limit, not the whole call's
    sysfs: Path = SYSFS,
    proc: Path = PROC,
    lock_dirs: Sequence[Path] = LOCK_DIRS,
    assume_free: bool = False,
) -> list[PortFinding]:
    """Every port the patterns match, probed side by side, in natural port order.

    A port another process has open (seen in ``/proc``) or has locked the UUCP way is never
    opened. Without root, other users' open files cannot be seen, so real serial ports are
    then left alone too unless ``assume_free`` (pseudo-terminals are always probed: the
    simulator holds their other side by design)."""
    found = candidates(patterns)
    real = [c.device for c in found if not is_pty(c.device)]
    held = holders(real, proc)
    for device, lockers in uucp_locks(real, lock_dirs).items():
        held.setdefault(device, []).extend(lockers)
    blind = bool(real) and not assume_free and not sees_every_holder(proc)
    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(
                probe_port(
                    candidate,
                    baudrate=baudrate,
                    timeout=timeout,
                    usb=usb_info(candidate.device, sysfs),
                    held_by=held.get(candidate.device, ()),
                    unchecked=blind and not is_pty(candidate.device),
                ),
                name=f"scan:{candidate.path}",
            )
            for candidate in found
        ]
    findings = [task.result() for task in tasks]
    _log.debug("scan_done", ports=len(findings), answered=sum(f.answered for f in findings))
    return findings
