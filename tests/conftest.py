"""Shared fixtures: a real mosquitto per session, unique topics per test, and a guard that
fails any test leaving asyncio tasks running."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from simbank.mosquitto import PrivateMosquitto


@pytest.fixture(autouse=True)
async def _no_leaked_tasks() -> AsyncIterator[None]:
    """Fail the test if it leaves tasks running in its event loop."""
    yield
    current = asyncio.current_task()
    for _ in range(5):
        await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    if leaked:
        names = sorted(f"{t.get_name()}: {t.get_coro()!r}" for t in leaked)
        for task in leaked:
            task.cancel()
        await asyncio.gather(*leaked, return_exceptions=True)
        pytest.fail(f"test left {len(leaked)} task(s) running: {names}")


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateMosquitto]:
    """One real mosquitto on a free loopback port for the whole session."""
    broker = PrivateMosquitto(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[PrivateMosquitto]:
    """A mosquitto for one test (which may stop, kill or restart it)."""
    broker = PrivateMosquitto(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def base_topic() -> str:
    """A topic root no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"


#: The longest tests (tens of seconds of real timers each) start first, so that a worker is not
#: left running one of them alone at the end of the run while the others are idle.
LONG_FIRST = (
    "test_fault_soak.py::test_two_minutes",
    "test_bank_durability.py::test_a_day_of_demand",
    "test_restart_safety.py::test_sigkill_at_random_points",
    "test_daemon.py::test_a_modem_that_stays_hung",
    "test_real_modems.py",
    "test_simulator_models.py",
    "test_daemon.py::test_hang_escalates",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next((n for n, key in enumerate(LONG_FIRST) if key in item.nodeid), len(LONG_FIRST))

    items.sort(key=rank)  # stable: the rest keep their order
