"""``simbankd``: run the daemon, check a config file, scan the serial ports for modems, run
the zero-setup demo, or back the ledger up and restore it (docs/reliability.md).

``backup`` and ``restore`` exit 0 when done, 1 when they failed (one line on stderr), 2 when
``restore`` was not confirmed (``--yes``), 3 when there is no good backup to restore, 75
(EX_TEMPFAIL) while simbankd runs (restore only: the ledger is open), 78 on a bad config."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from simbank import __version__
from simbank.config.loader import EXIT_CONFIG, load_config
from simbank.config.models import Config
from simbank.demo import add_arguments as add_demo_arguments
from simbank.demo import main as run_demo
from simbank.errors import ConfigError, LedgerError, SimbankError
from simbank.scan.command import add_arguments as add_scan_arguments
from simbank.scan.command import main as run_scan
from simbank.store.backup import (
    BackupFailed,
    BackupInfo,
    latest_good_backup,
    list_backups,
    make_backup,
    verify_backup,
)
from simbank.store.ledger import LEDGER_FILE
from simbank.store.recovery import LedgerInUse, ledger_holder, lock_state_dir, restore


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="simbankd", description="simbank SIM-bank controller")
    parser.add_argument("--version", action="version", version=f"simbankd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--config", "-c", required=True, help="path of simbank.toml")
    check = sub.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("config", help="path of simbank.toml")
    scan = sub.add_parser(
        "scan",
        help="probe the serial ports (read-only) and print a [[modems]] block and udev rules",
    )
    add_scan_arguments(scan)
    demo = sub.add_parser("demo", help="simulated modem bank + private mosquitto + daemon")
    add_demo_arguments(demo)
    backup = sub.add_parser(
        "backup", help="a verified backup of the ledger now (also while simbankd runs)"
    )
    backup.add_argument("--config", "-c", required=True, help="path of simbank.toml")
    restore = sub.add_parser(
        "restore",
        help="with simbankd stopped: put a backup of the ledger in place (the current ledger "
        "is moved to <state_dir>/corrupt/, never deleted)",
    )
    restore.add_argument("--config", "-c", required=True, help="path of simbank.toml")
    restore.add_argument(
        "--from",
        dest="source",
        metavar="BACKUP",
        help="a backup file, or its name in the backup directory (default: the newest good one)",
    )
    restore.add_argument(
        "--no-salvage",
        dest="salvage",
        action="store_false",
        help="do not copy the rows newer than the backup that the current ledger still has",
    )
    restore.add_argument("--list", action="store_true", help="list the backups and exit")
    restore.add_argument("--yes", "-y", action="store_true", help="do not ask")
    return parser


def _config_error(exc: ConfigError) -> int:
    for line in exc.lines:
        print(line, file=sys.stderr)
    return EXIT_CONFIG


def preflight(config: Config, source: str) -> list[str]:
    """What ``load_config`` cannot see: the files and addresses the config names.

    Raises :class:`ConfigError` (``file: key: reason`` lines) for an MQTT password file that
    cannot be read or is empty, TLS files that do not load, a password that would cross the
    network in clear, or metrics on a non-loopback address without ``allow_remote``. Returns
    notes that are not errors: a modem's serial port that does not exist (yet) is one, since
    modems are plugged in later and the daemon reports them ``absent`` until then.
    """
    from simbank.integrations.metrics import check_host  # noqa: PLC0415 - after the config is valid
    from simbank.mqtt import client_options  # noqa: PLC0415

    problems = []
    try:
        client_options(config.mqtt, "check-config", "check-config")
    except ConfigError as exc:
        problems += exc.lines
    if config.metrics.enabled:
        try:
            check_host(config.metrics.host, allow_remote=config.metrics.allow_remote)
        except ConfigError as exc:
            problems += exc.lines
    if problems:
        lines = [f"{source}: {line}" for line in problems]
        raise ConfigError(lines[0], lines)
    return [
        f"{source}: note: modems[{index}].port {modem.port} does not exist now; "
        f"modem {modem.id} is reported absent until it appears"
        for index, modem in enumerate(config.modems)
        if not Path(modem.port).exists()
    ]


async def _run(config_path: str) -> int:
    config = load_config(config_path)
    preflight(config, config_path)
    from simbank.daemon.app import Daemon  # noqa: PLC0415 - a bad config exits before imports
    from simbank.daemon.logs import configure_logging  # noqa: PLC0415
    from simbank.daemon.standin import (  # noqa: PLC0415
        StandIn,
        startup_cause,
        storage_writable,
    )

    configure_logging(config.logging.level, config.logging.format)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # One daemon per state directory, for its whole life: `simbankd restore` refuses while
    # it is held, and a second daemon on the same ledger never starts. A state directory or
    # ledger the storage will not let us take (full, read-only, failing) is waited for, with
    # a stand-in telling the broker why (simbank.daemon.standin).
    standin: StandIn | None = None
    try:
        while True:
            where = config.gateway.state_dir
            with contextlib.ExitStack() as stack:
                try:
                    stack.enter_context(lock_state_dir(where))
                    if standin is not None:
                        # Waiting: a cheap test off the loop first; the daemon (which checks
                        # the whole ledger) only once it passes.
                        standin.notifier.watchdog()
                        await asyncio.to_thread(storage_writable, where)
                        config = standin.config_now(config_path, config)
                    daemon = Daemon(config, config_path=config_path)
                except LedgerInUse as exc:
                    print(f"simbankd: another simbankd uses {where}: {exc}", file=sys.stderr)
                    return EXIT_IN_USE
                except (OSError, LedgerError, sqlite3.Error) as exc:
                    cause = startup_cause(exc, where)
                    if cause is None:
                        if isinstance(exc, LedgerError):
                            raise
                        print(
                            f"simbankd: cannot use the state directory {where}: {exc}",
                            file=sys.stderr,
                        )
                        return 1
                    stack.close()  # the lock, if it was taken
                    if standin is None:
                        standin = StandIn(config)
                        # `systemctl reload` meanwhile: read again before the next try.
                        loop.add_signal_handler(signal.SIGHUP, standin.reload_requested)
                    standin.failing(cause, str(exc))
                    standin.start()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(config.storage.probe_interval_s):
                            await stop.wait()
                    if stop.is_set():
                        return 0
                    continue
                handed, standin = standin, None
                if handed is not None:
                    await handed.close(recovered=True)
                loop.add_signal_handler(signal.SIGHUP, daemon.reload)
                try:
                    await daemon.run(stop)
                except BaseException:
                    if handed is not None and not daemon.bridge.connects:
                        await handed.say_offline()  # not left saying degraded for a dead daemon
                    raise
                return 0
    finally:
        if standin is not None:
            await standin.close(recovered=False)


EXIT_UNCONFIRMED, EXIT_NO_BACKUP, EXIT_IN_USE = 2, 3, 75


def _as_owner(state_dir: Path) -> None:
    """Refuse to write a daemon's files as root when the state directory belongs to another
    user (``User=simbank``): the daemon could no longer open what root created."""
    try:
        owner = state_dir.stat().st_uid
    except OSError:
        return  # not there yet: whoever creates it owns it
    if os.geteuid() == 0 and owner != 0:
        raise SimbankError(
            f"{state_dir} belongs to uid {owner}: run this as that user "
            f"(sudo -u '#{owner}' simbankd …), or the daemon cannot read what it writes"
        )


def _backup(config: Config) -> int:
    """``simbankd backup``: the path of the new, verified backup on stdout."""
    state_dir = config.gateway.state_dir
    _as_owner(state_dir)
    info = make_backup(
        state_dir / LEDGER_FILE,
        config.storage.backups_in(state_dir),
        config.storage.backup_keep,
        time.time(),
    )
    print(info.path)
    return 0


def _restore(config: Config, args: argparse.Namespace) -> int:
    """``simbankd restore``: offline, under the state directory's lock (a running simbankd
    holds SQLite's lock on the ledger, and the daemon's lock file when it takes one)."""
    state_dir = config.gateway.state_dir
    backup_dir = config.storage.backups_in(state_dir)
    if args.list:
        return _list_backups(backup_dir)
    _as_owner(state_dir)
    with lock_state_dir(state_dir):
        ledger = state_dir / LEDGER_FILE
        holder = ledger_holder(ledger)
        if holder is not None:
            raise LedgerInUse(f"{ledger} is open in process {holder}", holder)
        backup = _chosen_backup(backup_dir, args.source)
        if backup is None:
            print(f"simbankd: no good backup in {backup_dir}", file=sys.stderr)
            return EXIT_NO_BACKUP
        facts = f"taken {_when(backup.created_at)} UTC, {backup.usage_rows} usage rows"
        if not args.yes and not _confirmed(f"restore {backup.path} ({facts}) into {state_dir}?"):
            print("simbankd: restore not confirmed (--yes to restore)", file=sys.stderr)
            return EXIT_UNCONFIRMED
        outcome = restore(state_dir, backup, backup_dir, time.time(), salvage_rows=args.salvage)
    if outcome.moved_to is not None:
        print(f"moved the ledger aside (check: {outcome.report.status}): {outcome.moved_to}")
    print(f"restored {backup.path} ({facts})")
    if args.salvage and outcome.moved_to is not None:
        salvaged = ", ".join(f"{table} {n}" for table, n in sorted(outcome.salvaged.items()))
        print(f"salvaged from the old ledger: {salvaged or 'nothing'}")
    for note in outcome.notes:
        print(f"note: {note}")
    print(f"{state_dir / LEDGER_FILE}: ok; recorded as ledger_recovery (confirmed); start simbankd")
    return 0


def _chosen_backup(backup_dir: Path, source: str | None) -> BackupInfo | None:
    if source is None:
        return latest_good_backup(backup_dir)
    path = Path(source)
    if not path.exists() and path.parent == Path():
        path = backup_dir / source
    return verify_backup(path)


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _confirmed(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def _list_backups(backup_dir: Path) -> int:
    listed = list_backups(backup_dir)
    if not listed:
        print(f"simbankd: no backups in {backup_dir}", file=sys.stderr)
        return EXIT_NO_BACKUP
    for info in listed:
        try:
            checked = verify_backup(info.path)
        except BackupFailed as exc:
            state = f"BAD: {exc}"
        else:
            state = f"ok, schema {checked.schema_version}, {checked.usage_rows} usage rows"
        print(f"{info.path.name}  {_when(info.created_at)} UTC  {info.size_bytes} bytes  {state}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "check-config":
            config = load_config(args.config)
            notes = preflight(config, args.config)
            print(
                f"{args.config}: ok ({len(config.modems)} modems, {len(config.policies)} policies)"
            )
            for note in notes:
                print(note)
            return 0
        if args.command == "run":
            return asyncio.run(_run(args.config))
        if args.command in ("backup", "restore"):
            from simbank.daemon.logs import configure_logging  # noqa: PLC0415

            configure_logging("error", "console", stream=sys.stderr)
            config = load_config(args.config)
            if args.command == "backup":
                return _backup(config)
            return _restore(config, args)
        if args.command == "scan":
            from simbank.daemon.logs import configure_logging  # noqa: PLC0415

            # stdout is the config block: logs go to stderr, errors only unless asked.
            configure_logging("error", "console", stream=sys.stderr)
            return run_scan(args)
        return run_demo(args)
    except ConfigError as exc:
        return _config_error(exc)
    except LedgerInUse as exc:
        print(f"simbankd: {exc}: stop simbankd first", file=sys.stderr)
        return EXIT_IN_USE
    except SimbankError as exc:
        print(f"simbankd: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
