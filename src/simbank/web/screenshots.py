"""Screenshots of a running dashboard at desktop and phone sizes, in headless Chromium.

    python -m simbank.web.screenshots --url http://127.0.0.1:8080/ --user monitor \\
        --password-file /path/to/monitor.pw --out docs/img

writes ``dashboard-desktop.png`` (1280 px wide, the whole page up to 1800 px tall) and
``dashboard-phone.png`` (375 px wide at 2x, the top 1500 px of the page). It drives the
system's Chromium (``/usr/bin/chromium``; Debian: ``sudo apt-get install -y chromium``)
through Playwright's Python package and never downloads a browser.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.async_api import FloatRect, Page, ViewportSize

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 375, "height": 667}
MAX_DESKTOP_HEIGHT = 1800
MAX_PHONE_HEIGHT = 1500
WAIT_MS = 20_000


async def log_in(page: Page, url: str, username: str, password: str) -> None:
    """Open the dashboard and log in; returns once the first modem is on screen."""
    await page.goto(url)
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("#login-button")
    await page.wait_for_selector("article.modem", timeout=WAIT_MS)


async def shoot_desktop(page: Page, path: Path) -> None:
    """The whole page, up to ``MAX_DESKTOP_HEIGHT`` pixels tall."""
    height = await page.evaluate("document.documentElement.scrollHeight")
    clip: FloatRect = {
        "x": 0,
        "y": 0,
        "width": page.viewport_size["width"] if page.viewport_size else DESKTOP["width"],
        "height": min(int(height), MAX_DESKTOP_HEIGHT),
    }
    await page.screenshot(path=str(path), full_page=True, clip=clip)


async def shoot_phone(page: Page, path: Path) -> None:
    """The top of the page as a phone shows it, scrolled down to ``MAX_PHONE_HEIGHT``."""
    height = await page.evaluate("document.documentElement.scrollHeight")
    clip: FloatRect = {
        "x": 0,
        "y": 0,
        "width": page.viewport_size["width"] if page.viewport_size else PHONE["width"],
        "height": min(int(height), MAX_PHONE_HEIGHT),
    }
    await page.screenshot(path=str(path), full_page=True, clip=clip)


async def capture(
    url: str,
    username: str,
    password: str,
    out: Path,
    *,
    chromium: Path = CHROMIUM,
    settle_s: float = 1.0,
) -> list[Path]:
    """Log in at ``url`` and write the two screenshots into ``out`` (an existing directory);
    their paths."""
    from playwright.async_api import async_playwright  # noqa: PLC0415 - optional dependency

    written = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), args=list(CHROMIUM_ARGS))
        try:
            desktop = await browser.new_page(viewport=DESKTOP)
            phone = await browser.new_page(viewport=PHONE, device_scale_factor=2)
            for page in (desktop, phone):
                await log_in(page, url, username, password)
            await asyncio.sleep(settle_s)  # let the retained state and a few events arrive
            written = [out / "dashboard-desktop.png", out / "dashboard-phone.png"]
            await shoot_desktop(desktop, written[0])
            await shoot_phone(phone, written[1])
        finally:
            await browser.close()
    return written


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m simbank.web.screenshots", description=__doc__)
    p.add_argument("--url", required=True, help="the dashboard, e.g. http://127.0.0.1:8080/")
    p.add_argument("--user", required=True, help="broker user to log in as")
    p.add_argument("--password-file", type=Path, required=True, help="file with its password")
    p.add_argument("--out", type=Path, default=Path("docs/img"), help="directory (docs/img)")
    p.add_argument("--chromium", type=Path, default=CHROMIUM, help="browser binary")
    p.add_argument(
        "--settle",
        type=float,
        default=1.0,
        help="seconds between logging in and the shots, for live events to arrive (1)",
    )
    args = p.parse_args(argv)
    if not args.chromium.exists():
        print(f"no {args.chromium}: sudo apt-get install -y chromium", file=sys.stderr)
        return 69
    try:
        password = args.password_file.read_text(encoding="utf-8").splitlines()[0].strip()
    except (OSError, IndexError):
        print(f"cannot read a password from {args.password_file}", file=sys.stderr)
        return 78
    args.out.mkdir(parents=True, exist_ok=True)
    for path in asyncio.run(
        capture(
            args.url, args.user, password, args.out, chromium=args.chromium, settle_s=args.settle
        )
    ):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
