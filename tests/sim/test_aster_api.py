"""The simulated Aster futures API driven by raw signed requests (v3 EIP-712 and legacy HMAC).

The signers here are deliberately tiny and test-only (eth_account / hmac), independent of both
the project's Aster adapter and the simulator's own verification code.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount

MAINNET = 1666
TESTNET = 714


def _typed(msg: str, chain_id: int) -> Any:
    return encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Message": [{"name": "msg", "type": "string"}],
            },
            "primaryType": "Message",
            "domain": {
                "name": "AsterSignTransaction",
                "version": "1",
                "chainId": chain_id,
                "verifyingContract": "0x0000000000000000000000000000000000000000",
            },
            "message": {"msg": msg},
        }
    )


class V3Client:
    """Signs like the Aster docs' demo: `<params>&nonce=…&user=…&signer=…&signature=0x…`."""

    def __init__(self, base: str, signer: LocalAccount, user: str | None = None, chain_id: int = TESTNET):
        self.http = httpx.Client(base_url=base, timeout=10.0)
        self.signer = signer
        self.user = user or signer.address
        self.chain_id = chain_id
        self.last_nonce = 0

    def next_nonce(self) -> int:
        self.last_nonce = max(int(time.time() * 1_000_000), self.last_nonce + 1)
        return self.last_nonce

    def signed(self, params: dict[str, Any], nonce: int | None = None, tamper: bool = False) -> str:
        full = {
            **{k: str(v) for k, v in params.items()},
            "nonce": str(nonce if nonce is not None else self.next_nonce()),
            "user": self.user,
            "signer": self.signer.address,
        }
        msg = urlencode(full)
        sig = "0x" + bytes(self.signer.sign_message(_typed(msg, self.chain_id)).signature).hex()
        if tamper:
            msg = msg.replace("nonce=", "nonce=9", 1)
        return msg + "&signature=" + sig

    def call(self, method: str, path: str, params: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
        payload = self.signed(params or {}, **kw)
        if method == "GET":
            return self.http.request(method, f"/fapi/v3/{path}?{payload}")
        return self.http.request(
            method,
            f"/fapi/v3/{path}",
            content=payload,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )


class HmacClient:
    """Legacy API key + HMAC-SHA256 with `timestamp`/`recvWindow`."""

    def __init__(self, base: str, api_key: str, secret: str):
        self.http = httpx.Client(base_url=base, timeout=10.0, headers={"X-MBX-APIKEY": api_key})
        self.secret = secret

    def call(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        timestamp_ms: int | None = None,
        bad_signature: bool = False,
    ) -> httpx.Response:
        full = {
            **{k: str(v) for k, v in (params or {}).items()},
            "recvWindow": "5000",
            "timestamp": str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)),
        }
        query = urlencode(full)
        sig = hmac.new(self.secret.encode(), query.encode(), hashlib.sha256).hexdigest()
        if bad_signature:
            sig = sig[:-1] + ("0" if sig[-1] != "0" else "1")
        payload = f"{query}&signature={sig}"
        if method == "GET":
            return self.http.request(method, f"{path}?{payload}")
        return self.http.request(
            method, path, content=payload, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )


def _error(response: httpx.Response) -> int:
    assert response.status_code >= 400, response.text
    body = response.json()
    assert isinstance(body["msg"], str) and body["msg"]
    return int(body["code"])


@pytest.fixture
def trader(sim: Any, funded_account: Any) -> V3Client:
    """A v3 client for a funded account signing with its own key (ccxt's default)."""
    return V3Client(sim.aster_url, funded_account.wallet)


def _position(client: V3Client, symbol: str = "BTCUSDT") -> Decimal:
    rows = client.call("GET", "positionRisk", {"symbol": symbol}).json()
    return Decimal(rows[0]["positionAmt"])


# ----- public endpoints --------------------------------------------------------------------------


def test_exchange_info_filters_and_rate_limits(sim: Any) -> None:
    info = httpx.get(f"{sim.aster_url}/fapi/v1/exchangeInfo").json()
    assert {r["rateLimitType"] for r in info["rateLimits"]} == {"REQUEST_WEIGHT", "ORDERS"}
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert set(filters) >= {
        "PRICE_FILTER",
        "LOT_SIZE",
        "MARKET_LOT_SIZE",
        "MIN_NOTIONAL",
        "PERCENT_PRICE",
        "MAX_NUM_ORDERS",
        "MAX_NUM_ALGO_ORDERS",
    }
    assert filters["MIN_NOTIONAL"]["notional"] == filters["MIN_NOTIONAL"]["minNotional"] == "5"
    assert Decimal(filters["LOT_SIZE"]["stepSize"]) == Decimal("0.00001")
    assert btc["baseAsset"] == "BTC" and btc["quoteAsset"] == "USDT" and btc["contractType"] == "PERPETUAL"
    pepe = next(s for s in info["symbols"] if s["symbol"] == "1000PEPEUSDT")
    assert pepe["baseAsset"] == "1000PEPE"
    # the v3 generation serves the same listing
    v3 = httpx.get(f"{sim.aster_url}/fapi/v3/exchangeInfo").json()
    assert [s["symbol"] for s in v3["symbols"]] == [s["symbol"] for s in info["symbols"]]


def test_time_ticker_premium_index(sim: Any) -> None:
    sim.admin.set_price("ETH", "3333.5", venue="aster")
    before = int(time.time() * 1000)
    server = httpx.get(f"{sim.aster_url}/fapi/v1/time").json()["serverTime"]
    assert abs(server - before) < 5000
    ticker = httpx.get(f"{sim.aster_url}/fapi/v1/ticker/price", params={"symbol": "ETHUSDT"}).json()
    assert ticker["symbol"] == "ETHUSDT" and Decimal(ticker["price"]) == Decimal("3333.5")
    premium = httpx.get(f"{sim.aster_url}/fapi/v1/premiumIndex", params={"symbol": "ETHUSDT"}).json()
    assert Decimal(premium["markPrice"]) == Decimal("3333.5")
    assert isinstance(premium["nextFundingTime"], int)
    every = httpx.get(f"{sim.aster_url}/fapi/v1/ticker/price").json()
    assert isinstance(every, list) and len(every) == 50
    bad = httpx.get(f"{sim.aster_url}/fapi/v1/ticker/price", params={"symbol": "NOPEUSDT"})
    assert _error(bad) == -1121


# ----- v3 auth -----------------------------------------------------------------------------------


def test_v3_bad_signature_is_1022(trader: V3Client) -> None:
    assert _error(trader.call("GET", "balance", tamper=True)) == -1022


def test_v3_reused_nonce_refused_and_window_expiry(trader: V3Client) -> None:
    nonce = trader.next_nonce()
    first = trader.call("GET", "balance", nonce=nonce)
    assert first.status_code == 200, first.text
    assert _error(trader.call("GET", "balance", nonce=nonce)) == -4225  # the docs' noop demo
    # after 100 newer nonces the first one has left the kept window; replaying it now is
    # refused as expired (below the window's minimum), never accepted as new
    for _ in range(100):
        assert trader.call("GET", "positionSide/dual").status_code == 200
    assert _error(trader.call("GET", "balance", nonce=nonce)) == -4225
    assert _error(trader.call("GET", "balance", nonce=nonce - 1)) == -4225


def test_v3_stale_nonce_refused(trader: V3Client) -> None:
    stale = int(time.time() * 1_000_000) - 11_000_000
    assert _error(trader.call("GET", "balance", nonce=stale)) == -1021


def test_v3_stranger_cannot_act_for_a_user(sim: Any, funded_account: Any) -> None:
    stranger = Account.create()
    impostor = V3Client(sim.aster_url, stranger, user=funded_account.address)
    assert _error(impostor.call("GET", "balance")) == -2015
    # once the user approves that key as an API wallet, the same request is served
    sim.admin.add_agent(funded_account.address, stranger.address, venue="aster")
    assert impostor.call("GET", "balance").status_code == 200


def test_v3_only_the_simulated_networks_chain_id_accepted(sim: Any, funded_account: Any) -> None:
    """The default simulator plays testnet: chain id 714 only, as the real testnet (mainnet: 1666)."""
    client = V3Client(sim.aster_url, funded_account.wallet, chain_id=TESTNET)
    assert client.call("GET", "balance").status_code == 200
    for chain_id in (MAINNET, 1):
        other = V3Client(sim.aster_url, funded_account.wallet, chain_id=chain_id)
        assert _error(other.call("GET", "balance")) == -1022


# ----- v3 trading --------------------------------------------------------------------------------


def test_market_order_ack_then_result(trader: V3Client) -> None:
    ack = trader.call(
        "POST",
        "order",
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "MARKET",
            "quantity": "0.010",
            "newClientOrderId": "a-1",
        },
    )
    assert ack.status_code == 200, ack.text
    body = ack.json()
    # ACK (default) reports the order as accepted, before any fill
    assert body["status"] == "NEW" and body["executedQty"] == "0.00000" and Decimal(body["avgPrice"]) == 0
    assert "X-MBX-USED-WEIGHT-1M" in ack.headers and "X-MBX-ORDER-COUNT-1M" in ack.headers
    queried = trader.call("GET", "order", {"symbol": "BTCUSDT", "origClientOrderId": "a-1"}).json()
    assert queried["status"] == "FILLED" and Decimal(queried["executedQty"]) == Decimal("0.01")
    assert queried["orderId"] == body["orderId"]
    result = trader.call(
        "POST",
        "order",
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "MARKET",
            "quantity": "0.005",
            "newOrderRespType": "RESULT",
        },
    ).json()
    assert result["status"] == "FILLED" and Decimal(result["avgPrice"]) > 0
    assert _position(trader) == Decimal("0.015")


def test_below_min_notional_is_4164(trader: V3Client) -> None:
    resp = trader.call(
        "POST", "order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.00001"}
    )
    assert _error(resp) == -4164
    assert _position(trader) == 0


def test_lot_size_max_qty_is_4005(trader: V3Client) -> None:
    info = trader.http.get("/fapi/v1/exchangeInfo").json()
    eth = next(s for s in info["symbols"] if s["symbol"] == "ETHUSDT")
    lot = next(f for f in eth["filters"] if f["filterType"] == "LOT_SIZE")
    too_many = str(Decimal(lot["maxQty"]) + Decimal(lot["stepSize"]))
    order = {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": too_many}
    assert _error(trader.call("POST", "order", order)) == -4005
    assert _position(trader, "ETHUSDT") == 0


def test_reduce_only_that_would_increase_is_2022(trader: V3Client) -> None:
    flat = trader.call(
        "POST",
        "order",
        {"symbol": "ETHUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.1", "reduceOnly": "true"},
    )
    assert _error(flat) == -2022
    trader.call("POST", "order", {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.1"})
    same_side = trader.call(
        "POST",
        "order",
        {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.1", "reduceOnly": "TRUE"},
    )
    assert _error(same_side) == -2022
    # ccxt-python's capitalised boolean is accepted, and an oversized reduce-only only closes
    closing = trader.call(
        "POST",
        "order",
        {
            "symbol": "ETHUSDT",
            "side": "SELL",
            "type": "MARKET",
            "quantity": "0.5",
            "reduceOnly": "True",
            "newOrderRespType": "RESULT",
        },
    )
    assert closing.status_code == 200, closing.text
    assert closing.json()["reduceOnly"] is True
    assert _position(trader, "ETHUSDT") == 0


def test_bad_boolean_and_bad_symbol_and_unknown_order(trader: V3Client) -> None:
    bad_bool = trader.call(
        "POST",
        "order",
        {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.1", "reduceOnly": "yes"},
    )
    assert _error(bad_bool) == -1130
    assert (
        _error(
            trader.call(
                "POST", "order", {"symbol": "FOOUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"}
            )
        )
        == -1121
    )
    assert _error(trader.call("GET", "order", {"symbol": "BTCUSDT", "orderId": 42})) == -2013
    assert (
        _error(trader.call("DELETE", "order", {"symbol": "BTCUSDT", "origClientOrderId": "never"})) == -2011
    )


def test_limit_order_rests_is_listed_and_cancelled(trader: V3Client) -> None:
    params = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.001",
        "price": "90000",
        "newClientOrderId": "rest-1",
    }
    placed = trader.call("POST", "order", params).json()
    assert placed["status"] == "NEW" and placed["price"] == "90000.0"
    listed = trader.call("GET", "openOrders", {"symbol": "BTCUSDT"}).json()
    assert [o["clientOrderId"] for o in listed] == ["rest-1"]
    one = trader.call("GET", "openOrder", {"symbol": "BTCUSDT", "orderId": placed["orderId"]}).json()
    assert one["orderId"] == placed["orderId"]
    canceled = trader.call("DELETE", "order", {"symbol": "BTCUSDT", "orderId": placed["orderId"]}).json()
    assert canceled["status"] == "CANCELED"
    assert trader.call("GET", "openOrders", {"symbol": "BTCUSDT"}).json() == []
    # the cancelled order stays queryable; a second cancel is refused
    assert (
        trader.call("GET", "order", {"symbol": "BTCUSDT", "orderId": placed["orderId"]}).json()["status"]
        == "CANCELED"
    )
    assert (
        _error(trader.call("DELETE", "order", {"symbol": "BTCUSDT", "orderId": placed["orderId"]})) == -2011
    )
    # bad tick, and DELETE allOpenOrders
    off_tick = trader.call("POST", "order", {**params, "price": "90000.05", "newClientOrderId": "rest-2"})
    assert _error(off_tick) == -4014
    for i in range(2):
        trader.call("POST", "order", {**params, "newClientOrderId": f"rest-{3 + i}"})
    done = trader.call("DELETE", "allOpenOrders", {"symbol": "BTCUSDT"}).json()
    assert done["code"] == "200"
    assert trader.call("GET", "openOrders", {"symbol": "BTCUSDT"}).json() == []


def test_stop_and_take_profit_close_position_fire_on_mark_moves(sim: Any, trader: V3Client) -> None:
    sim.admin.set_price("BTC", "95000", venue="aster")
    trader.call("POST", "order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.02"})
    immediate = trader.call(
        "POST",
        "order",
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "type": "STOP_MARKET",
            "stopPrice": "96000",
            "closePosition": "true",
        },
    )
    assert _error(immediate) == -2021
    sl = trader.call(
        "POST",
        "order",
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "type": "STOP_MARKET",
            "stopPrice": "90000",
            "closePosition": "true",
            "workingType": "MARK_PRICE",
            "newClientOrderId": "sl-1",
        },
    ).json()
    tp = trader.call(
        "POST",
        "order",
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "type": "TAKE_PROFIT_MARKET",
            "stopPrice": "99000",
            "closePosition": "true",
            "newClientOrderId": "tp-1",
        },
    ).json()
    assert sl["type"] == "STOP_MARKET" and sl["closePosition"] is True and sl["stopPrice"] == "90000.0"
    assert tp["type"] == "TAKE_PROFIT_MARKET"
    assert len(trader.call("GET", "openOrders", {"symbol": "BTCUSDT"}).json()) == 2
    sim.admin.set_price("BTC", "89000", venue="aster")
    assert _position(trader) == 0
    fired = trader.call("GET", "order", {"symbol": "BTCUSDT", "origClientOrderId": "sl-1"}).json()
    assert fired["status"] == "FILLED" and Decimal(fired["executedQty"]) == Decimal("0.02")
    # the take-profit lost its position and no longer rests
    assert trader.call("GET", "openOrders", {"symbol": "BTCUSDT"}).json() == []
    trades = trader.call("GET", "userTrades", {"symbol": "BTCUSDT"}).json()
    assert len(trades) == 2
    assert Decimal(trades[1]["realizedPnl"]) < 0 and Decimal(trades[1]["commission"]) < 0  # as in the docs
    assert trades[1]["orderId"] == fired["orderId"] and trades[1]["side"] == "SELL"


def test_position_risk_rows_signed_and_flat(sim: Any, trader: V3Client) -> None:
    trader.call("POST", "order", {"symbol": "SOLUSDT", "side": "SELL", "type": "MARKET", "quantity": "1.00"})
    rows = trader.call("GET", "positionRisk").json()
    assert len(rows) == 50
    by_symbol = {r["symbol"]: r for r in rows}
    sol = by_symbol["SOLUSDT"]
    assert Decimal(sol["positionAmt"]) == Decimal("-1") and Decimal(sol["notional"]) < 0
    assert Decimal(sol["entryPrice"]) > 0 and sol["positionSide"] == "BOTH" and sol["marginType"] == "cross"
    btc = by_symbol["BTCUSDT"]
    assert Decimal(btc["positionAmt"]) == 0 and btc["entryPrice"] == "0.0" and Decimal(btc["notional"]) == 0
    # a trade made by hand on the website shows up in the next read
    sim.admin.set_position("aster", trader.user, "BTC", "0.003")
    assert _position(trader) == Decimal("0.003")


def test_account_balance_leverage_margin_type(trader: V3Client) -> None:
    balance = trader.call("GET", "balance").json()
    assert balance[0]["asset"] == "USDT" and Decimal(balance[0]["balance"]) == Decimal(100_000)
    account = trader.call("GET", "accountWithJoinMargin").json()
    assert (
        Decimal(account["totalWalletBalance"]) == Decimal(100_000) and account["assets"][0]["asset"] == "USDT"
    )
    # the v3 docs list no `/fapi/v3/account`, so neither does the simulator
    assert _error(trader.call("GET", "account")) == -1000
    lev = trader.call("POST", "leverage", {"symbol": "ETHUSDT", "leverage": 7}).json()
    assert lev == {"leverage": 7, "maxNotionalValue": lev["maxNotionalValue"], "symbol": "ETHUSDT"}
    assert _error(trader.call("POST", "leverage", {"symbol": "ETHUSDT", "leverage": 500})) == -4028
    assert (
        trader.call("POST", "marginType", {"symbol": "ETHUSDT", "marginType": "ISOLATED"}).json()["code"]
        == 200
    )
    assert _error(trader.call("POST", "marginType", {"symbol": "ETHUSDT", "marginType": "ISOLATED"})) == -4046
    eth = trader.call("GET", "positionRisk", {"symbol": "ETHUSDT"}).json()[0]
    assert eth["leverage"] == "7" and eth["marginType"] == "isolated"


def test_hedge_mode_switch(trader: V3Client) -> None:
    assert trader.call("GET", "positionSide/dual").json() == {"dualSidePosition": False}
    assert _error(trader.call("POST", "positionSide/dual", {"dualSidePosition": "false"})) == -4059
    assert trader.call("POST", "positionSide/dual", {"dualSidePosition": "true"}).json()["code"] == 200
    assert trader.call("GET", "positionSide/dual").json() == {"dualSidePosition": True}
    rows = trader.call("GET", "positionRisk", {"symbol": "BTCUSDT"}).json()
    assert [r["positionSide"] for r in rows] == ["LONG", "SHORT"]
    one_way = trader.call(
        "POST", "order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}
    )
    assert _error(one_way) == -4061
    hedged = trader.call(
        "POST",
        "order",
        {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001", "positionSide": "LONG"},
    )
    assert hedged.status_code == 200, hedged.text
    assert _error(trader.call("POST", "positionSide/dual", {"dualSidePosition": "false"})) == -4068


# ----- legacy HMAC -------------------------------------------------------------------------------


@pytest.fixture
def legacy(sim: Any) -> Callable[..., HmacClient]:
    def make(secret: str = "s3cr3t-" + "ab" * 16) -> HmacClient:
        holder = Account.create()
        api_key = "key-" + holder.address[2:14]
        sim.admin.create_account(holder.address, usd=50_000, venue="aster", api_key=api_key, secret=secret)
        return HmacClient(sim.aster_url, api_key, secret)

    return make


def test_hmac_trading_round_trip(legacy: Callable[..., HmacClient]) -> None:
    client = legacy()
    placed = client.call(
        "POST",
        "/fapi/v1/order",
        {
            "symbol": "ETHUSDT",
            "side": "BUY",
            "type": "MARKET",
            "quantity": "0.050",
            "newClientOrderId": "bot:run/7.a",  # ':' and '/' are legal and arrive percent-encoded
            "newOrderRespType": "RESULT",
        },
    )
    assert placed.status_code == 200, placed.text
    assert placed.json()["clientOrderId"] == "bot:run/7.a" and placed.json()["status"] == "FILLED"
    risk = client.call("GET", "/fapi/v2/positionRisk", {"symbol": "ETHUSDT"}).json()
    assert Decimal(risk[0]["positionAmt"]) == Decimal("0.05")
    account = client.call("GET", "/fapi/v4/account").json()
    eth = next(p for p in account["positions"] if p["symbol"] == "ETHUSDT")
    assert Decimal(eth["positionAmt"]) == Decimal("0.05")
    balance = client.call("GET", "/fapi/v2/balance").json()
    assert Decimal(balance[0]["balance"]) < Decimal(50_000)  # the taker fee was paid
    got = client.call("GET", "/fapi/v1/order", {"symbol": "ETHUSDT", "origClientOrderId": "bot:run/7.a"})
    assert got.json()["orderId"] == placed.json()["orderId"]
    trades = client.call("GET", "/fapi/v1/userTrades", {"symbol": "ETHUSDT"}).json()
    assert (
        len(trades) == 1 and Decimal(trades[0]["commission"]) < 0 and trades[0]["realizedPnl"] == "0.00000000"
    )


def test_hmac_bad_signature_1022_and_stale_timestamp_1021(legacy: Callable[..., HmacClient]) -> None:
    client = legacy()
    assert _error(client.call("GET", "/fapi/v2/balance", bad_signature=True)) == -1022
    stale = int(time.time() * 1000) - 6000
    assert _error(client.call("GET", "/fapi/v2/balance", timestamp_ms=stale)) == -1021
    ahead = int(time.time() * 1000) + 5000
    assert _error(client.call("GET", "/fapi/v2/balance", timestamp_ms=ahead)) == -1021
    unknown = HmacClient(client.http.base_url.__str__(), "no-such-key", "x")
    assert _error(unknown.call("GET", "/fapi/v2/balance")) == -2015


def test_hmac_key_cannot_use_v3_paths_and_v3_signature_cannot_use_v1(
    legacy: Callable[..., HmacClient], trader: V3Client
) -> None:
    client = legacy()
    assert _error(client.call("GET", "/fapi/v3/balance")) in (-1102, -1022)
    v1 = trader.http.get(f"/fapi/v2/balance?{trader.signed({})}")
    assert _error(v1) == -2014


# ----- weights -----------------------------------------------------------------------------------


def test_weights_counted_and_429_over_the_limit(sim: Any, trader: V3Client) -> None:
    sim.admin.settings(rate_limits=True)
    try:
        first = httpx.get(f"{sim.aster_url}/fapi/v1/exchangeInfo")
        assert first.headers["X-MBX-USED-WEIGHT-1M"] == "1"
        dual = trader.call("GET", "positionSide/dual")
        assert dual.headers["X-MBX-USED-WEIGHT-1M"] == "31"  # 1 + 30
        order = trader.call(
            "POST", "order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}
        )
        assert order.headers["X-MBX-USED-WEIGHT-1M"] == "32" and order.headers["X-MBX-ORDER-COUNT-1M"] == "1"
        used = 32
        while used + 30 <= 2400:
            response = trader.call("GET", "positionSide/dual")
            # At least this call's 30: another client of the worker's simulator (same loopback IP)
            # may spend weight meanwhile, as another program on one IP would at the venue.
            now_used = int(response.headers["X-MBX-USED-WEIGHT-1M"])
            assert now_used >= used + 30, (now_used, used)
            used = now_used
        over = trader.call("GET", "positionSide/dual")
        assert over.status_code == 429 and over.json()["code"] == -1003
        assert int(over.headers["Retry-After"]) >= 1
    finally:
        sim.admin.settings(rate_limits=False)


def test_hmac_mixed_query_and_body_signs_their_concatenation(legacy: Callable[..., HmacClient]) -> None:
    client = legacy()
    query = urlencode({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET"})
    body = urlencode({"quantity": "0.001", "recvWindow": "5000", "timestamp": str(int(time.time() * 1000))})
    good = hmac.new(client.secret.encode(), (query + body).encode(), hashlib.sha256).hexdigest()
    joined = hmac.new(client.secret.encode(), (query + "&" + body).encode(), hashlib.sha256).hexdigest()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    refused = client.http.post(f"/fapi/v1/order?{query}", content=f"{body}&signature={joined}", headers=form)
    assert _error(refused) == -1022
    accepted = client.http.post(f"/fapi/v1/order?{query}", content=f"{body}&signature={good}", headers=form)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["symbol"] == "BTCUSDT" and accepted.json()["origQty"] == "0.00100"


def test_ioc_that_cannot_fill_expires(trader: V3Client) -> None:
    params = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "IOC",
        "quantity": "0.001",
        "price": "90000",
        "newClientOrderId": "ioc-1",
        "newOrderRespType": "RESULT",
    }
    response = trader.call("POST", "order", params)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "EXPIRED" and Decimal(response.json()["executedQty"]) == 0
    queried = trader.call("GET", "order", {"symbol": "BTCUSDT", "origClientOrderId": "ioc-1"}).json()
    assert queried["status"] == "EXPIRED" and queried["timeInForce"] == "IOC"
    assert _position(trader) == 0
