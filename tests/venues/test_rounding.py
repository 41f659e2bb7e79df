"""Rounding: every price and size we send passes the simulator's filters; reduce-only never over-closes."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newstrader.domain import Market, OrderRequest, OrderStatus, OrderType, TimeInForce
from newstrader.sim.market import MarketSpec, default_markets
from newstrader.venues.base import Rejected

from .conftest import KINDS, make_venue

HL_SPECS = default_markets("hyperliquid")
ASTER_SPECS = default_markets("aster")
PRICES = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(500_000), places=9, allow_nan=False)
SIZES = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(1_000_000), places=9, allow_nan=False)


def hl_market(spec: MarketSpec) -> Market:
    """What HyperliquidVenue.markets() builds from `meta` for this coin."""
    return Market(
        coin=spec.coin,
        symbol=spec.coin,
        size_step=Decimal(1).scaleb(-spec.sz_decimals),
        price_tick=Decimal(1).scaleb(-(6 - spec.sz_decimals)),
        min_notional=Decimal(10),
        max_price_sig_figs=5,
    )


def aster_market(spec: MarketSpec) -> Market:
    """What AsterVenue.markets() builds from PRICE_FILTER / LOT_SIZE for this coin."""
    return Market(coin=spec.coin, symbol=spec.symbol, size_step=spec.size_step, price_tick=spec.tick_size)


@settings(max_examples=300, deadline=None)
@given(coin=st.sampled_from(sorted(HL_SPECS)), price=PRICES, size=SIZES)
def test_sell_price_floor_clears_the_minimum_on_a_valid_price(
    coin: str, price: Decimal, size: Decimal
) -> None:
    """A market sell's cap raised to the minimum notional is still a valid price, never lowered."""
    spec = HL_SPECS[coin]
    market = hl_market(spec)
    sized = market.round_size(size)
    capped = market.round_price(price, up=True)
    if sized <= 0 or capped <= 0:
        return
    floor = market.sell_price_floor(sized, capped)
    assert floor >= capped and floor * sized >= market.min_notional and spec.price_ok(floor)
    if capped * sized >= market.min_notional:
        assert floor == capped


@settings(max_examples=300, deadline=None)
@given(
    coin=st.sampled_from(sorted(HL_SPECS)), price=PRICES, size=SIZES, up=st.sampled_from([None, True, False])
)
def test_rounded_values_pass_the_simulators_filters(
    coin: str, price: Decimal, size: Decimal, up: Any
) -> None:
    for spec, market in (
        (HL_SPECS[coin], hl_market(HL_SPECS[coin])),
        (ASTER_SPECS[coin], aster_market(ASTER_SPECS[coin])),
    ):
        rounded = market.round_price(price, up=up)
        if rounded > 0:
            assert spec.price_ok(rounded), (spec.coin, spec.price_rule, price, rounded)
            if up is True:
                assert rounded >= price
            if up is False:
                assert rounded <= price
        sized = market.round_size(size)
        assert sized <= size and size - sized < market.size_step
        if sized > 0:
            assert spec.size_ok(sized)


def test_round_price_examples_from_the_docs() -> None:
    eth = hl_market(HL_SPECS["ETH"])  # szDecimals 4 → 2 decimals, 5 significant figures
    assert eth.round_price(Decimal("3000.55") * Decimal("1.05"), up=False) == Decimal("3150.5")
    assert eth.round_price(Decimal("1234.56")) == Decimal("1234.6")
    assert eth.round_price(Decimal("123456.7")) == Decimal("123457")  # integers are always valid
    assert str(eth.round_price(Decimal("9.99996"), up=True)) == "10"  # never "1E+1" on the wire or in logs
    assert str(eth.round_price(Decimal("65000.4"))) == "65000"


@pytest.mark.parametrize("kind", KINDS)
def test_orders_at_random_prices_and_sizes_are_accepted(sim: Any, kind: str) -> None:
    """Resting buys at random prices and notionals on random coins: never a tick or step rejection."""
    with asyncio.Runner() as runner:
        v = make_venue(sim, kind, usd=10_000_000)
        markets = runner.run(v.venue.markets())
        marks = {
            coin: runner.run(v.venue.mark_price(coin)) for coin in ("BTC", "ETH", "SOL", "DOGE", "kBONK")
        }
        counter = iter(range(10_000))

        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            coin=st.sampled_from(sorted(marks)),
            factor=st.decimals(min_value=Decimal("0.55"), max_value=Decimal("0.97"), places=7),
            usd=st.decimals(min_value=Decimal(25), max_value=Decimal(20_000), places=5),
        )
        def check(coin: str, factor: Decimal, usd: Decimal) -> None:
            price = marks[coin] * factor
            req = OrderRequest(
                coin,
                True,
                usd / price,
                f"r-{next(counter)}",
                order_type=OrderType.LIMIT,
                limit_price=price,
                tif=TimeInForce.GTC,
            )
            result = runner.run(v.venue.place_order(req))
            assert result.status is OrderStatus.RESTING, (coin, price, result)
            assert markets[coin].round_size(req.size) <= req.size

        try:
            check()
        finally:
            runner.run(v.venue.close())


@pytest.mark.parametrize("kind", KINDS)
def test_reduce_only_close_never_exceeds_the_position(sim: Any, kind: str) -> None:
    """Close random fractions (with noise past the step) of a position: it shrinks, never flips."""
    with asyncio.Runner() as runner:
        v = make_venue(sim, kind, usd=10_000_000)
        markets = runner.run(v.venue.markets())
        counter = iter(range(10_000))

        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            coin=st.sampled_from(["BTC", "ETH", "SOL"]),
            usd=st.decimals(min_value=Decimal(60), max_value=Decimal(3000), places=3),
            fraction=st.decimals(min_value=Decimal("0.05"), max_value=Decimal(1), places=9),
            is_long=st.booleans(),
        )
        def check(coin: str, usd: Decimal, fraction: Decimal, is_long: bool) -> None:
            n = next(counter)
            mark = runner.run(v.venue.mark_price(coin))
            runner.run(v.venue.place_order(OrderRequest(coin, is_long, usd / mark, f"ro-open-{n}")))
            held = runner.run(v.venue.positions())[coin].size
            ask = abs(held) * fraction + markets[coin].size_step / 3  # noise below the step
            try:
                runner.run(
                    v.venue.place_order(
                        OrderRequest(coin, not is_long, ask, f"ro-close-{n}", reduce_only=True)
                    )
                )
            except Rejected as exc:  # a close that rounds to nothing is refused before sending
                assert "rounds to zero" in str(exc)
            after = runner.run(v.venue.positions()).get(coin)
            after_size = after.size if after else Decimal(0)
            assert after_size * held >= 0 and abs(after_size) <= abs(held)
            sent = abs(held) - abs(after_size)
            assert sent <= ask and sent == min(markets[coin].round_size(ask), abs(held))
            # flatten for the next example (reduce-only, exact size)
            if after_size:
                runner.run(
                    v.venue.place_order(
                        OrderRequest(coin, after_size < 0, abs(after_size), f"ro-flat-{n}", reduce_only=True)
                    )
                )

        try:
            check()
        finally:
            runner.run(v.venue.close())
