"""What the real venues do that a lenient simulator let slide (issue 16), each against the simulator.

1. Aster market orders are IOC limits capped by `max_slippage`: no fill beyond the cap in a thin book.
2. Aster equity reads the account endpoint the v3 docs list (`accountWithJoinMargin`).
3. Hyperliquid unified / portfolio-margin accounts: equity from spot USDC plus perp unrealized PnL.
4. Aster -1002 (a revoked API wallet) is an AuthError.
5. A strict simulator: only its network's Aster chain id and Hyperliquid source are accepted.
6. Aster fees are booked as a cost whatever sign the reply carries.
7. A small opening market sell: Aster values a limit at its limit price (MIN_NOTIONAL), so a
   slippage cap below the mark must not take the order under the minimum the mark clears.
8. Hyperliquid refuses a whole TP/SL batch when one price is over 80 % from the reference.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any

import pytest
from eth_account import Account
from tests.conftest import SimServer, start_sim_server, stop_sim_server

from newstrader.domain import OrderRequest, OrderStatus
from newstrader.venues.base import AuthError, Rejected
from newstrader.venues.factory import build_venue

from .conftest import VenueUnderTest

COIN = "ETH"


async def _size(v: VenueUnderTest, usd: int) -> tuple[Decimal, Decimal]:
    mark = await v.venue.mark_price(COIN)
    return (await v.venue.markets())[COIN].round_size(Decimal(usd) / mark), mark


# ----- 1. Aster market orders are capped ---------------------------------------------------------


async def test_aster_market_order_does_not_fill_beyond_its_cap(sim: Any, venue_factory: Any) -> None:
    """A 3 % gap in the book: a 1 % cap takes nothing; Aster's own MARKET would have filled at +3 %."""
    v = venue_factory("aster-v3")
    size, mark = await _size(v, 500)
    sim.admin.settings(venue="aster", book_gap_bps=300)
    with pytest.raises(Rejected, match="expired unfilled"):
        await v.venue.place_order(OrderRequest(COIN, True, size, "cap-1", max_slippage=Decimal("0.01")))
    assert sim.admin.position("aster", v.account, COIN) == "0"
    # with room for the gap it fills, and never beyond the cap
    result = await v.venue.place_order(OrderRequest(COIN, True, size, "cap-2", max_slippage=Decimal("0.04")))
    assert result.status is OrderStatus.FILLED and result.avg_price is not None
    assert mark * Decimal("1.03") <= result.avg_price <= mark * Decimal("1.04")


async def test_aster_market_order_rest_is_a_partial_fill(sim: Any, venue_factory: Any) -> None:
    """A thin book within the cap: what could fill fills, the rest expires, the result is partial."""
    v = venue_factory("aster-v3")
    size, mark = await _size(v, 5_000)
    sim.admin.settings(venue="aster", level_notional_usd=100)  # 20 levels of $100 within reach
    result = await v.venue.place_order(
        OrderRequest(COIN, False, size, "thin-1", max_slippage=Decimal("0.01"))
    )
    assert result.status is OrderStatus.PARTIALLY_FILLED and 0 < result.filled_size < size
    assert result.avg_price is not None and result.avg_price >= mark * Decimal("0.99")
    assert Decimal(sim.admin.position("aster", v.account, COIN)) == -result.filled_size
    assert await v.venue.open_orders(COIN) == []  # the rest did not rest


async def test_aster_wide_cap_stays_inside_percent_price(sim: Any, venue_factory: Any) -> None:
    """A 30 % cap is clamped to PERCENT_PRICE (mark × 1.15) instead of being refused with -4016."""
    v = venue_factory("aster-v3")
    size, mark = await _size(v, 200)
    result = await v.venue.place_order(OrderRequest(COIN, True, size, "wide-1", max_slippage=Decimal("0.30")))
    assert result.status is OrderStatus.FILLED and result.avg_price is not None
    assert result.avg_price < mark * Decimal("1.01")


def test_sim_enforces_percent_price_and_market_take_bound(sim: Any, funded_account: Any) -> None:
    """The simulator refuses a limit outside PERCENT_PRICE and fills no MARKET order past marketTakeBound."""
    from tests.sim.test_aster_api import TESTNET, V3Client

    client = V3Client(sim.aster_url, funded_account.wallet, chain_id=TESTNET)
    info = client.http.get("/fapi/v1/exchangeInfo").json()
    eth = next(s for s in info["symbols"] if s["symbol"] == "ETHUSDT")
    band = next(f for f in eth["filters"] if f["filterType"] == "PERCENT_PRICE")
    mark = Decimal(client.http.get("/fapi/v1/premiumIndex", params={"symbol": "ETHUSDT"}).json()["markPrice"])
    too_high = (mark * Decimal(band["multiplierUp"]) * Decimal("1.01")).quantize(Decimal("0.01"))
    order = {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.1"}
    assert client.call("POST", "order", {**order, "price": str(too_high)}).json()["code"] == -4016
    gap = int(Decimal(eth["marketTakeBound"]) * 10_000) + 100  # the book starts beyond the bound
    sim.admin.settings(venue="aster", book_gap_bps=gap)
    market = {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.1"}
    reply = client.call("POST", "order", {**market, "newOrderRespType": "RESULT"}).json()
    assert reply["status"] == "EXPIRED" and Decimal(reply["executedQty"]) == 0


# ----- 2. Aster equity from the documented account endpoint --------------------------------------


async def test_aster_equity_reads_account_with_join_margin(sim: Any, venue_factory: Any) -> None:
    v = venue_factory("aster-v3", usd=12_345)
    assert await v.venue.equity() == Decimal(12_345)
    counts = sim.admin.stats()["requests"]["aster"]
    assert counts.get("GET /fapi/v3/accountWithJoinMargin") == 1
    assert "GET /fapi/v3/account" not in counts


# ----- 6. fees are a cost ------------------------------------------------------------------------


async def test_aster_fee_paid_is_a_cost(sim: Any, venue_factory: Any) -> None:
    """The simulator sends commission negative (the docs' example); the fill books it positive."""
    v = venue_factory("aster-v3")
    size, _mark = await _size(v, 1_000)
    start = datetime.now(UTC) - timedelta(seconds=5)
    result = await v.venue.place_order(OrderRequest(COIN, True, size, "fee-1"))
    (fill,) = await v.venue.fills(start)
    assert result.avg_price is not None
    expected = (fill.size * fill.price * Decimal("0.00035")).quantize(Decimal("0.00000001"))
    assert fill.fee == expected and fill.fee > 0


# ----- 7. a small market sell stays above the minimum -------------------------------------------


@pytest.mark.parametrize("kind", ["aster-v3", "hyperliquid"])
async def test_small_market_sell_keeps_its_cap_above_the_min_notional(
    sim: Any, venue_factory: Any, kind: str
) -> None:
    """Worth 2 % over the minimum at the mark, but under it at a 5 % cap: the simulator (as Aster,
    which values a limit order at its limit) refuses such an IOC, so the adapter raises the cap."""
    v = venue_factory(kind)
    market = (await v.venue.markets())[COIN]
    mark = await v.venue.mark_price(COIN)
    steps = (market.min_notional * Decimal("1.02") / mark / market.size_step).to_integral_value(ROUND_CEILING)
    size = steps * market.size_step
    assert size * mark * Decimal("0.95") < market.min_notional <= size * mark  # the case at stake
    result = await v.venue.place_order(OrderRequest(COIN, False, size, "small-sell"))
    assert result.status is OrderStatus.FILLED and result.filled_size == size
    assert Decimal(sim.admin.position(v.sim_venue, v.account, COIN)) == -size


# ----- 8. one far price refuses the whole Hyperliquid batch ---------------------------------------


async def test_hyperliquid_far_stop_refuses_the_take_profit_too(sim: Any, venue_factory: Any) -> None:
    """An order "too far from reference price" is pre-validation (docs "Error responses"): the action
    gets one error, so the take profit sent with the far stop does not rest either."""
    v = venue_factory("hyperliquid")
    size, mark = await _size(v, 1_000)
    await v.venue.place_order(OrderRequest(COIN, True, size, "far-open"))
    with pytest.raises(Rejected, match="80% away from the reference price"):
        await v.venue.place_triggers(
            COIN, size, mark * Decimal("1.2"), mark * Decimal("0.1"), ("far-tp", "far-sl"), None
        )
    assert [o for o in await v.venue.open_orders(COIN) if o.trigger_kind] == []


# ----- 3. Hyperliquid unified / portfolio-margin equity ------------------------------------------


@pytest.mark.parametrize("mode", ["unifiedAccount", "portfolioMargin"])
async def test_hyperliquid_spot_collateral_equity(sim: Any, mode: str) -> None:
    """Collateral in spot: accountValue reads ~0, equity is spot USDC + perp unrealized PnL."""
    wallet = Account.create()
    sim.admin._call(
        "POST", "/accounts", {"venue": "hyperliquid", "address": wallet.address, "usd": "20000", "mode": mode}
    )
    venue = build_venue(_cfg("hyperliquid", wallet, sim.hl_url))
    try:
        assert await venue.equity() == Decimal(20_000)
        sim.admin.set_position("hyperliquid", wallet.address, COIN, "1")
        mark = await venue.mark_price(COIN)
        sim.admin.set_price(COIN, mark + 100, venue="hyperliquid")
        (pos,) = (await venue.positions()).values()
        assert pos.unrealized_pnl is not None and pos.unrealized_pnl > 0
        raw = sim.http.post(f"{sim.hl_url}/info", json={"type": "clearinghouseState", "user": wallet.address})
        assert Decimal(raw.json()["marginSummary"]["accountValue"]) == pos.unrealized_pnl  # the silent outage
        spot = sim.http.post(
            f"{sim.hl_url}/info", json={"type": "spotClearinghouseState", "user": wallet.address}
        )
        usdc = Decimal(spot.json()["balances"][0]["total"])
        assert await venue.equity() == usdc + pos.unrealized_pnl
    finally:
        await venue.close()


async def test_hyperliquid_default_account_equity_is_the_perp_value(sim: Any) -> None:
    wallet = Account.create()
    sim.admin._call("POST", "/accounts", {"venue": "hyperliquid", "address": wallet.address, "usd": "5000"})
    venue = build_venue(_cfg("hyperliquid", wallet, sim.hl_url))
    try:
        mode = sim.http.post(f"{sim.hl_url}/info", json={"type": "userAbstraction", "user": wallet.address})
        assert mode.json() == "default"
        assert await venue.equity() == Decimal(5000)
    finally:
        await venue.close()


# ----- 4. Aster -1002 ----------------------------------------------------------------------------


async def test_aster_revoked_api_wallet_is_auth_error(sim: Any) -> None:
    """A revoked API wallet gets -1002 UNAUTHORIZED: AuthError (quarantine), not a retried refusal."""
    user, agent = Account.create(), Account.create()
    sim.admin.create_account(user.address, usd=10_000, venue="aster", signers=[agent.address])
    venue = build_venue({**_cfg("aster", agent, sim.aster_url), "account": user.address})
    try:
        assert await venue.positions() == {}
        sim.admin._call(
            "POST", "/agents/revoke", {"venue": "aster", "address": user.address, "signer": agent.address}
        )
        with pytest.raises(AuthError) as caught:
            await venue.positions()
        assert caught.value.code == -1002
    finally:
        await venue.close()


# ----- 5. a strict simulator ---------------------------------------------------------------------


def _cfg(kind: str, wallet: Any, url: str, network: str = "sim") -> dict[str, Any]:
    return {
        "name": f"{kind}-{network}",
        "kind": kind,
        "network": network,
        "url": url,
        "account": wallet.address,
        "secret": "0x" + bytes(wallet.key).hex(),
    }


@pytest.fixture(scope="module")
def mainnet_sim() -> Iterator[SimServer]:
    """A second simulator process playing mainnet (`--network mainnet`)."""
    server = start_sim_server(extra_args=("--no-rate-limits", "--network", "mainnet"))
    yield server
    stop_sim_server(server)


async def _order(venue: Any) -> Any:
    size = (await venue.markets())[COIN].round_size(Decimal(200) / await venue.mark_price(COIN))
    return await venue.place_order(OrderRequest(COIN, True, size, "net-1"))


@pytest.mark.parametrize("kind", ["hyperliquid", "aster"])
async def test_testnet_sim_refuses_a_mainnet_adapter(sim: Any, kind: str) -> None:
    wallet = Account.create()
    sim.admin.create_account(wallet.address, usd=10_000, venue=kind)
    url = sim.hl_url if kind == "hyperliquid" else sim.aster_url
    venue = build_venue(_cfg(kind, wallet, url, network="mainnet"))
    try:
        with pytest.raises(AuthError, match=r"signs for .*mainnet"):
            await _order(venue)
        assert sim.admin.position(kind, wallet.address, COIN) == "0"
    finally:
        await venue.close()


@pytest.mark.parametrize("kind", ["hyperliquid", "aster"])
async def test_mainnet_sim_trades_mainnet_signing_and_refuses_testnet(
    mainnet_sim: SimServer, kind: str
) -> None:
    """Mainnet-source signing end to end; a testnet adapter gets an AuthError naming the mismatch."""
    mainnet_sim.admin.reset()
    settings = mainnet_sim.admin.state()["settings"]
    assert (settings["network"], settings["hl_source"], settings["aster_chain_ids"]) == (
        "mainnet",
        "a",
        [1666],
    )
    url = mainnet_sim.hl_url if kind == "hyperliquid" else mainnet_sim.aster_url
    good, bad = Account.create(), Account.create()
    for wallet in (good, bad):
        mainnet_sim.admin.create_account(wallet.address, usd=10_000, venue=kind)
    mainnet = build_venue(_cfg(kind, good, url, network="mainnet"))
    testnet = build_venue(_cfg(kind, bad, url, network="testnet"))
    try:
        assert (await _order(mainnet)).status is OrderStatus.FILLED
        with pytest.raises(AuthError, match=r"signs for .*testnet"):
            await _order(testnet)
        assert mainnet_sim.admin.position(kind, bad.address, COIN) == "0"
    finally:
        await mainnet.close()
        await testnet.close()
