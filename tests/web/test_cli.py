"""Every operator verb of the CLI against a running bot + simulator (URL and token from env or config)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import CliRunner

from newstrader.cli import app
from newstrader.logging_setup import configure_logging

if TYPE_CHECKING:
    from conftest import RunningStack

pytestmark = pytest.mark.xdist_group("web")


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def cli(
    stack: RunningStack,
    *args: str,
    token: str | None = None,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    own_process: bool = False,
) -> Run:
    """`newstrader ARGS` against the running bot: in this process (fast), or in its own."""
    if env is None:
        env = {"NEWSTRADER_WEB_URL": stack.url, "NEWSTRADER_WEB_TOKEN": token or stack.token}
    if own_process:
        base = {k: v for k, v in os.environ.items() if not k.startswith("NEWSTRADER_")}
        done = subprocess.run(
            [sys.executable, "-m", "newstrader.cli", *args],
            env={**base, "COLUMNS": "200", **env},
            input=stdin or "",
            capture_output=True,
            text=True,
            timeout=60,
        )
        return Run(done.returncode, done.stdout, done.stderr)
    # Unset what the test process may carry, so only `env` (or the config file) is used.
    cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith("NEWSTRADER_")}
    result = CliRunner().invoke(app, ["--log-level", "warning", *args], env={**cleared, **env}, input=stdin)
    # The verb pointed logging at the runner's (now closed) stream; the bot shares this process.
    configure_logging(level="warning")
    return Run(result.exit_code, result.stdout, result.stderr)


def cli_json(stack: RunningStack, *args: str) -> Any:
    result = cli(stack, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def open_eth_long(stack: RunningStack) -> str:
    """Open ETH long on both venues with a fresh headline (a repeated one would be a redelivery)."""
    title = f"CLI test: ETH long {uuid.uuid4().hex[:8]}"
    with stack.api() as api:  # `wait`: the orders (and their log lines) are done before the verb runs
        body = {"title": title, "coin": "ETH", "side": "long"}
        assert api.post("/api/news", json=body, params={"wait": 30}).json()["done"] is True
    assert stack.wait_until(lambda: stack.exchange_positions().get(("aster", "ETH"), 0) > 0, 15)
    return title


def test_positions_shows_the_exchange_next_to_the_cache(flat_stack: RunningStack) -> None:
    stack = flat_stack
    open_eth_long(stack)
    data = cli_json(stack, "positions")
    row = next(r for r in data["positions"] if r["venue"] == "aster" and r["coin"] == "ETH")
    assert Decimal(row["exchange_size"]) == stack.exchange_positions()[("aster", "ETH")]
    assert Decimal(row["cached_size"]) == Decimal(row["exchange_size"]) and row["drift"] is False
    table = cli(stack, "positions")
    assert table.exit_code == 0
    assert "aster" in table.stdout and "ETH" in table.stdout and "in sync" in table.stdout


def test_reconcile_reports_drift_from_an_outside_trade(flat_stack: RunningStack) -> None:
    stack = flat_stack
    open_eth_long(stack)
    account = stack.stack.accounts.address("aster")
    stack.sim_admin("POST", "/liquidate", {"venue": "aster", "account": account, "coin": "ETH"})
    result = cli(stack, "reconcile")
    assert result.exit_code == 0, result.output
    assert "ETH" in result.stdout and "aster" in result.stdout
    assert "stale_local_cleared" in result.stdout
    # A second reconcile finds nothing new: the cache now matches the exchange.
    again = cli_json(stack, "reconcile")
    assert not [e for e in again["detail"] if e["venue"] == "aster" and e["coin"] == "ETH"]


def test_close_one_coin_on_one_venue(flat_stack: RunningStack) -> None:
    stack = flat_stack
    open_eth_long(stack)
    result = cli(stack, "close", "eth", "--venue", "aster")
    assert result.exit_code == 0, result.output
    assert "Closed: flat on every venue asked." in result.stdout
    assert stack.wait_until(lambda: ("aster", "ETH") not in stack.exchange_positions(), 15)


def test_close_unknown_venue_is_refused_with_the_reason(flat_stack: RunningStack) -> None:
    result = cli(flat_stack, "close", "ETH", "--venue", "nosuch")
    assert result.exit_code == 1
    assert "nosuch" in result.output


def test_flatten_asks_first_and_does_nothing_when_refused(flat_stack: RunningStack) -> None:
    stack = flat_stack
    open_eth_long(stack)
    refused = cli(stack, "flatten", stdin="n\n")
    assert refused.exit_code == 1
    assert "not confirmed" in refused.output
    assert stack.exchange_positions().get(("aster", "ETH"), 0) > 0
    confirmed = cli(stack, "flatten", stdin="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert stack.wait_until(lambda: not stack.exchange_positions(), 15)


def test_flatten_yes_goes_flat(flat_stack: RunningStack) -> None:
    stack = flat_stack
    open_eth_long(stack)
    data = cli_json(stack, "flatten", "--yes")
    assert data["action"] == "flatten" and data["ok"] is True
    assert stack.wait_until(lambda: not stack.exchange_positions(), 15)


def test_pause_then_resume(flat_stack: RunningStack) -> None:
    stack = flat_stack
    paused = cli(stack, "pause")
    assert paused.exit_code == 0 and paused.stdout.startswith("Paused")
    with stack.api() as api:  # paused: a signal opens nothing
        title = f"CLI paused: SOL long {uuid.uuid4().hex[:8]}"
        api.post("/api/news", json={"title": title, "coin": "SOL", "side": "long"})
    assert ("aster", "SOL") not in stack.exchange_positions()
    resumed = cli_json(stack, "resume")
    assert resumed["paused"] is False
    with stack.api() as api:
        assert api.get("/api/stats").json()["paused"] is False


def test_signal_execute_shows_each_venues_outcome(flat_stack: RunningStack) -> None:
    stack = flat_stack
    text = f"Coinbase lists SOL perpetuals, SOL rallies {uuid.uuid4().hex[:8]}"
    human = cli(stack, "signal", text, "--execute")
    assert human.exit_code == 0, human.output
    lines = human.stdout.splitlines()
    assert any(line.startswith("bot: ") and "hyperliquid: ok" in line for line in lines), human.stdout
    assert "  hyperliquid: ok" in lines and "  aster: ok" in lines, human.stdout  # the outcome, as it arrived
    assert stack.exchange_positions().get(("aster", "SOL"), 0) > 0
    data = cli_json(
        stack, "signal", f"Solana hacked, exploit drains funds {uuid.uuid4().hex[:8]}", "--execute"
    )
    assert data["done"] is True and data["signal"]["side"] == "short"
    assert {o["venue"]: o["status"] for o in data["outcomes"]} == {"hyperliquid": "ok", "aster": "ok"}


def test_history_lists_news_and_signals(flat_stack: RunningStack) -> None:
    stack = flat_stack
    title = open_eth_long(stack)
    data = cli_json(stack, "history", "--limit", "5")
    assert any(n["title"] == title for n in data["news"])
    signal = next(s for s in data["signals"] if s["coin"] == "ETH")
    assert any(o["venue"] == "aster" for o in signal["outcomes"])
    table = cli(stack, "history")
    assert table.exit_code == 0 and "CLI test: ETH long" in table.stdout


def test_stats(flat_stack: RunningStack) -> None:
    stack = flat_stack
    open_eth_long(stack)
    data = cli_json(stack, "stats")
    assert {"realized_pnl", "fees", "fills", "pnl_curve", "summary"} <= set(data)
    assert data["summary"]["signal_to_fill_samples"] >= 1
    table = cli(stack, "stats")
    assert table.exit_code == 0 and "realized PnL" in table.stdout


def test_wrong_token_and_no_bot_are_one_clear_line(stack: RunningStack, tmp_path: Path) -> None:
    wrong = cli(stack, "positions", token="wrong-token", own_process=True)
    assert wrong.exit_code == 1 and "refused the token" in wrong.output
    assert "Traceback" not in wrong.output
    # The URL and token may come from the config's [web] table alone.
    config = tmp_path / "cfg.toml"
    port = stack.url.rsplit(":", 1)[1]
    config.write_text(f'[web]\nhost = "127.0.0.1"\nport = {port}\ntoken = "{stack.token}"\n')
    ok = cli(stack, "positions", "--json", "--config", str(config), env={}, own_process=True)
    assert ok.exit_code == 0, ok.output
    assert "positions" in json.loads(ok.stdout)
    config.write_text('[web]\nhost = "127.0.0.1"\nport = 9\ntoken = "x"\n')
    down = cli(stack, "positions", "--config", str(config), env={})
    assert down.exit_code == 1 and "no bot answering" in down.output
