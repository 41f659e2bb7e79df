"""ccxt's own `hyperliquid` class, unmodified (sandbox mode, signing like the SDK), against the simulator."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt
import pytest

BTC = "BTC/USDC:USDC"
ETH = "ETH/USDC:USDC"


@pytest.fixture
def hyperliquid(sim: Any, funded_account: Any) -> ccxt.hyperliquid:
    exchange = ccxt.hyperliquid(
        {
            "privateKey": funded_account.private_key,
            "walletAddress": funded_account.address,
            "enableRateLimit": False,
        }
    )
    # Sandbox mode makes ccxt sign with the testnet source ("b"), which the simulator checks;
    # ccxt joins urls['api'][name] + '/' + 'info' | 'exchange'.
    exchange.set_sandbox_mode(True)
    exchange.urls["api"] = {"public": sim.hl_url, "private": sim.hl_url}
    sim.admin.set_price("BTC", "95000", venue="hyperliquid")
    sim.admin.set_price("ETH", "3200", venue="hyperliquid")
    exchange.load_markets()
    return exchange


def _position(exchange: ccxt.hyperliquid, symbol: str) -> Decimal:
    for position in exchange.fetch_positions([symbol]):
        if position["symbol"] == symbol:
            size = Decimal(str(position["contracts"]))
            return size if position["side"] == "long" else -size
    return Decimal(0)


def test_load_markets(hyperliquid: ccxt.hyperliquid) -> None:
    btc = hyperliquid.market(BTC)
    assert btc["swap"] and btc["settle"] == "USDC" and btc["baseId"] == "0"
    assert btc["precision"]["amount"] == pytest.approx(0.00001)
    assert btc["limits"]["leverage"]["max"] == 40
    assert any(m["info"].get("name") == "kPEPE" for m in hyperliquid.markets.values())
    assert len([m for m in hyperliquid.markets.values() if m["swap"]]) == 50


def test_market_order_then_fetch_order_and_positions(
    sim: Any, hyperliquid: ccxt.hyperliquid, funded_account: Any
) -> None:
    assert hyperliquid.fetch_positions() == []
    # ccxt turns a market order into an IOC limit 5 % through the given price
    order = hyperliquid.create_order(BTC, "market", "buy", 0.01, 95000)
    assert order["id"]
    fetched = hyperliquid.fetch_order(order["id"], BTC)
    assert fetched["status"] == "closed" and fetched["filled"] == pytest.approx(0.01)
    positions = hyperliquid.fetch_positions()
    assert [(p["symbol"], p["side"], p["contracts"]) for p in positions] == [(BTC, "long", 0.01)]
    assert sim.admin.position("hyperliquid", funded_account.address, "BTC") == "0.01"


def test_limit_order_cancel(hyperliquid: ccxt.hyperliquid) -> None:
    order = hyperliquid.create_order(BTC, "limit", "buy", 0.001, 90000)
    assert [o["id"] for o in hyperliquid.fetch_open_orders(BTC)] == [order["id"]]
    assert hyperliquid.fetch_order(order["id"], BTC)["status"] == "open"
    hyperliquid.cancel_order(order["id"], BTC)
    assert hyperliquid.fetch_order(order["id"], BTC)["status"] == "canceled"
    assert hyperliquid.fetch_open_orders(BTC) == []


def test_reduce_only(hyperliquid: ccxt.hyperliquid) -> None:
    with pytest.raises(ccxt.ExchangeError):  # nothing to reduce: the venue refuses
        hyperliquid.create_order(ETH, "market", "sell", 0.1, 3200, params={"reduceOnly": True})
    hyperliquid.create_order(ETH, "market", "sell", 0.1, 3200)
    assert _position(hyperliquid, ETH) == Decimal("-0.1")
    closing = hyperliquid.create_order(ETH, "market", "buy", 0.5, 3200, params={"reduceOnly": True})
    assert hyperliquid.fetch_order(closing["id"], ETH)["reduceOnly"] is True
    assert _position(hyperliquid, ETH) == 0


def test_client_order_id_round_trip(hyperliquid: ccxt.hyperliquid) -> None:
    cloid = "0x" + "ab" * 16
    order = hyperliquid.create_order(BTC, "limit", "buy", 0.001, 90000, params={"clientOrderId": cloid})
    by_cloid = hyperliquid.fetch_order(None, BTC, params={"clientOrderId": cloid})
    assert by_cloid["id"] == order["id"] and by_cloid["clientOrderId"] == cloid
    hyperliquid.cancel_order(None, BTC, params={"clientOrderId": cloid})
    assert hyperliquid.fetch_order(order["id"], BTC)["status"] == "canceled"
