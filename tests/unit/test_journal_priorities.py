"""journald priorities: when stdout is the journal (``JOURNAL_STREAM`` names its device and
inode) every line starts with its syslog priority, so ``journalctl -p warning`` finds the
warnings; anywhere else the lines are as before. Real files, real structlog output."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest
import structlog

from simbank.daemon.logs import configure_logging, writes_to_journal


@pytest.fixture
def out(tmp_path: Path) -> Iterator[TextIO]:
    with (tmp_path / "stdout").open("w+", encoding="utf-8") as stream:
        yield stream
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def _journal_env(stream: TextIO) -> dict[str, str]:
    st = os.fstat(stream.fileno())
    return {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}


def _lines(stream: TextIO) -> list[str]:
    stream.flush()
    stream.seek(0)
    return stream.read().splitlines()


def test_the_journal_is_recognised_by_device_and_inode(out: TextIO, tmp_path: Path) -> None:
    assert writes_to_journal(out, _journal_env(out))
    with (tmp_path / "other").open("w") as other:
        assert not writes_to_journal(other, _journal_env(out))
    for value in ("", "garbage", "1:", ":2", "a:b"):
        assert not writes_to_journal(out, {"JOURNAL_STREAM": value})


def test_lines_to_the_journal_carry_their_priority(
    out: TextIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", _journal_env(out)["JOURNAL_STREAM"])
    configure_logging("debug", "json", stream=out)
    log = structlog.get_logger("t")
    log.debug("d")
    log.info("i", number="+447700900123")
    log.warning("w")
    log.error("e")
    logging.getLogger("aiomqtt").warning("from the stdlib")
    lines = _lines(out)
    assert [line[:3] for line in lines] == ["<7>", "<6>", "<4>", "<3>", "<4>"]
    documents = [json.loads(line[3:]) for line in lines]
    assert [d["event"] for d in documents] == ["d", "i", "w", "e", "from the stdlib"]
    assert "447700900123" not in lines[1]  # still redacted


def test_lines_elsewhere_have_no_prefix(out: TextIO, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    configure_logging("info", "json", stream=out)
    structlog.get_logger("t").warning("w")
    (line,) = _lines(out)
    assert json.loads(line)["event"] == "w"
