"""ccxt's own `aster` class (4.5.90: v3 EIP-712 only), unmodified, against the simulator."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt
import pytest

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


def _aster(sim: Any, private_key: str, wallet: str, **options: Any) -> ccxt.aster:
    exchange = ccxt.aster(
        {
            "privateKey": private_key,
            "walletAddress": wallet,
            # the simulator plays testnet (chain id 714); ccxt signs for mainnet (1666) by default
            "options": {"builderFee": False, "v3ChainId": 714, **options},
            "enableRateLimit": False,
        }
    )
    # ccxt joins urls['api'][name] + '/' + 'v3/order', so the generation stays in the path.
    exchange.urls["api"] = {
        "fapiPublic": f"{sim.aster_url}/fapi",
        "fapiPrivate": f"{sim.aster_url}/fapi",
        "sapiPublic": f"{sim.aster_url}/api",
        "sapiPrivate": f"{sim.aster_url}/api",
    }
    return exchange


@pytest.fixture
def aster(sim: Any, funded_account: Any) -> ccxt.aster:
    exchange = _aster(sim, funded_account.private_key, funded_account.address)
    exchange.load_markets()
    return exchange


def _position(exchange: ccxt.aster, symbol: str) -> Decimal:
    for position in exchange.fetch_positions([symbol]):
        if position["symbol"] == symbol:
            size = Decimal(str(position["contracts"]))
            return size if position["side"] == "long" else -size
    return Decimal(0)


def test_load_markets(aster: ccxt.aster) -> None:
    market = aster.market(BTC)
    assert market["id"] == "BTCUSDT" and market["swap"] and market["linear"] and market["settle"] == "USDT"
    assert market["precision"]["amount"] == pytest.approx(0.00001)
    assert market["limits"]["cost"]["min"] == 5
    assert aster.market("1000PEPE/USDT:USDT")["id"] == "1000PEPEUSDT"
    assert len([m for m in aster.markets.values() if m["swap"]]) == 50


def test_market_order_position_and_fetch_order(sim: Any, aster: ccxt.aster, funded_account: Any) -> None:
    assert aster.fetch_positions() == []
    order = aster.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "ccxt-m-1"})
    assert order["id"] and order["clientOrderId"] == "ccxt-m-1"
    fetched = aster.fetch_order(order["id"], BTC)
    assert fetched["status"] == "closed" and fetched["filled"] == pytest.approx(0.01)
    assert fetched["average"] > 0
    by_client_id = aster.fetch_order(None, BTC, params={"clientOrderId": "ccxt-m-1"})
    assert by_client_id["id"] == order["id"]
    positions = aster.fetch_positions()
    assert [(p["symbol"], p["side"], p["contracts"]) for p in positions] == [(BTC, "long", 0.01)]
    assert sim.admin.position("aster", funded_account.address, "BTC") == "0.01"


def test_limit_order_cancel(aster: ccxt.aster) -> None:
    order = aster.create_order(BTC, "limit", "buy", 0.001, 80000)
    assert order["status"] == "open"
    assert [o["id"] for o in aster.fetch_open_orders(BTC)] == [order["id"]]
    canceled = aster.cancel_order(order["id"], BTC)
    assert canceled["status"] == "canceled"
    assert aster.fetch_order(order["id"], BTC)["status"] == "canceled"
    assert aster.fetch_open_orders(BTC) == []
    with pytest.raises(ccxt.OrderNotFound):
        aster.cancel_order(order["id"], BTC)


def test_reduce_only_close_and_refusal(aster: ccxt.aster) -> None:
    with pytest.raises(ccxt.OperationRejected):  # -2022: nothing to reduce
        aster.create_order(ETH, "market", "sell", 0.1, params={"reduceOnly": True})
    aster.create_order(ETH, "market", "sell", 0.1)
    assert _position(aster, ETH) == Decimal("-0.1")
    close = aster.create_order(ETH, "market", "buy", 0.1, params={"reduceOnly": True})
    assert aster.fetch_order(close["id"], ETH)["reduceOnly"] is True
    assert _position(aster, ETH) == 0


def test_errors_map_to_ccxt_exceptions(aster: ccxt.aster) -> None:
    with pytest.raises(ccxt.ExchangeError, match="-4164"):
        aster.create_order(BTC, "market", "buy", 0.00001)
    with pytest.raises(ccxt.OrderNotFound):
        aster.fetch_order("123", BTC)


def test_agent_signer_for_a_main_wallet(sim: Any, funded_account: Any) -> None:
    """The Pro-API model: an API wallet signs for the user's main address once approved."""
    from eth_account import Account

    agent = Account.create()
    exchange = _aster(
        sim,
        "0x" + bytes(agent.key).hex(),
        funded_account.address,
        cachedWalletAddress=funded_account.address,
        privateKeyHashForCachedWalletAddress=None,
        signerAddress=agent.address,
    )
    exchange.load_markets()
    # ccxt re-derives the wallet from the key unless the cached hash matches; pin it the way ccxt does
    exchange.options["privateKeyHashForCachedWalletAddress"] = exchange.hash(
        exchange.encode(exchange.privateKey), "keccak", "hex"
    )
    with pytest.raises(ccxt.AuthenticationError):
        exchange.fetch_positions()
    sim.admin.add_agent(funded_account.address, agent.address, venue="aster")
    exchange.create_order(BTC, "market", "buy", 0.001)
    assert sim.admin.position("aster", funded_account.address, "BTC") == "0.001"


def test_injected_429_and_lost_response(sim: Any, aster: ccxt.aster, funded_account: Any) -> None:
    """Faults reach ccxt as the real venue's would: a 429 it understands, a reply that never comes."""
    sim.admin.add_fault("aster", "http_429", count=1, endpoint="GET /fapi/v3/positionRisk")
    with pytest.raises(ccxt.RateLimitExceeded):
        aster.fetch_positions()
    assert aster.fetch_positions() == []  # the fault was for one request only
    sim.admin.add_fault("aster", "drop_response_after_execute", count=1, endpoint="POST /fapi/v3/order")
    with pytest.raises(ccxt.NetworkError):
        aster.create_order(BTC, "market", "buy", 0.002, params={"clientOrderId": "lost-1"})
    # the order did execute: asking by client id tells the truth
    found = aster.fetch_order(None, BTC, params={"clientOrderId": "lost-1"})
    assert found["status"] == "closed" and found["filled"] == pytest.approx(0.002)
    assert _position(aster, BTC) == Decimal("0.002")
