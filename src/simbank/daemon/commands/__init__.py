"""Command handlers: each request → policy → rotation → book → act → complete → publish.

- :mod:`.traffic`: ``call``, ``sms/send``, ``ussd`` (each acts inside one
  :func:`.booking.booked` step: book before act);
- :mod:`.sims`: ``sim/rotate``, ``sim/select``, ``sim/disable``, ``sim/enable``,
  ``sim/release``, ``sim/report``;
- :mod:`.control`: ``status``, ``modem/reset``, ``traffic/pause``, ``traffic/resume``;
- :mod:`.messages`: ``sms/list``, ``sms/ack`` (the inbox, ledger only);
- :mod:`.balance`: ``balance/check``; :mod:`.balance_checks`: the prepaid-balance checks
  (scheduled, after N calls, on demand);
- :mod:`.pbx`: ``call/authorize``, ``call/complete`` (a call the PBX dials; booked here,
  settled on completion or at expiry);
- :mod:`.storage`: ``storage/backup``, ``storage/confirm`` (the ledger's backups and an
  operator's acceptance of a ledger restored after corruption);
- :mod:`.access`: finding, locking, planning for and switching a modem (shared).

Handlers raise ``Refused`` with a contract error code; the router turns it into the error
response. Decisions are asked of :mod:`simbank.bank`; I/O goes through the runtime and the
modem supervisors.
"""

from __future__ import annotations

from simbank.daemon.commands.access import ModemAccess
from simbank.daemon.commands.balance import BalanceCommands
from simbank.daemon.commands.balance_checks import BalanceService
from simbank.daemon.commands.control import ControlCommands
from simbank.daemon.commands.messages import MessageCommands
from simbank.daemon.commands.pbx import PbxCommands
from simbank.daemon.commands.sims import SimCommands
from simbank.daemon.commands.storage import StorageCommands
from simbank.daemon.commands.traffic import TrafficCommands
from simbank.daemon.router import Handler
from simbank.daemon.runtime import BankRuntime
from simbank.daemon.upkeep import LedgerUpkeep

__all__ = ["Handlers"]


class Handlers:
    """The request handlers of DESIGN §5, bound to one gateway."""

    def __init__(self, gateway: BankRuntime, upkeep: LedgerUpkeep | None = None) -> None:
        """``upkeep``: the daemon's (its storage watch publishes the gateway's state); one of
        their own for handlers used without a daemon."""
        self.gw = gateway
        if upkeep is None:
            upkeep = LedgerUpkeep.of(gateway)
        self.storage = StorageCommands(upkeep)
        self.access = ModemAccess(gateway)
        self.traffic = TrafficCommands(gateway, self.access)
        self.sims = SimCommands(gateway, self.access)
        self.control = ControlCommands(gateway, self.access)
        self.messages = MessageCommands(gateway)
        self.balance = BalanceService(gateway, self.access)
        self.balances = BalanceCommands(self.balance, self.access)
        self.traffic.after_call = self.balance.nudge
        #: Its ``run()`` (restore, then expiry) is one of the daemon's tasks.
        self.pbx = PbxCommands(gateway, self.access, self.traffic)

    def table(self) -> dict[str, Handler]:
        """Command name → handler (the router answers ``unknown_command`` for the rest)."""
        return {
            "status": self.control.status,
            "call": self.traffic.call,
            "call/authorize": self.pbx.authorize,
            "call/complete": self.pbx.complete,
            "sms/send": self.traffic.sms_send,
            "sms/list": self.messages.sms_list,
            "sms/ack": self.messages.sms_ack,
            "balance/check": self.balances.balance_check,
            "ussd": self.traffic.ussd,
            "sim/rotate": self.sims.sim_rotate,
            "sim/select": self.sims.sim_select,
            "sim/disable": self.sims.sim_disable,
            "sim/enable": self.sims.sim_enable,
            "sim/release": self.sims.sim_release,
            "sim/report": self.sims.sim_report,
            "modem/reset": self.control.modem_reset,
            "traffic/pause": self.control.traffic_pause,
            "traffic/resume": self.control.traffic_resume,
            "storage/backup": self.storage.backup,
            "storage/confirm": self.storage.confirm,
        }
