"""`newstrader init --sim` → `newstrader sim` → `newstrader run` trades, with no other step; the
journal and key files it writes are 0600.

The CLI processes do the work; the truth is the simulator's own state.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSTRADER_")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def _cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newstrader.cli", *args],
        cwd=cwd,
        env=_clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _until(condition: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)  # poll interval
    return found


def _accounts(config: Path) -> dict[str, str]:
    found = re.findall(r'^account = "(0x[0-9a-fA-F]{40})"', config.read_text(), re.MULTILINE)
    return {"hyperliquid": found[0], "aster": found[1]}


def test_init_sim_writes_private_keys_and_check_funds_and_shows_balances(tmp_path: Path, sim: Any) -> None:
    done = _cli("init", "--sim", "--sim-url", sim.url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    config = tmp_path / "newstrader.toml"
    for name in ("hyperliquid.key", "aster.key"):
        mode = stat.S_IMODE((tmp_path / "keys" / name).stat().st_mode)
        assert mode == 0o600, oct(mode)
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    key = (tmp_path / "keys" / "hyperliquid.key").read_text().strip()
    assert Account.from_key(key).address == _accounts(config)["hyperliquid"]
    assert key not in config.read_text() and key not in done.stdout + done.stderr

    first = _cli("check", "-c", "newstrader.toml", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "hyperliquid: funded" in first.stderr and "aster: funded" in first.stderr
    venue_lines = first.stdout.splitlines()[1:]
    assert all("balance 10000.00 USD" in line for line in venue_lines), venue_lines
    second = _cli("check", "-c", "newstrader.toml", cwd=tmp_path)
    assert "funded" not in second.stderr  # once: an existing account is never topped up
    again = _cli("init", "--sim", "--sim-url", sim.url, cwd=tmp_path)
    assert again.returncode == 1 and "exists" in again.stderr  # keys are never overwritten silently


def test_check_warns_when_a_balance_is_zero(tmp_path: Path, sim: Any) -> None:
    assert _cli("init", "--sim", "--sim-url", sim.url, cwd=tmp_path).returncode == 0
    config = tmp_path / "newstrader.toml"
    config.write_text(config.read_text().replace("sim_fund_usd = 10000", ""))
    accounts = _accounts(config)
    signer = re.search(r'^signer = "(0x[0-9a-fA-F]{40})"', config.read_text(), re.MULTILINE)
    assert signer is not None
    sim.admin.create_account(accounts["hyperliquid"], usd=0, venue="hyperliquid")
    sim.admin.create_account(accounts["aster"], usd=0, venue="aster", signers=[signer.group(1)])
    done = _cli("check", "-c", "newstrader.toml", cwd=tmp_path)
    lines = done.stdout.splitlines()[1:]
    assert len(lines) == 2
    for line in lines:
        assert "balance 0.00 USD" in line and "note: balance is 0: fund the account" in line, line


def test_init_sim_then_run_trades_with_no_other_step(tmp_path: Path, sim: Any) -> None:
    assert _cli("init", "--sim", "--sim-url", sim.url, cwd=tmp_path).returncode == 0
    accounts = _accounts(tmp_path / "newstrader.toml")
    port = _free_port()
    log = (tmp_path / "run.log").open("w+")
    process = subprocess.Popen(  # the port override only keeps parallel tests apart
        [sys.executable, "-m", "newstrader.cli", "run", "-c", "newstrader.toml"],
        cwd=tmp_path,
        env=_clean_env(NEWSTRADER_WEB__PORT=str(port)),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        token = _until(
            lambda: re.search(r"web token \(generated.*\): (\S+)", (tmp_path / "run.log").read_text())
        )
        _until(lambda: "newstrader listening on" in (tmp_path / "run.log").read_text())
        answer = httpx.post(
            f"http://127.0.0.1:{port}/api/news",
            json={"title": "test: long BTC", "coin": "BTC", "side": "long", "source": "test"},
            headers={"Authorization": f"Bearer {token.group(1)}"},
            timeout=60,
        )
        assert answer.status_code in (200, 202), answer.text
        for venue, account in accounts.items():
            _until(lambda v=venue, a=account: sim.admin.position(v, a, "BTC") != "0")
            assert float(sim.admin.position(venue, account, "BTC")) > 0
        for name in ("newstrader.db", "newstrader.db-wal", "newstrader.db-shm"):  # while it runs
            mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
            assert mode == 0o600, (name, oct(mode))
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
    assert "funded" in (tmp_path / "run.log").read_text()


def test_the_example_config_shows_url_and_account_for_each_venue(tmp_path: Path) -> None:
    """`newstrader init`: the Aster table shows `url` and `account` like the Hyperliquid one."""
    assert _cli("init", cwd=tmp_path).returncode == 0
    text = (tmp_path / "newstrader.toml").read_text()
    tables = text.split("[[venues]]")[1:]
    assert len(tables) == 2
    for table in tables:
        kind = re.search(r'^kind = "(\w+)"', table, re.MULTILINE)
        assert kind is not None
        assert re.search(rf'^# url = "http://127\.0\.0\.1:8900/{kind.group(1)}"', table, re.MULTILINE), table
        assert re.search(r'^# account = "0x\.\.\."', table, re.MULTILINE), table
