"""Is the modem still there? The checks after a missed answer, and the way back.

ModemManager-style escalation on hangs: consecutive timeouts → bare ``AT`` checks a few
seconds apart → re-sync with ``AT`` → ``AT+CFUN=1,1`` and a fresh probe → (the caller) close
and re-open the port. The gaps between checks and the modem's reboot are modem time, waited
on the injected clock.
"""

from __future__ import annotations

import contextlib

from simbank.at import AtChannel
from simbank.clock import Clock
from simbank.drivers.generic import GenericDriver
from simbank.errors import AtTimeout

#: After a poll goes unanswered, the modem is checked with bare ``AT``s this far apart; when
#: all of them go unanswered too it is ``unresponsive`` (within 10 s of the first miss).
LIVENESS_CHECKS = 2
LIVENESS_GAP_S = 2.0
#: Bare ``AT``s that may re-sync an unresponsive modem before it is rebooted.
RESYNC_TRIES = 3
#: How long a rebooted modem is left alone before it is probed again.
REBOOT_SETTLE_S = 2.0


async def still_answers(channel: AtChannel, clock: Clock) -> bool:
    """After a missed answer: bare ``AT``s a few seconds apart. False when none is
    answered — the modem is unresponsive (noticed within ~10 s, not after 3 polls)."""
    for check in range(LIVENESS_CHECKS):
        if check:
            await clock.sleep(LIVENESS_GAP_S)
        try:
            await channel.request("AT")
        except AtTimeout:
            continue
        return True
    return False


async def resyncs(channel: AtChannel) -> bool:
    """Bare ``AT``s (each with its own timeout) until one is answered: True if one was."""
    for _ in range(RESYNC_TRIES):
        with contextlib.suppress(AtTimeout):
            await channel.request("AT")
            return True
    return False


async def reboot_and_reprobe(driver: GenericDriver, clock: Clock) -> None:
    """``AT+CFUN=1,1``, a settling wait, then the probe and URC setup of a fresh session.
    The card in the slot is unknown afterwards: the caller reads it back."""
    await driver.reboot()
    await clock.sleep(REBOOT_SETTLE_S)
    await driver.probe()
    await driver.setup_urcs()
    await driver.setup_caller_id()
