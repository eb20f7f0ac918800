"""structlog setup: JSON lines (journald keeps them) or console on a TTY, redaction last.

When stdout is the journal (systemd sets ``JOURNAL_STREAM`` to its device and inode), each
line starts with its syslog priority, ``<3>`` error, ``<4>`` warning, ``<6>`` info, ``<7>``
debug (sd-daemon(3)), which journald strips and keeps as the entry's PRIORITY: so
``journalctl -p warning`` shows the warnings and errors.

Context such as ``gateway``, ``modem`` and ``iccid`` is bound with
``structlog.contextvars.bound_contextvars`` by the tasks that own it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, TextIO

import structlog

from simbank.daemon.redact import redact_value

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


#: syslog priorities (sd-daemon(3) ``SD_*`` prefixes) of structlog's level names.
PRIORITIES = {
    "debug": 7,
    "info": 6,
    "warning": 4,
    "warn": 4,
    "error": 3,
    "exception": 3,
    "critical": 2,
}


def writes_to_journal(out: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``out`` is the journal's stream: ``JOURNAL_STREAM`` ("<dev>:<inode>", set by
    systemd for a service whose stdout goes to journald) names the file ``out`` is."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    dev, _, inode = value.partition(":")
    if not (dev.isdigit() and inode.isdigit()):
        return False
    try:
        st = os.fstat(out.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (int(dev), int(inode))


def with_priority(renderer: structlog.types.Processor) -> structlog.types.Processor:
    """``renderer`` whose every line starts with the event's syslog priority (``<4>``)."""

    def render(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
        level = str(event_dict.get("level", method)).lower()
        line = renderer(logger, method, event_dict)
        text = line.decode() if isinstance(line, bytes) else str(line)
        return f"<{PRIORITIES.get(level, 6)}>{text}"

    return render


def redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Scan every value of the event (keys excepted) and mask phone numbers and IMSIs."""
    for key, value in list(event_dict.items()):
        event_dict[key] = redact_value(value)
    return event_dict


def configure_logging(
    level: str = "info",
    fmt: Literal["auto", "json", "console"] = "auto",
    stream: TextIO | None = None,
) -> None:
    """Configure structlog and route stdlib logging (aiomqtt, asyncio) through it."""
    out = stream or sys.stdout
    use_console = fmt == "console" or (fmt == "auto" and out.isatty())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_processor,
    ]
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer(colors=out.isatty())
        if use_console
        else structlog.processors.JSONRenderer()
    )
    if writes_to_journal(out):
        renderer = with_priority(renderer)
    numeric = _LEVELS.get(level, logging.INFO)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.INFO))
