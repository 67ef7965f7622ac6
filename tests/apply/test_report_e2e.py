"""`tradectl report` on a journal written by `tradectl apply` against the simulated gateway:
figures checked against the sim's own executions, and the HTML report opened in a real
headless Chromium (Debian's package, driven by Playwright's Python API)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tradectl.cli import main

from .conftest import Gateway, Outcome, write_rules

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")


def allocation(weight: float) -> dict[str, Any]:
    return {
        "core": {
            "capital": {"amount": 50_000},
            "drift": {"absolute": 0.001},
            "targets": {"AAPL": weight},
        }
    }


@pytest.fixture
def traded_day(
    tmp_path: Path, gateway: Gateway, apply_in_process: Callable[..., Outcome]
) -> Gateway:
    """Buy 100 AAPL at 100, the price rises to 110, sell 60 of them: a partial close."""
    rules = write_rules(tmp_path / "rules", gateway, allocations=allocation(0.2))
    assert apply_in_process(rules).code == 0
    assert gateway.positions() == {"AAPL": 100}
    gateway.sim.control.set_price("AAPL", 110.0)
    write_rules(tmp_path / "rules", gateway, allocations=allocation(0.088))
    assert apply_in_process(rules).code == 0
    assert gateway.positions() == {"AAPL": 40}
    # One more pass: it settles the commission reports and samples the account at the close.
    assert apply_in_process(rules).code == 0
    return gateway


def report(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    code = main(["report", "--state-dir", str(tmp_path / "state"), *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def test_report_figures_match_the_sims_executions(
    tmp_path: Path, traded_day: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    executions = traded_day.sim.snapshot().executions
    buy = next(e for e in executions if e.side == "BOT")
    sell = next(e for e in executions if e.side == "SLD")
    expected_realized = sell.shares * (sell.price - sell.commission / sell.shares) - sell.shares * (
        buy.price + buy.commission / buy.shares
    )

    data = json.loads(report(tmp_path, capsys, "--format", "json"))

    (core,) = data["rules"]
    assert core["rule"] == "core"
    assert core["fills"] == 2
    assert core["bought"] == pytest.approx(buy.shares * buy.price)
    assert core["sold"] == pytest.approx(sell.shares * sell.price)
    assert core["commissions"] == pytest.approx(buy.commission + sell.commission)
    assert core["realized"] == pytest.approx(expected_realized)
    assert core["order_efficiency"] == pytest.approx(2 / 3)
    (day,) = data["days"]
    snapshot = traded_day.sim.snapshot()
    assert day["nav_close"] == pytest.approx(snapshot.net_liquidation)
    assert day["daily_pnl"] == pytest.approx(snapshot.net_liquidation - day["nav_open"])
    assert day["breaker_headroom"] == pytest.approx(
        snapshot.net_liquidation - day["nav_open"] * 0.95
    )
    (weight,) = data["weights"]
    assert weight["symbol"] == "AAPL"
    assert weight["weight"] == pytest.approx(40 * 110 / 50_000)
    assert weight["target"] == pytest.approx(0.088)
    assert [order["side"] for order in data["orders"]] == ["BUY", "SELL"]

    text = report(tmp_path, capsys)
    assert "core" in text and "realized P&L" in text
    assert f"{expected_realized:,.2f}" in text


def test_html_report_renders_in_headless_chromium(
    tmp_path: Path, traded_day: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.html"
    report(tmp_path, capsys, "--format", "html", "--out", str(out))
    page_text = out.read_text()
    for external in ('src="http', 'href="http', "url(http", "<script", "<link", "@import"):
        assert external not in page_text

    if not CHROMIUM.exists() or shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

    console_errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page()
            page.on(
                "console",
                lambda message: (
                    console_errors.append(message.text) if message.type == "error" else None
                ),
            )
            page.on("pageerror", lambda error: console_errors.append(str(error)))
            page.on("request", lambda request: requests.append(request.url))
            page.goto(out.resolve().as_uri(), wait_until="load")

            for selector in (
                "#chart-weights svg",
                "#weight-core-AAPL",
                "#band-core-AAPL",
                "#targets",
                "#chart-nav svg",
                "#nav-line",
                "#chart-fills-AAPL svg",
                "#price-AAPL",
                "#fills-buy-AAPL",
                "#fills-sell-AAPL",
            ):
                # Visible: rendered with a size (a flat line has no height, so not is_visible).
                box = page.locator(selector).first.bounding_box()
                assert box is not None and box["width"] + box["height"] > 5, selector
            rows = page.locator("h2:text('Orders') + table tbody tr")
            assert rows.count() == 2
            assert "SELL" in rows.nth(1).inner_text()
            screenshot = tmp_path / "report.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()

    assert screenshot.stat().st_size > 10_000
    assert console_errors == []
    assert requests == [out.resolve().as_uri()]
