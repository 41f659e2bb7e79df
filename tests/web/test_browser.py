"""The dashboard in Debian's Chromium (headless, through Playwright; no browser is downloaded).

Log in; a wrong token is refused; post a headline and see the position appear with its drift
state; press Flatten and see the simulator go flat. Screenshots go to tests/artifacts/screenshots/
(docs/img/ with NEWSTRADER_UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import RunningStack

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("web")]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
_ROOT = Path(__file__).resolve().parents[2]
# Every run saves its screenshots; only a run asked to refresh the README's pictures writes them
# into the tracked docs/img/ (NEWSTRADER_UPDATE_SCREENSHOTS=1 make test), so a plain test run
# leaves the work tree clean.
SHOTS = _ROOT / (
    "docs/img" if os.environ.get("NEWSTRADER_UPDATE_SCREENSHOTS") else "tests/artifacts/screenshots"
)
SHOTS.mkdir(parents=True, exist_ok=True)
UI_TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "browser tests need Debian's chromium (make setup installs it)"
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    try:
        yield page
    finally:
        context.close()


def log_in(page: Any, stack: RunningStack, token: str) -> None:
    page.goto(stack.url + "/")
    page.fill("#token", token)
    page.click("#login-button")


def test_wrong_token_is_refused(page: Any, stack: RunningStack) -> None:
    data_calls: list[int] = []
    page.on("response", lambda r: data_calls.append(r.status) if "/api/positions" in r.url else None)
    log_in(page, stack, "definitely-wrong")
    page.get_by_test_id("login-error").filter(has_text="Wrong token").wait_for()
    assert page.locator("#login").is_visible()
    assert page.evaluate("sessionStorage.getItem('newstrader.token')") is None
    assert 200 not in data_calls  # no data reached the page
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "login-refused.png"))


def test_headline_opens_position_then_flatten_goes_flat(page: Any, flat_stack: RunningStack) -> None:
    stack = flat_stack
    log_in(page, stack, stack.token)
    page.locator("#login").wait_for(state="hidden")
    page.get_by_test_id("live-state").filter(has_text="live").wait_for()
    assert stack.token not in page.content()
    # A round mark: Hyperliquid's positionValue / size is Decimal("3.2E+3"); the page shows 3200.
    stack.sim_admin("POST", "/price", {"coin": "ETH", "price": "3200"})

    # A TradingView-style alert typed into the dashboard's test-headline form.
    page.fill("#news-title", f"Browser test: ETH breaks out {uuid.uuid4().hex[:6]}")
    page.fill("#news-coin", "ETH")
    page.select_option("#news-side", "long")
    page.get_by_test_id("send-news").click()
    page.get_by_test_id("news-result").filter(has_text="signal long ETH").wait_for()
    # The answer comes before the orders; each venue's outcome replaces "executing…" when it arrives.
    result = page.get_by_test_id("news-result").filter(has_text="aster: ok")
    result.filter(has_text="hyperliquid: ok").wait_for()

    row = page.locator('tr[data-venue="aster"][data-coin="ETH"]')
    row.wait_for()
    truth = stack.exchange_positions()[("aster", "ETH")]
    page.wait_for_function(
        """([sel, size]) => {
             const cell = document.querySelector(sel + ' [data-testid=exchange-size]');
             return cell && Number(cell.textContent) === Number(size);
           }""",
        arg=['tr[data-venue="aster"][data-coin="ETH"]', str(truth)],
    )
    assert Decimal(row.get_by_test_id("exchange-size").inner_text()) == truth
    assert row.get_by_test_id("drift-badge").inner_text() == "in sync"
    hl_mark = page.locator('tr[data-venue="hyperliquid"][data-coin="ETH"] [data-testid=mark-price]')
    assert hl_mark.inner_text() == "3200"  # plain, never 3.2E+3
    assert not re.search(r"\d[eE][+-]?\d", page.locator("#positions").inner_text())
    page.locator("#signals tbody tr").first.wait_for()
    # Every signal says why (here: the alert gave coin and side), and news→fill counts from receipt.
    page.locator("#signals tbody tr").first.get_by_test_id("why").filter(
        has_text="given by the source"
    ).wait_for()
    page.get_by_test_id("news-to-fill").filter(has_text=" ms from receipt").wait_for()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("flatten").click()
    assert stack.wait_until(lambda: not stack.exchange_positions(), 15), stack.exchange_positions()
    page.get_by_test_id("run-state").filter(has_text="paused").wait_for()  # flatten is the kill switch
    page.get_by_test_id("paused-reason").filter(has_text="flatten since").wait_for()  # why, and since when
    page.wait_for_function(
        '() => !document.querySelector(\'tr[data-venue="aster"][data-coin="ETH"]\')'
        ' || Number(document.querySelector(\'tr[data-venue="aster"][data-coin="ETH"] '
        "[data-testid=exchange-size]').textContent) === 0"
    )
    page.screenshot(path=str(SHOTS / "dashboard-flat.png"), full_page=True)
    page.get_by_test_id("resume").click()
    page.get_by_test_id("run-state").filter(has_text="trading").wait_for()
    assert page.get_by_test_id("paused-reason").inner_text() == ""


def test_drift_badge_after_a_trade_outside_the_bot(page: Any, flat_stack: RunningStack) -> None:
    stack = flat_stack
    log_in(page, stack, stack.token)
    page.locator("#login").wait_for(state="hidden")
    account = stack.stack.accounts.address("aster")
    # Someone opens SOL by hand on the exchange's website: the exchange has it, the cache does not.
    stack.sim_admin("POST", "/position", {"venue": "aster", "account": account, "coin": "SOL", "size": "2"})
    # The auto trader copies exchange fills into the journal on its (slow, in tests) monitor turn.
    if stack.bot.autotrader is not None:
        stack.run(stack.bot.autotrader.run_once())
    page.reload()  # a fresh page reads the positions (the account streams) at once
    page.locator("#fills tbody tr").first.wait_for()
    page.wait_for_function(
        """() => document.querySelector(
                   'tr[data-venue="aster"][data-coin="SOL"] [data-testid=drift-badge]')""",
        timeout=UI_TIMEOUT_MS,
    )
    row = page.locator('tr[data-venue="aster"][data-coin="SOL"]')
    assert Decimal(row.get_by_test_id("exchange-size").inner_text()) == 2
    # The venue pushed the trade: it is reconciled as drift within a second (issue 15), so the
    # event is journaled and the cache adopts the position without waiting for a reconcile.
    page.reload()
    page.locator("#events tbody tr", has_text="SOL").first.wait_for()
    page.screenshot(path=str(SHOTS / "dashboard-drift.png"), full_page=True)
    page.get_by_test_id("reconcile").click()  # a manual reconcile finds nothing more
    page.wait_for_function(
        """() => document.querySelector('tr[data-venue="aster"][data-coin="SOL"] [data-testid=drift-badge]')
                   .textContent === 'in sync'"""
    )
    page.get_by_test_id("toast").wait_for(state="hidden")
    page.screenshot(path=str(SHOTS / "dashboard-reconciled.png"), full_page=True)

    # The row's Close button closes that coin on that venue, on the exchange.
    row.get_by_test_id("close-one").click()
    assert stack.wait_until(lambda: ("aster", "SOL") not in stack.exchange_positions(), 15)
    page.wait_for_function("""() => !document.querySelector('tr[data-venue="aster"][data-coin="SOL"]')""")
