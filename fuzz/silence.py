"""Logging off for the long runs: the code under test logs every bad line it drops, and a
million log lines would drown the fuzzer's own report."""

from __future__ import annotations

import logging

import structlog


def quiet_logs() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
