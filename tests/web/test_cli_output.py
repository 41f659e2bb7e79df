"""What an operator reads from the CLI processes: tables and sentences, plain numbers, no crash.

Each verb runs as its own `newstrader` process against the running bot + simulator.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import RunningStack

pytestmark = pytest.mark.xdist_group("web")

EXPONENT = re.compile(r"\d[eE][+-]?\d")


def newstrader(stack: RunningStack, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("NEWSTRADER_")}
    env = {**base, "COLUMNS": "200", "NEWSTRADER_WEB_URL": stack.url, "NEWSTRADER_WEB_TOKEN": stack.token}
    return subprocess.run(
        [sys.executable, "-m", "newstrader.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=90,
    )


def _open_eth_long(stack: RunningStack) -> None:
    # A round mark: Hyperliquid's positionValue / size then reads 3.2E+3 unless printed plainly.
    stack.sim_admin("POST", "/price", {"coin": "ETH", "price": "3200"})
    with stack.api() as api:
        title = f"CLI output: ETH long {uuid.uuid4().hex[:8]}"
        answer = api.post("/api/news", json={"title": title, "coin": "ETH", "side": "long"})
        assert answer.status_code in (200, 202), answer.text
    assert stack.wait_until(lambda: len(stack.exchange_positions()) == 2, 20), stack.exchange_positions()


def _not_json(text: str) -> None:
    assert not text.lstrip().startswith(("{", "[")), text
    assert '": ' not in text, text  # no JSON object printed anywhere


def test_positions_after_a_liquidation_prints_the_drift_row(flat_stack: RunningStack) -> None:
    """Drift with exchange size 0 (a liquidation, a manual close) used to crash with a MarkupError."""
    stack = flat_stack
    _open_eth_long(stack)
    account = stack.stack.accounts.address("aster")
    stack.sim_admin("POST", "/liquidate", {"venue": "aster", "account": account, "coin": "ETH"})
    done = newstrader(stack, "positions")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    row = next(line for line in done.stdout.splitlines() if "aster" in line and "ETH" in line)
    assert "drift" in row and " 0 " in f" {row} "
    hl_row = next(line for line in done.stdout.splitlines() if "hyperliquid" in line and "ETH" in line)
    assert "3200" in hl_row  # the mark, plainly
    assert not EXPONENT.search(done.stdout), done.stdout
    with stack.api() as api:  # the API answers plain decimals too (the CLI only prints them)
        answer = api.get("/api/positions")
        assert not EXPONENT.search(answer.text), answer.text
        hl = next(p for p in answer.json()["positions"] if p["venue"] == "hyperliquid" and p["coin"] == "ETH")
        assert hl["mark_price"] == "3200"


def test_stats_money_has_two_decimals_and_one_label_per_figure(flat_stack: RunningStack) -> None:
    stack = flat_stack
    _open_eth_long(stack)
    assert newstrader(stack, "flatten", "--yes").returncode == 0  # a closed trade with PnL and fees
    stack.run(stack.bot.stats())  # the auto trader ingests the exchanges' fills (else once a minute)
    with stack.api() as api:
        assert Decimal(api.get("/api/stats").json()["fees"]) > 0
    done = newstrader(stack, "stats")
    assert done.returncode == 0, done.stderr
    assert not EXPONENT.search(done.stdout), done.stdout
    rows = [
        [cell.strip() for cell in line.strip("│┃ ").split("│")]
        for line in done.stdout.splitlines()
        if line.count("│") >= 1 and "Figure" not in line
    ]
    stats_rows = [r for r in rows if len(r) == 2]
    labels = [label for label, _ in stats_rows]
    assert len(labels) == len(set(labels)), labels  # no figure twice
    money = {label: value for label, value in stats_rows if "(USD)" in label}
    assert {"Fees (USD)", "Net realized PnL (USD)"} <= set(money), labels
    for label, value in money.items():
        assert re.fullmatch(r"-?\d+\.\d{2}", value), (label, value)
    assert float(money["Fees (USD)"]) > 0


def test_pause_resume_close_and_flatten_print_sentences_not_json(flat_stack: RunningStack) -> None:
    stack = flat_stack
    paused = newstrader(stack, "pause")
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.startswith("Paused (operator): no new positions until `newstrader resume`.")
    _not_json(paused.stdout)
    resumed = newstrader(stack, "resume")
    assert resumed.stdout.startswith("Resumed: the bot is trading.")
    _not_json(resumed.stdout)

    _open_eth_long(stack)
    closed = newstrader(stack, "close", "ETH", "--venue", "aster")
    assert closed.returncode == 0, closed.stderr
    _not_json(closed.stdout)
    assert "Closed: flat on every venue asked." in closed.stdout
    assert re.search(r"aster\s+│\s+ETH\s+│\s+0\.\d+\s+│\s+0\s+│\s+flat", closed.stdout), closed.stdout

    flattened = newstrader(stack, "flatten", "--yes")
    assert flattened.returncode == 0, flattened.stderr
    _not_json(flattened.stdout)
    assert "Flat: no position and no open order on any venue." in flattened.stdout
    assert re.search(r"hyperliquid\s+│\s+ETH\s+│", flattened.stdout), flattened.stdout
    assert "The bot is paused" in flattened.stdout  # the kill switch pauses
