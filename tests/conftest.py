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


#: The longest tests and their usual seconds (measured with ``pytest --durations=60`` on a
#: 2-core machine; a test not named here counts as :data:`USUAL_S`). Update when a test's time
#: changes much; a stale figure only makes the run a little longer, never wrong.
LONG_TESTS: dict[str, float] = {
    "test_fault_soak.py::test_two_minutes": 122,
    "test_restart_safety.py::test_sigkill_at_random_points": 30,
    "test_bank_durability.py::test_a_day_of_demand": 44,
    "test_daemon.py::test_a_modem_that_stays_hung": 37,
    "test_real_modems.py::test_a_hang_is_noticed_after_one_missed_poll": 24,
    "test_simulator_models.py::test_a_switch_on_a_model_busy": 20,
    "test_bank_e2e.py::test_operator_commands": 18,
    "test_demo.py::test_demo_runs_a_call_centre_day": 16,
    "test_demo.py::test_demo_shows_all_eight": 12,
    "test_daemon.py::test_hang_escalates": 17,
    "test_ctl.py::test_an_operator_session": 20,
    "test_real_modems.py::test_the_sim_that_never_registers": 16,
    "test_supervisor_modem_time.py::test_a_hang_is_checked": 7,
    "test_simulator_models.py::test_a_bank_of_every_model": 15,
    "test_simulator_models.py::test_the_probed_capabilities": 14,
    "test_mqtt_security.py::test_an_intruders_flood": 13,
    "test_real_modems.py::test_a_denial_without_a_cause": 11,
    "test_real_modems.py::test_a_modem_failing_the_same_way": 11,
    "test_mqtt_bridge.py::test_each_broker_restart": 11,
    "test_bank_durability.py::test_sigkill_mid_call": 10,
    "test_balance_e2e.py::test_a_topped_up_sim": 10,
    "test_restart_safety.py::test_a_retry_after_sigkill": 8,
    "test_billing_month_e2e.py::test_monthly_call_quota": 8,
    "test_abuse.py::test_a_short_flood": 11,
    "test_supervisor_modem_time.py::test_reset_and_reattach": 13,
    "test_daemon.py::test_unplug_fails_fast": 8,
    "test_dashboard_browser.py::": 6,
    "test_fleet_e2e.py::": 6,
    "test_inbound_calls.py::test_inbound_calls_are_announced": 13,
    "test_call_watch_e2e.py::": 7,
    "test_pbx_second_port.py::test_a_pbx_on_the_second_port": 4,
    "test_storage_full.py::test_a_filesystem_turned_read_only": 12,
    "test_storage_full.py::test_a_full_disk": 7,
    "test_storage_full.py::test_a_daemon_started_on": 16,
    "test_ledger_corruption.py::test_a_corrupt_ledger_is_restored": 8,
    "test_retention_fold.py::test_the_fold_changes_no_quota_decision": 3,
}
USUAL_S = 0.1


def _estimate(item: pytest.Item) -> float:
    return next((s for key, s in LONG_TESTS.items() if key in item.nodeid), USUAL_S)


@pytest.hookimpl(trylast=True)  # after -m has deselected the soak tests
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Order the tests so that each xdist worker starts with its share of the long ones.

    ``--dist worksteal`` hands each of the N workers one contiguous 1/N of the list and lets
    an idle worker steal from the *end* of a busy worker's queue. With every long test at the
    front, the first worker ran them one after the other (4 minutes) while the others stole
    the short ones. So the long tests are dealt, longest first, to the worker whose share is
    the lightest so far, each at the front of its share; the short tests fill the shares in
    their usual order. Every worker computes the same order, as xdist requires.
    """
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    # The share sizes worksteal's first distribution gives: len // remaining, in turn.
    sizes, left = [], len(items)
    for remaining in range(workers, 0, -1):
        sizes.append(left // remaining)
        left -= sizes[-1]
    long_items = sorted(
        (item for item in items if _estimate(item) > USUAL_S), key=_estimate, reverse=True
    )
    shares: list[list[pytest.Item]] = [[] for _ in sizes]
    loads = [0.0] * len(sizes)
    for item in long_items:
        open_shares = [n for n in range(len(sizes)) if len(shares[n]) < sizes[n]]
        if not open_shares:
            break
        target = min(open_shares, key=lambda n: loads[n])
        shares[target].append(item)
        loads[target] += _estimate(item)
    placed = {id(item) for share in shares for item in share}
    rest = iter(item for item in items if id(item) not in placed)
    for n, share in enumerate(shares):
        share.extend(next(rest) for _ in range(sizes[n] - len(share)))
    items[:] = [item for share in shares for item in share]
