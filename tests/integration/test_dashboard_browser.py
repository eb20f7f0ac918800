"""The dashboard in a real browser: Debian's chromium, headless, driven by Playwright, against
a real mosquitto with users, the SHIPPED config/mosquitto/acl and a real daemon on the
simulated bank. One browser, one broker, one daemon: the steps run in order in one test.

The page shows the modems; a SIM the carrier denies appears as blocked with its evidence
after the event; the monitor user's release is refused and the page says so (the daemon's
state does not move); the operator's release works (the page and the daemon's retained state
both leave ``blocked``); a 375x667 phone viewport never scrolls sideways.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bankrig import BankRig, running

from simbank.clock import ScriptedClock
from simbank.config.models import MqttConfig
from simbank.mosquitto import PrivateMosquitto, make_password_file
from simbank.simulator import Scenario
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid
from simbank.web.screenshots import CHROMIUM, CHROMIUM_ARGS
from simbank.web.server import Dashboard
from simbank.web.throttle import LoginThrottle

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ACL = Path(__file__).resolve().parents[2] / "config" / "mosquitto" / "acl"
USERS = {"gw1": "gw1-Pa55-41c9", "operator": "op-Pa55-88d2", "monitor": "mon-Pa55-07be"}
#: a hang guard, never a speed requirement (bench/bench_dashboard.py measures the latency)
WAIT_MS = 20_000

FAST = Timing(boot_s=0.3, sim_init_s=0.2, ring_s=0.2, talk_s=5.0, ussd_s=0.2, rssi_period_s=5)
OK_SIM, DENIED_SIM = make_iccid(1401), make_iccid(1402)
BANK = Scenario(
    timing=FAST,
    modems=[
        ModemSpec(
            id="m1",
            dialect="quectel-ec21",
            slots=[SimSpec(iccid=OK_SIM, registration_delay_s=0.2)],
        ),
        ModemSpec(
            id="m2",
            dialect="huawei-e3372",
            signal=14,
            slots=[SimSpec(iccid=DENIED_SIM, registration_delay_s=0.2)],
        ),
    ],
)

playwright_api = pytest.importorskip("playwright.async_api", reason="pip install playwright")
if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium: sudo apt-get install -y chromium", allow_module_level=True)
expect = playwright_api.expect


def _cfg(broker: PrivateMosquitto, secrets: Path, user: str) -> MqttConfig:
    path = secrets / user
    path.write_text(USERS[user], encoding="utf-8")
    path.chmod(0o600)
    return MqttConfig(
        port=broker.port, base_topic="simbank", username=user, password_file=path, keepalive_s=5
    )


@contextlib.asynccontextmanager
async def _stack(tmp_path: Path) -> AsyncIterator[tuple[BankRig, PrivateMosquitto, str]]:
    passwd = make_password_file(tmp_path / "passwd", USERS)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    async with (
        PrivateMosquitto(
            tmp_path / "broker",
            password_file=passwd,
            acl_file=ACL,  # the shipped file itself, read in place
            log_types=("error", "warning", "notice", "information", "debug"),
        ) as broker,
        running(tmp_path, broker, "simbank", BANK, mqtt=_cfg(broker, secrets, "gw1")) as rig,
        # the pause a refused login earns is recorded, not waited (test_dashboard_relay.py)
        Dashboard(
            MqttConfig(port=broker.port), "simbank", login_throttle=LoginThrottle(ScriptedClock())
        ) as dashboard,
    ):
        yield rig, broker, dashboard.url


async def _log_in(page: object, url: str, user: str, password: str) -> None:
    await page.goto(url)  # type: ignore[attr-defined]
    await page.fill("#username", user)  # type: ignore[attr-defined]
    await page.fill("#password", password)  # type: ignore[attr-defined]
    await page.click("#login-button")  # type: ignore[attr-defined]


async def _no_sideways_scroll(page: object) -> None:
    widths = await page.evaluate(  # type: ignore[attr-defined]
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"


async def test_the_dashboard_in_chromium(tmp_path: Path) -> None:
    async with (
        _stack(tmp_path) as (rig, broker, url),
        playwright_api.async_playwright() as pw,
    ):
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            await _scenario(rig, broker, url, browser)
        finally:
            await browser.close()


async def _scenario(rig: BankRig, broker: PrivateMosquitto, url: str, browser: object) -> None:
    desktop = await browser.new_page(viewport={"width": 1280, "height": 860})  # type: ignore[attr-defined]
    phone = await browser.new_page(viewport={"width": 375, "height": 667})  # type: ignore[attr-defined]
    errors: list[str] = []
    for page in (desktop, phone):
        page.on("pageerror", lambda exc: errors.append(str(exc)))

    # 1. A wrong password: the broker refuses, the login form says so.
    await _log_in(desktop, url, "operator", "not-the-password")
    await expect(desktop.locator("#login-error")).to_contain_text(
        "refused this user name and password", timeout=WAIT_MS
    )
    await expect(desktop.locator("#dash-view")).to_be_hidden()

    # 2. The operator sees the gateway and both modems, ready, with their SIMs.
    await desktop.fill("#password", USERS["operator"])
    await desktop.click("#login-button")
    await expect(desktop.locator("#conn")).to_have_text("operator", timeout=WAIT_MS)
    gateway = desktop.locator('section.gateway[data-gateway="gw1"]')
    await expect(gateway.locator(".gw-head .badge")).to_have_text("online", timeout=WAIT_MS)
    for modem, iccid in (("m1", OK_SIM), ("m2", DENIED_SIM)):
        card = gateway.locator(f'article.modem[data-modem="{modem}"]')
        await expect(card).to_have_attribute("data-state", "ready", timeout=WAIT_MS)
        await expect(card).to_contain_text(iccid, timeout=WAIT_MS)
        await expect(card.locator(".network")).to_contain_text("registered", timeout=WAIT_MS)
    await expect(gateway.locator('article.modem[data-modem="m1"]')).to_contain_text("EC21")
    await expect(
        gateway.locator(f'article.sim[data-iccid="{OK_SIM}"] .quota').first
    ).to_be_visible()

    # 3. The carrier denies m2's SIM: the event comes, then the page shows it blocked with
    #    its evidence (the reject cause) in the timeline and the event in the stream.
    assert not rig.events("sim_blocked", iccid=DENIED_SIM)
    rig.bank.sim(DENIED_SIM).deny(7)
    await rig.until(lambda: rig.events("sim_blocked", iccid=DENIED_SIM))
    blocked = gateway.locator(f'article.sim[data-iccid="{DENIED_SIM}"]')
    await expect(blocked).to_have_attribute("data-state", "blocked", timeout=WAIT_MS)
    await expect(blocked.locator(".block-head")).to_contain_text("reject cause", ignore_case=True)
    await expect(blocked.locator(".timeline li").first).to_be_visible()
    await expect(blocked.locator(".timeline")).to_contain_text("reject cause 7")
    await expect(desktop.locator('#events li[data-type="sim_blocked"]')).to_contain_text(
        DENIED_SIM, timeout=WAIT_MS
    )
    await _no_sideways_scroll(desktop)

    # 4. The monitor, on a phone, sees the same; its release is refused by the broker's ACL
    #    and the page says so. The daemon never heard of it.
    await _log_in(phone, url, "monitor", USERS["monitor"])
    await expect(phone.locator("#conn")).to_have_text("monitor", timeout=WAIT_MS)
    seen = phone.locator(f'article.sim[data-iccid="{DENIED_SIM}"]')
    await expect(seen).to_have_attribute("data-state", "blocked", timeout=WAIT_MS)
    await expect(seen.locator(".timeline")).to_contain_text("reject cause 7")
    await seen.locator('button[data-action="release"]').click()
    await phone.fill("#confirm-note", "monitor tries")
    await phone.click("#confirm-ok")
    refusal = phone.locator("#notices .n-refused")
    await expect(refusal).to_contain_text("not authorized", timeout=WAIT_MS)
    await expect(refusal).to_contain_text("monitor")
    assert re.search(
        r"Denied PUBLISH from simbank-web-\w+ .*bridge/request/sim/release", broker.log_text()
    )
    assert rig.sim(DENIED_SIM)["state"] == "blocked"
    assert not rig.events("sim_released", iccid=DENIED_SIM)
    await _no_sideways_scroll(phone)

    # 5. The carrier lifts the block; the operator releases the SIM from the page: the answer
    #    is shown, the card leaves "blocked", and so does the daemon's retained state.
    rig.bank.sim(DENIED_SIM).set_behaviour("home")
    await blocked.locator('button[data-action="release"]').click()
    await desktop.fill("#confirm-note", "carrier ticket 42")
    await desktop.click("#confirm-ok")
    await expect(desktop.locator("#notices .n-ok")).to_contain_text("was blocked", timeout=WAIT_MS)
    await expect(blocked).not_to_have_attribute("data-state", "blocked", timeout=WAIT_MS)
    await rig.until(lambda: rig.sim(DENIED_SIM).get("state") != "blocked")
    assert rig.events("sim_released", iccid=DENIED_SIM)
    await expect(desktop.locator('#events li[data-type="sim_released"]')).to_be_visible(
        timeout=WAIT_MS
    )
    # The monitor's page follows too.
    await expect(seen).not_to_have_attribute("data-state", "blocked", timeout=WAIT_MS)
    await _no_sideways_scroll(phone)
    assert not errors, errors
