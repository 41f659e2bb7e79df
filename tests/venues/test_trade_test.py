"""`newstrader check --trade-test` against the simulator: one clear line per failure, nothing left resting."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from newstrader.config import settings_from_mapping
from newstrader.preflight import VenueCheck, check_all

from .live import live_trade_test

KINDS = ("hyperliquid", "aster")


def _key(wallet: Any) -> str:
    return "0x" + bytes(wallet.key).hex()


def _settings(sim: Any, accounts: dict[str, tuple[str, str]], env: pytest.MonkeyPatch) -> Any:
    """`accounts`: kind → (account address, signing key); the keys go where they belong, the env."""
    venues = []
    for kind, (account, secret) in accounts.items():
        env.setenv(f"NEWSTRADER_{kind.upper()}_SECRET", secret)
        url = sim.hl_url if kind == "hyperliquid" else sim.aster_url
        venues.append({"name": kind, "kind": kind, "network": "sim", "url": url, "account": account})
    return settings_from_mapping({"venues": venues})


def _nothing_rests(sim: Any, *addresses: str) -> None:
    for venue in sim.admin.state()["venues"].values():
        for address in addresses:
            account = venue["accounts"].get(address.lower())
            assert account is None or not account.get("open_orders"), account


def _funded(sim: Any, usd: int = 10_000) -> tuple[Any, dict[str, tuple[str, str]]]:
    wallet = Account.create()
    sim.admin.create_account(wallet.address, usd=usd)
    return wallet, {kind: (wallet.address, _key(wallet)) for kind in KINDS}


def _orders_placed(sim: Any) -> dict[str, int]:
    requests = sim.admin.stats()["requests"]
    return {
        "hyperliquid": requests.get("hyperliquid", {}).get("exchange:order", 0),
        "aster": requests.get("aster", {}).get("POST /fapi/v3/order", 0),
    }


async def test_funded_account_passes_and_leaves_nothing(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    wallet, accounts = _funded(sim)
    results = await check_all(_settings(sim, accounts, monkeypatch), trade_test=True)
    for result in results:
        assert result.ok, result.problems
        assert result.trade_test.startswith("ok: post-only buy"), result.trade_test
    assert _orders_placed(sim) == {"hyperliquid": 1, "aster": 1}
    _nothing_rests(sim, wallet.address)


async def test_unfunded_account_one_clear_line(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    wallet, accounts = _funded(sim, usd=0)
    for result in await check_all(_settings(sim, accounts, monkeypatch), trade_test=True):
        assert not result.ok
        assert [p for p in result.problems if "trade test" in p] == [f"trade test {result.trade_test}"]
        assert result.trade_test.startswith("unfunded: the account has no margin"), result.trade_test
    _nothing_rests(sim, wallet.address)


async def test_unapproved_agent_one_clear_line(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    user, agent = Account.create(), Account.create()
    sim.admin.create_account(user.address, usd=10_000)
    accounts = {kind: (user.address, _key(agent)) for kind in KINDS}
    results = {r.kind: r for r in await check_all(_settings(sim, accounts, monkeypatch), trade_test=True)}
    for result in results.values():
        assert not result.ok
        assert len(result.problems) == 1 and "approve the agent / API wallet" in result.problems[0]
    # Hyperliquid reads need no signature: only the order shows the agent is not approved.
    assert results["hyperliquid"].trade_test.startswith("not approved")
    # Aster signs every account read: the read already says so, and no order is tried.
    assert results["aster"].trade_test.startswith("not run: credentials refused")
    assert _orders_placed(sim)["aster"] == 0
    _nothing_rests(sim, user.address)


async def test_clock_30_s_behind_one_clear_line(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    wallet, accounts = _funded(sim)
    real, real_ns = time.time, time.time_ns
    monkeypatch.setattr(time, "time", lambda: real() - 30)
    monkeypatch.setattr(time, "time_ns", lambda: real_ns() - 30 * 10**9)
    results = {r.kind: r for r in await check_all(_settings(sim, accounts, monkeypatch), trade_test=True)}
    for result in results.values():
        assert not result.ok
        assert any(p.startswith("clock skew -") and "NTP" in p for p in result.problems), result.problems
    # Hyperliquid refuses the order itself (expiresAfter already past): the test says why.
    assert results["hyperliquid"].trade_test.startswith("clock: the venue refused our request time")
    # Aster's adapter corrects its clock from the server's time, so its order goes through.
    assert results["aster"].trade_test.startswith("ok")
    _nothing_rests(sim, wallet.address)


@pytest.mark.parametrize("kind", KINDS)
async def test_lost_reply_still_cancelled_by_client_id(
    sim: Any, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order reaches the venue but its reply is lost: it is cancelled by client id all the same."""
    wallet, accounts = _funded(sim)
    endpoint = "exchange:order" if kind == "hyperliquid" else "POST /fapi/v3/order"
    sim.admin.add_fault(kind, "drop_response_after_execute", count=1, endpoint=endpoint)
    (result,) = await check_all(_settings(sim, {kind: accounts[kind]}, monkeypatch), trade_test=True)
    assert sim.admin.stats()["faults_fired"] == {"drop_response_after_execute": 1}
    assert result.trade_test.startswith("refused: Ambiguous"), result.trade_test
    assert not any("may still rest" in p for p in result.problems)
    _nothing_rests(sim, wallet.address)
    assert isinstance(result, VenueCheck)


def test_cli_trade_test_reports_per_venue(tmp_path: Path, sim: Any) -> None:
    wallet = Account.create()
    sim.admin.create_account(wallet.address, usd=10_000)
    config = tmp_path / "newstrader.toml"
    urls = {"hyperliquid": sim.hl_url, "aster": sim.aster_url}
    config.write_text(
        "".join(
            f'[[venues]]\nname = "{kind}"\nkind = "{kind}"\nnetwork = "sim"\n'
            f'url = "{urls[kind]}"\naccount = "{wallet.address}"\n\n'
            for kind in KINDS
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSTRADER_")}
    env.update({"NEWSTRADER_HYPERLIQUID_SECRET": _key(wallet), "NEWSTRADER_ASTER_SECRET": _key(wallet)})
    done = subprocess.run(
        [sys.executable, "-m", "newstrader.cli", "check", "--trade-test", "-c", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()[1:]
    assert [line.split()[:2] for line in lines] == [["ok", "hyperliquid"], ["ok", "aster"]]
    assert all("trade test ok: post-only buy" in line for line in lines)
    _nothing_rests(sim, wallet.address)


@pytest.mark.parametrize("kind", KINDS)
async def test_live_testnet_runner_against_the_testnet_simulator(
    sim: Any, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What test_live_*_testnet.py run with real keys, here on the simulator (which plays testnet)."""
    user, agent = Account.create(), Account.create()
    sim.admin.create_account(user.address, usd=10_000, signers=[agent.address])
    url = sim.hl_url if kind == "hyperliquid" else sim.aster_url
    result = await live_trade_test(monkeypatch, kind, _key(agent), user.address, url=url)
    assert result.ok and result.network == "testnet", result.problems
    assert result.trade_test.startswith("ok: post-only buy")
    _nothing_rests(sim, user.address)


async def test_the_engine_sends_the_probe_only_as_a_post_only_limit(tmp_path: Path) -> None:
    """`Executor.place_resting` (the trade test's sender) is no back door for an order that fills."""
    from decimal import Decimal

    from newstrader.domain import OrderRequest, OrderType, TimeInForce
    from newstrader.engine.executor import Executor
    from newstrader.journal import Journal

    journal = await Journal.open(f"sqlite:///{tmp_path / 'j.db'}")
    try:
        gateway = Executor({}, journal)
        for order in (
            OrderRequest("BTC", True, Decimal("0.001"), "nt-x-1"),  # market
            OrderRequest(
                "BTC", True, Decimal("0.001"), "nt-x-2", order_type=OrderType.LIMIT, limit_price=Decimal(1)
            ),  # limit IOC
        ):
            with pytest.raises(ValueError, match="post-only"):
                await gateway.place_resting("hyperliquid", order, op_id="x")
            assert order.tif is not TimeInForce.POST_ONLY
            assert await journal.intent(order.client_id) is None  # nothing journaled, nothing sent
    finally:
        await journal.close()
