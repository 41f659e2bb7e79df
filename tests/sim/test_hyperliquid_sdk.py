"""The official hyperliquid-python-sdk, unmodified, against the simulator running as a real server."""

from __future__ import annotations

import time

import pytest
from eth_account import Account
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.error import ClientError
from hyperliquid.utils.signing import sign_l1_action
from hyperliquid.utils.types import Cloid


@pytest.fixture
def info(sim):
    return Info(sim.hl_url, skip_ws=True)


@pytest.fixture
def exchange(sim, funded_account):
    return Exchange(funded_account.wallet, sim.hl_url)


def _position(info, address, coin):
    for item in info.user_state(address)["assetPositions"]:
        if item["position"]["coin"] == coin:
            return item["position"]
    return None


def _statuses(reply):
    assert reply["status"] == "ok", reply
    return reply["response"]["data"]["statuses"]


def test_reads_meta_mids_and_user_state(info, funded_account):
    meta = info.meta()
    names = [u["name"] for u in meta["universe"]]
    assert names[:2] == ["BTC", "ETH"]  # asset id = index: BTC 0, ETH 1
    assert {"SOL", "HYPE", "XRP", "DOGE", "kPEPE", "SUI", "WIF"} <= set(names)
    assert len(names) >= 45
    btc = meta["universe"][0]
    assert btc["szDecimals"] == 5 and btc["maxLeverage"] == 40
    mids = info.all_mids()
    assert mids["BTC"] == "95000" and float(mids["ETH"]) > 0
    state = info.user_state(funded_account.address)
    assert state["marginSummary"]["accountValue"] == "100000"
    assert state["assetPositions"] == []
    assert info.name_to_asset("ETH") == 1
    meta_again, contexts = info.meta_and_asset_ctxs()
    assert meta_again == meta and len(contexts) == len(names)
    assert contexts[1]["markPx"] == mids["ETH"]
    assert info.spot_meta() == {"universe": [], "tokens": []}


def test_market_open_and_market_close(info, exchange, funded_account):
    addr = funded_account.address
    (status,) = _statuses(exchange.market_open("ETH", True, 0.5))
    assert status["filled"]["totalSz"] == "0.5"
    assert float(status["filled"]["avgPx"]) > 3200  # paid the ask
    position = _position(info, addr, "ETH")
    assert position["szi"] == "0.5" and position["leverage"] == {"type": "cross", "value": 20}

    (status,) = _statuses(exchange.market_close("ETH"))
    assert status["filled"]["totalSz"] == "0.5"
    assert _position(info, addr, "ETH") is None
    fills = info.user_fills(addr)
    assert [f["dir"] for f in fills] == ["Close Long", "Open Long"]  # newest first
    close = fills[0]
    assert float(close["closedPnl"]) < 0  # bought the ask, sold the bid
    assert float(close["fee"]) > 0 and close["crossed"] is True
    assert exchange.market_close("ETH") is None  # the SDK finds no position to close


def test_limit_order_cancelled_by_oid_and_by_cloid(info, exchange, funded_account):
    addr = funded_account.address
    (resting,) = _statuses(exchange.order("BTC", True, 0.01, 90000, {"limit": {"tif": "Gtc"}}))
    oid = resting["resting"]["oid"]
    cloid = Cloid.from_str("0x000000000000000000000000000000aa")
    (resting2,) = _statuses(exchange.order("BTC", True, 0.01, 91000, {"limit": {"tif": "Gtc"}}, cloid=cloid))
    assert resting2["resting"]["cloid"] == cloid.to_raw()
    assert {o["oid"] for o in info.open_orders(addr)} == {oid, resting2["resting"]["oid"]}

    assert _statuses(exchange.cancel("BTC", oid)) == ["success"]
    assert _statuses(exchange.cancel_by_cloid("BTC", cloid)) == ["success"]
    assert info.open_orders(addr) == []
    assert info.query_order_by_oid(addr, oid)["order"]["status"] == "canceled"
    by_cloid = info.query_order_by_cloid(addr, cloid)
    assert by_cloid["order"]["status"] == "canceled"
    assert by_cloid["order"]["order"]["cloid"] == cloid.to_raw()
    # Cancelling again: the venue's text for an order that is not open.
    (again,) = _statuses(exchange.cancel("BTC", oid))
    assert again["error"].startswith("Order was never placed, already canceled, or filled.")
    assert info.query_order_by_cloid(addr, Cloid.from_int(999))["status"] == "unknownOid"


def test_query_order_by_cloid_after_fill(info, exchange, funded_account):
    cloid = Cloid.from_int(42)
    (status,) = _statuses(exchange.market_open("SOL", False, 2, cloid=cloid))
    assert status["filled"]["totalSz"] == "2"
    found = info.query_order_by_cloid(funded_account.address, cloid)
    assert found["status"] == "order"
    assert found["order"]["status"] == "filled"
    assert found["order"]["order"]["side"] == "A" and found["order"]["order"]["coin"] == "SOL"


def test_tp_and_sl_triggers_fire_when_admin_moves_price(sim, info, exchange, funded_account):
    addr = funded_account.address
    _statuses(exchange.market_open("ETH", True, 1))
    tp = {"trigger": {"triggerPx": 3400, "isMarket": True, "tpsl": "tp"}}
    sl = {"trigger": {"triggerPx": 3000, "isMarket": True, "tpsl": "sl"}}
    orders = [
        {"coin": "ETH", "is_buy": False, "sz": 1, "limit_px": 3230, "order_type": tp, "reduce_only": True},
        {"coin": "ETH", "is_buy": False, "sz": 1, "limit_px": 2850, "order_type": sl, "reduce_only": True},
    ]
    tp_status, sl_status = _statuses(exchange.bulk_orders(orders, grouping="positionTpsl"))
    tp_oid, sl_oid = tp_status["resting"]["oid"], sl_status["resting"]["oid"]
    front = {o["oid"]: o for o in info.frontend_open_orders(addr)}
    assert front[tp_oid]["orderType"] == "Take Profit Market"
    assert front[tp_oid]["triggerCondition"] == "Price above 3400"
    assert front[sl_oid]["orderType"] == "Stop Market" and front[sl_oid]["isTrigger"] is True

    sim.admin.set_price("ETH", "3100")  # between the two: nothing fires
    assert _position(info, addr, "ETH")["szi"] == "1"
    sim.admin.set_price("ETH", "2990")  # stop hit
    assert _position(info, addr, "ETH") is None
    assert info.query_order_by_oid(addr, sl_oid)["order"]["status"] == "filled"
    assert info.query_order_by_oid(addr, tp_oid)["order"]["status"] == "reduceOnlyCanceled"
    close = info.user_fills(addr)[0]
    assert close["oid"] == sl_oid and close["dir"] == "Close Long"
    assert 2850 <= float(close["px"]) <= 2990


def test_take_profit_on_a_short(sim, info, exchange, funded_account):
    addr = funded_account.address
    _statuses(exchange.market_open("BTC", False, 0.01))
    tp = {"trigger": {"triggerPx": 90000, "isMarket": True, "tpsl": "tp"}}
    (status,) = _statuses(exchange.order("BTC", True, 0.01, 92000, tp, reduce_only=True))
    oid = status["resting"]["oid"]
    sim.admin.set_price("BTC", "91000")
    assert _position(info, addr, "BTC")["szi"] == "-0.01"
    sim.admin.set_price("BTC", "89900")
    assert _position(info, addr, "BTC") is None
    assert info.query_order_by_oid(addr, oid)["order"]["status"] == "filled"
    assert float(info.user_fills(addr)[0]["closedPnl"]) > 0


def test_bracket_children_wait_for_their_entry(sim, info, exchange, funded_account):
    addr = funded_account.address
    entry = {
        "coin": "ETH",
        "is_buy": True,
        "sz": 0.2,
        "limit_px": 3100,
        "order_type": {"limit": {"tif": "Gtc"}},
    }
    tp = {
        "coin": "ETH",
        "is_buy": False,
        "sz": 0.2,
        "limit_px": 3290,
        "order_type": {"trigger": {"triggerPx": 3300, "isMarket": True, "tpsl": "tp"}},
        "reduce_only": True,
    }
    entry_status, tp_status = _statuses(
        exchange.bulk_orders([{**entry, "reduce_only": False}, tp], grouping="normalTpsl")
    )
    assert "resting" in entry_status and tp_status == "waitingForFill"
    assert len(info.frontend_open_orders(addr)) == 1
    sim.admin.set_price("ETH", "3090")  # the entry's bid is now at the ask: it fills as maker
    assert _position(info, addr, "ETH")["szi"] == "0.2"
    triggers = [o for o in info.frontend_open_orders(addr) if o["isTrigger"]]
    assert len(triggers) == 1 and triggers[0]["triggerPx"] == "3300"


def test_non_reduce_only_tpsl_batch_is_refused_up_front(exchange):
    tp = {
        "coin": "ETH",
        "is_buy": False,
        "sz": 0.2,
        "limit_px": 3290,
        "order_type": {"trigger": {"triggerPx": 3300, "isMarket": True, "tpsl": "tp"}},
        "reduce_only": False,
    }
    reply = exchange.bulk_orders([tp], grouping="positionTpsl")
    assert reply["status"] == "err" and isinstance(reply["response"], str)


def test_update_leverage(info, exchange, funded_account):
    assert exchange.update_leverage(5, "ETH", is_cross=False)["status"] == "ok"
    _statuses(exchange.market_open("ETH", True, 1))
    position = _position(info, funded_account.address, "ETH")
    assert position["leverage"]["type"] == "isolated" and position["leverage"]["value"] == 5
    assert abs(float(position["marginUsed"]) - float(position["positionValue"]) / 5) < 0.01
    too_high = exchange.update_leverage(100, "ETH")
    assert too_high["status"] == "err"


def test_order_rejections_use_the_venues_texts(exchange, funded_account):
    (alo,) = _statuses(exchange.order("ETH", True, 0.1, 3300, {"limit": {"tif": "Alo"}}))
    assert alo["error"].startswith("Post only order would have immediately matched, bbo was ")
    (ioc,) = _statuses(exchange.order("ETH", True, 0.1, 3000, {"limit": {"tif": "Ioc"}}))
    assert ioc["error"].startswith("Order could not immediately match against any resting orders.")
    (small,) = _statuses(exchange.order("ETH", True, 0.001, 3300, {"limit": {"tif": "Ioc"}}))
    assert small["error"].startswith("Order must have minimum value of $10.")
    (reduce,) = _statuses(
        exchange.order("ETH", False, 0.1, 3000, {"limit": {"tif": "Ioc"}}, reduce_only=True)
    )
    assert reduce["error"].startswith("Reduce only order would increase position.")
    (tick,) = _statuses(exchange.order("ETH", True, 0.1, 3200.123, {"limit": {"tif": "Gtc"}}))
    assert tick["error"].startswith("Price must be divisible by tick size.")
    (margin,) = _statuses(exchange.order("BTC", True, 30, 99000, {"limit": {"tif": "Ioc"}}))
    assert margin["error"].startswith("Insufficient margin to place order.")


def test_reduce_only_shrinks_to_fit_and_never_flips(info, exchange, funded_account):
    _statuses(exchange.market_open("SOL", True, 3))
    (status,) = _statuses(exchange.order("SOL", False, 10, 120, {"limit": {"tif": "Ioc"}}, reduce_only=True))
    assert status["filled"]["totalSz"] == "3"
    assert _position(info, funded_account.address, "SOL") is None
    # A reduce-only close worth less than $10 is allowed.
    _statuses(exchange.market_open("DOGE", True, 100))
    (small,) = _statuses(exchange.order("DOGE", False, 10, 0.15, {"limit": {"tif": "Ioc"}}, reduce_only=True))
    assert small["filled"]["totalSz"] == "10"


def test_agent_wallet_trades_for_its_account(sim, info, exchange, funded_account):
    reply, agent_key = exchange.approve_agent("bot")
    assert reply == {"status": "ok", "response": {"type": "default"}}
    agent = Account.from_key(agent_key)
    agent_exchange = Exchange(agent, sim.hl_url, account_address=funded_account.address)
    (status,) = _statuses(agent_exchange.market_open("SOL", True, 1))
    assert status["filled"]["totalSz"] == "1"
    assert _position(info, funded_account.address, "SOL")["szi"] == "1"
    assert info.user_state(agent.address)["assetPositions"] == []  # the agent holds nothing itself
    assert info.post("/info", {"type": "userRole", "user": agent.address}) == {
        "role": "agent",
        "data": {"user": funded_account.address.lower()},
    }
    # market_close reads the account's state (account_address), then signs as the agent.
    _statuses(agent_exchange.market_close("SOL"))
    assert _position(info, funded_account.address, "SOL") is None


def test_stranger_cannot_touch_an_account(sim, info, exchange, funded_account):
    (resting,) = _statuses(exchange.order("BTC", True, 0.01, 90000, {"limit": {"tif": "Gtc"}}))
    oid = resting["resting"]["oid"]
    stranger = Account.create()
    intruder = Exchange(stranger, sim.hl_url, account_address=funded_account.address)
    for reply in (
        intruder.cancel("BTC", oid),
        intruder.market_open("ETH", True, 1),
        intruder.update_leverage(3, "ETH"),
    ):
        assert reply["status"] == "err"
        assert reply["response"] == f"L1 error: User or API Wallet {stranger.address.lower()} does not exist."
    assert [o["oid"] for o in info.open_orders(funded_account.address)] == [oid]
    assert info.user_state(funded_account.address)["assetPositions"] == []
    # A stranger cannot approve itself as an agent of someone else either: it signs for itself.
    reply, _ = intruder.approve_agent()
    assert reply["status"] == "err"


def _post_signed(sim, wallet, action, nonce, is_mainnet=False):
    signature = sign_l1_action(wallet, action, None, nonce, None, is_mainnet)
    body = {
        "action": action,
        "nonce": nonce,
        "signature": signature,
        "vaultAddress": None,
        "expiresAfter": None,
    }
    return sim.http.post(sim.hl_url + "/exchange", json=body).json()


def test_reused_and_too_low_nonces_are_rejected(sim, funded_account):
    wallet = funded_account.wallet
    nonce = int(time.time() * 1000)
    noop = {"type": "noop"}
    assert _post_signed(sim, wallet, noop, nonce)["status"] == "ok"
    again = _post_signed(sim, wallet, noop, nonce)
    assert again == {"status": "err", "response": f"Invalid nonce: duplicate nonce {nonce}"}
    for i in range(1, 101):  # fill the window of 100 kept nonces
        assert _post_signed(sim, wallet, noop, nonce + i)["status"] == "ok"
    low = _post_signed(sim, wallet, noop, nonce - 5)
    assert low["status"] == "err" and low["response"].startswith(
        f"Invalid nonce: nonce too low {nonce - 5} < "
    )
    stale = _post_signed(sim, wallet, noop, nonce - 3 * 86_400_000)
    assert stale["status"] == "err" and stale["response"].startswith("Invalid nonce")


def test_mainnet_signature_is_not_accepted_by_a_testnet_simulator(sim, funded_account):
    reply = _post_signed(
        sim, funded_account.wallet, {"type": "noop"}, int(time.time() * 1000), is_mainnet=True
    )
    assert reply["status"] == "err" and "does not exist" in reply["response"]
    assert funded_account.address.lower() not in reply["response"]


def test_non_canonical_number_signs_a_different_action(sim, funded_account):
    action = {
        "type": "order",
        "orders": [
            {"a": 1, "b": True, "p": "3300.10", "s": "0.1", "r": False, "t": {"limit": {"tif": "Ioc"}}}
        ],
        "grouping": "na",
    }
    reply = _post_signed(sim, funded_account.wallet, action, int(time.time() * 1000))
    assert reply["status"] == "err" and reply["response"].startswith("L1 error: User or API Wallet 0x")
    assert funded_account.address.lower() not in reply["response"]


def test_malformed_body_gets_422(sim):
    response = sim.http.post(
        sim.hl_url + "/exchange", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    response = sim.http.post(sim.hl_url + "/info", json={"type": "noSuchThing"})
    assert response.status_code == 422


def test_rate_limit_overspend_draws_429(sim, info):
    sim.admin.settings(rate_limits=True)
    seen = []
    for _ in range(70):  # meta weighs 20: 60 fit in 1200/min
        response = sim.http.post(sim.hl_url + "/info", json={"type": "meta"})
        seen.append(response.status_code)
        if response.status_code == 429:
            assert response.text == "null" and "retry-after" in response.headers
            break
    assert seen.count(200) == 60 and seen[-1] == 429
    with pytest.raises(ClientError) as caught:  # the SDK's own error for a 4xx
        info.all_mids()
    assert caught.value.status_code == 429


def test_a_new_unnamed_agent_replaces_the_old_one(sim, exchange, funded_account):
    _, first_key = exchange.approve_agent()
    first = Exchange(Account.from_key(first_key), sim.hl_url, account_address=funded_account.address)
    assert first.market_open("SOL", True, 1)["status"] == "ok"
    _, second_key = exchange.approve_agent()
    second = Exchange(Account.from_key(second_key), sim.hl_url, account_address=funded_account.address)
    assert second.market_open("SOL", True, 1)["status"] == "ok"
    refused = first.market_open("SOL", True, 1)
    assert refused["status"] == "err" and refused["response"].endswith("does not exist.")
    _, named_key = exchange.approve_agent("desk")  # a named agent sits beside the unnamed one
    named = Exchange(Account.from_key(named_key), sim.hl_url, account_address=funded_account.address)
    assert named.market_open("SOL", True, 1)["status"] == "ok"
    assert second.market_open("SOL", True, 1)["status"] == "ok"
    assert sim.admin.position("hyperliquid", funded_account.address, "SOL") == "4"
