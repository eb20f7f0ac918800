"""contrib/: the alert rules and the Grafana dashboard against the series simbank really exposes.

``promtool`` (Debian's ``prometheus`` package) checks the rules, runs their unit tests
(contrib/prometheus/simbank-alerts.test.yml), proves each alert fires on a real exposition
scraped from the metrics endpoint, lints that exposition, and parses every dashboard query.
Every metric name the rules, their tests and the dashboard use must be in that exposition,
so a rename cannot silently break them.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from simbank.contract import (
    BalanceInfo,
    ModemState,
    RegistrationInfo,
    SignalInfo,
    SimState,
    Usage,
)
from simbank.integrations.metrics import Metrics, serve

pytestmark = pytest.mark.integration

CONTRIB = Path(__file__).resolve().parents[2] / "contrib"
RULES = CONTRIB / "prometheus" / "simbank-alerts.yml"
RULES_TEST = CONTRIB / "prometheus" / "simbank-alerts.test.yml"
DASHBOARD = CONTRIB / "grafana" / "simbank-dashboard.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not found: sudo apt-get install -y prometheus (Debian ships it there)",
)
PROMTOOL_TIMEOUT_S = 60.0  # a hang guard, not a speed bound

BLOCKED = "8999000000000000011"
NEAR_QUOTA = "8999000000000000029"
LOCKED = "8999000000000000037"
RESTING = "8999000000000000045"
JOB = {"job": "simbank", "instance": "gw1:9464"}
_METRIC_NAME = re.compile(r"\b((?:simbank|process|python)_[a-z0-9_]+)\b")


def _fleet() -> Metrics:
    """A gateway in trouble, with every series filled in: m1 serves, m2 failed, m3 offline;
    one SIM blocked, one locked, one active near its daily call limit; the circuit open, the
    broker lost, the ledger's storage failed and nearly full."""
    m = Metrics()
    m.observe_modem(
        ModemState(
            id="m1",
            port="/dev/ttyUSB2",
            state="ready",
            registration=RegistrationInfo(stat=1, operator="Test"),
            signal=SignalInfo(rssi_dbm=-71, quality=60),
        )
    )
    m.observe_modem(ModemState(id="m2", port="/dev/ttyUSB5", state="failed", reason="no AT"))
    m.observe_modem(ModemState(id="m3", port="/dev/ttyUSB8", state="offline"))
    checked = BalanceInfo(amount="4.20", checked_at=datetime.now(UTC))
    m.observe_sim(SimState(iccid=BLOCKED, modem="m3", slot=1, state="blocked"))
    m.observe_sim(SimState(iccid=LOCKED, modem="m2", slot=1, state="locked"))
    m.observe_sim(
        SimState(
            iccid=NEAR_QUOTA,
            modem="m1",
            slot=1,
            state="active",
            usage=Usage(
                calls_hour=9,
                calls_day=95,
                call_seconds_day=1200,
                sms_day=3,
                calls_month=300,
                call_seconds_month=9000,
                sms_month=40,
            ),
            limits={
                "calls_per_hour": 20,
                "calls_per_day": 100,
                "call_seconds_per_day": 3600,
                "sms_per_day": 50,
                "calls_per_month": 2000,
                "call_seconds_per_month": 60000,
                "sms_per_month": 500,
            },
            balance=checked,
            sms_unread=1,
        )
    )
    m.observe_sim(SimState(iccid=RESTING, modem="m1", slot=2, state="resting"))
    m.observe_call("m1", "completed", 95, 16)
    m.observe_call("m1", "busy", 0, 17)
    m.observe_call("m1", "failed", 0, 50)
    m.observe_at("m1", 0.004, timed_out=False)
    m.observe_at("m1", 10.0, timed_out=True)
    m.observe_resync("m1", "stray OK")
    m.observe_request("call", "ok")
    m.observe_event("sim_blocked", {"iccid": BLOCKED, "modem": "m3", "reason": "calls_barred"})
    m.observe_event("sim_rotated", {"modem": "m1", "slot": 1, "iccid": NEAR_QUOTA})
    m.observe_event("sms_delivered", {"message": 1})
    m.watch_mqtt(lambda: {"received": 10, "dropped_low": 0, "published_state": 12, "queued_low": 1})
    m.watch_gateway(
        mqtt_connected=lambda: False, circuit_open=lambda: True, traffic_paused=lambda: False
    )
    m.watch_storage(
        degraded=lambda: True, free_bytes=lambda: 10 * 1024 * 1024, last_backup_at=lambda: 0.0
    )
    return m


async def _scrape(metrics: Metrics) -> str:
    """``GET /metrics`` from the real endpoint on loopback."""
    async with await serve(metrics, port=0) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        async with asyncio.timeout(10):
            raw = await reader.read()
        writer.close()
        await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK"), head
    return body.decode()


@pytest.fixture(scope="module")
def exposition() -> str:
    return asyncio.run(_scrape(_fleet()))


def _samples(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def _promtool(*args: str, stdin: str | None = None, cwd: Path | None = None) -> str:
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=PROMTOOL_TIMEOUT_S,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    return output


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _dashboard_queries() -> list[str]:
    return [
        target["expr"]
        for panel in _panels(_dashboard()["panels"])
        for target in panel.get("targets", [])
    ]


def _without_annotations(rules: str) -> str:
    """The rules with their annotation blocks cut (a generated test then need not render
    every annotation's text: the shipped unit tests do that)."""
    kept: list[str] = []
    cut_deeper_than: int | None = None
    for line in rules.splitlines():
        indent = len(line) - len(line.lstrip())
        if cut_deeper_than is not None and (not line.strip() or indent > cut_deeper_than):
            continue
        cut_deeper_than = None
        if line.strip() == "annotations:":
            cut_deeper_than = indent
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"


def _series(sample: Sample) -> str:
    labels = {**sample.labels, **JOB}
    inner = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in sorted(labels.items())
    )
    return f"{sample.name}{{{inner}}}"


# -- the exposition itself ---------------------------------------------------------------


def test_the_fixture_fills_every_series(exposition: str) -> None:
    """Every family has a sample, so the name checks below test against all of them."""
    empty = [f.name for f in text_string_to_metric_families(exposition) if not f.samples]
    assert empty == []
    names = {s.name for s in _samples(exposition)}
    assert not [name for name in names if name.endswith("_created")]
    assert 'simbank_build_info{version="' in exposition


@needs_promtool
def test_promtool_lints_the_real_exposition(exposition: str) -> None:
    """Names, units, counters' ``_total``, HELP texts: what ``promtool check metrics`` knows."""
    assert _promtool("check", "metrics", stdin=exposition).strip() == ""


# -- the alert rules ---------------------------------------------------------------------


@needs_promtool
def test_the_rules_pass_promtool_check() -> None:
    assert "SUCCESS" in _promtool("check", "rules", str(RULES))


@needs_promtool
def test_the_example_scrape_config_is_valid() -> None:
    """contrib/prometheus/prometheus.yml, with the rules it loads."""
    output = _promtool("check", "config", str(CONTRIB / "prometheus" / "prometheus.yml"))
    alerts = len(re.findall(r"- alert: ", RULES.read_text()))
    assert f"SUCCESS: {alerts} rules found" in output


@needs_promtool
def test_the_shipped_rule_unit_tests_pass() -> None:
    assert "SUCCESS" in _promtool("test", "rules", RULES_TEST.name, cwd=RULES_TEST.parent)


@needs_promtool
def test_the_alerts_fire_on_the_real_exposition(exposition: str, tmp_path: Path) -> None:
    """Every sample of a real scrape, held for 20 minutes: the alerts that must fire do,
    with the labels the series carry; the others stay quiet."""
    rules = tmp_path / "rules.yml"
    rules.write_text(_without_annotations(RULES.read_text()))
    series = [{"series": _series(s), "values": f"{s.value!r}x20"} for s in _samples(exposition)]
    series.append({"series": _series(Sample("up", {}, 1.0)), "values": "1x20"})
    gw = {"severity": "", **JOB}

    def alert(severity: str, **labels: str) -> dict[str, Any]:
        return {"exp_labels": {**gw, "severity": severity, **labels}}

    expected: dict[str, list[dict[str, Any]]] = {
        "SimbankDaemonDown": [],
        "SimbankDaemonAbsent": [],
        "SimbankMqttDisconnected": [alert("warning")],
        "SimbankCircuitOpen": [alert("critical")],
        "SimbankStorageDegraded": [alert("critical")],
        "SimbankStorageLow": [alert("warning")],
        "SimbankBackupStale": [],  # the test's clock starts at 0: the backup is minutes old
        "SimbankNoServingSim": [],
        "SimbankSimBlocked": [alert("warning", iccid=BLOCKED, state="blocked")],
        "SimbankSimLocked": [alert("warning", iccid=LOCKED, state="locked")],
        "SimbankQuotaNear": [alert("info", iccid=NEAR_QUOTA, window="day", quota="calls")],
        "SimbankModemFailed": [alert("critical", modem="m2", state="failed")],
        "SimbankModemDown": [alert("warning", modem="m3")],
    }
    assert set(expected) == set(re.findall(r"- alert: (\w+)", RULES.read_text()))
    test = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": "15m", "alertname": name, "exp_alerts": alerts}
                    for name, alerts in expected.items()
                ],
            }
        ],
    }
    test_file = tmp_path / "generated.test.yml"
    test_file.write_text(json.dumps(test, indent=1))  # JSON is YAML
    assert "SUCCESS" in _promtool("test", "rules", str(test_file))


def test_every_metric_the_rules_and_their_tests_use_is_exposed(exposition: str) -> None:
    exposed = {s.name for s in _samples(exposition)}
    for path in (RULES, RULES_TEST):
        used = set(_METRIC_NAME.findall(path.read_text()))
        assert used, path
        assert used <= exposed, f"{path.name} uses series simbank does not expose: {used - exposed}"


def test_the_name_check_can_fail(exposition: str) -> None:
    exposed = {s.name for s in _samples(exposition)}
    assert "simbank_sim_usage" not in exposed  # renamed in 0.2: would be caught above
    assert set(_METRIC_NAME.findall("simbank_sim_usage{kind='calls_day'} > 1")) - exposed


# -- the dashboard -------------------------------------------------------------------------


def test_the_dashboard_is_importable_grafana_json() -> None:
    dashboard = _dashboard()
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"
    assert dashboard["uid"] == "simbank-overview"
    assert dashboard["id"] is None  # Grafana assigns it on import
    panels = list(_panels(dashboard["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    titles = {p["title"] for p in panels}
    for wanted in (
        "Modems up",
        "Signal",
        "Registration",
        "SIM states",
        "Quota used per SIM (today)",
        "Answer-seizure ratio (ASR)",
        "Average call duration (ACD)",
        "Blocks found",
        "Circuit breaker",
        "MQTT connection and queues",
        "AT latency (p50, p95)",
    ):
        assert wanted in titles
    for panel in panels:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}"
            assert target["expr"].strip(), panel["title"]
    variables = dashboard["templating"]["list"]
    assert [v["name"] for v in variables] == ["instance"]
    assert variables[0]["datasource"]["uid"] == "${DS_PROMETHEUS}"


def test_every_metric_the_dashboard_queries_is_exposed(exposition: str) -> None:
    exposed = {s.name for s in _samples(exposition)}
    used = {name for expr in _dashboard_queries() for name in _METRIC_NAME.findall(expr)}
    variable = _dashboard()["templating"]["list"][0]["definition"]
    used |= set(_METRIC_NAME.findall(variable))
    assert len(used) > 20
    assert used <= exposed, (
        f"the dashboard queries series simbank does not expose: {used - exposed}"
    )


@needs_promtool
def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    """Each query, with Grafana's variables filled in, as a recording rule: ``promtool check
    rules`` parses its PromQL."""
    filled = {"$__rate_interval": "5m", "$__range": "1h", "$instance": ".*"}
    rules = []
    for number, query in enumerate(_dashboard_queries()):
        expr = query
        for variable, value in filled.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{number}", "expr": expr})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in _promtool("check", "rules", str(path))
