"""One contract, every venue: the same calls behave the same on Hyperliquid and Aster (both auths)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from newstrader.domain import OrderRequest, OrderStatus, OrderType, TimeInForce, TriggerKind, utcnow
from newstrader.venues.base import Expired, Rejected

from .conftest import VenueUnderTest

COIN = "ETH"


async def _size_for(v: VenueUnderTest, usd: Decimal, coin: str = COIN) -> tuple[Decimal, Decimal]:
    markets = await v.venue.markets()
    mark = await v.venue.mark_price(coin)
    return markets[coin].round_size(usd / mark), mark


def _exchange_size(sim: Any, v: VenueUnderTest, coin: str = COIN) -> Decimal:
    return Decimal(sim.admin.position(v.sim_venue, v.account, coin))


async def test_markets_have_rules(vut: VenueUnderTest) -> None:
    markets = await vut.venue.markets()
    for coin in ("BTC", "ETH", "SOL"):
        market = markets[coin]
        assert market.size_step > 0 and market.price_tick > 0 and market.min_notional > 0
    assert await vut.venue.mark_price("BTC") > 0
    assert markets["BTC"].max_leverage == 40 and markets["TAO"].max_leverage == 5  # the venue's own caps


async def test_market_open_then_reduce_only_close(vut: VenueUnderTest, sim: Any) -> None:
    venue = vut.venue
    assert await venue.positions() == {}
    size, mark = await _size_for(vut, Decimal(200))
    opened = await venue.place_order(OrderRequest(COIN, True, size, "c-open-1"))
    assert opened.status is OrderStatus.FILLED and opened.filled_size == size
    assert opened.avg_price is not None and abs(opened.avg_price - mark) / mark < Decimal("0.01")
    held = (await venue.positions())[COIN]
    assert held.size == size == _exchange_size(sim, vut) and held.entry_price > 0
    assert held.mark_price is not None and abs(held.mark_price - mark) / mark < Decimal("0.01")
    closed = await venue.place_order(OrderRequest(COIN, False, size, "c-close-1", reduce_only=True))
    assert closed.status is OrderStatus.FILLED
    assert COIN not in await venue.positions() and _exchange_size(sim, vut) == 0


async def test_short_and_flip_in_one_order(vut: VenueUnderTest, sim: Any) -> None:
    size, _ = await _size_for(vut, Decimal(100))
    await vut.venue.place_order(OrderRequest(COIN, False, size, "c-short"))
    assert (await vut.venue.positions())[COIN].size == -size
    await vut.venue.place_order(OrderRequest(COIN, True, size * 2, "c-flip"))
    assert (await vut.venue.positions())[COIN].size == size == _exchange_size(sim, vut)


async def test_reduce_only_without_position_is_rejected(vut: VenueUnderTest) -> None:
    size, _ = await _size_for(vut, Decimal(100))
    with pytest.raises(Rejected):
        await vut.venue.place_order(OrderRequest(COIN, False, size, "c-ro", reduce_only=True))
    assert await vut.venue.positions() == {}


async def test_limit_order_rests_and_is_found_by_client_id(vut: VenueUnderTest) -> None:
    size, mark = await _size_for(vut, Decimal(100))
    req = OrderRequest(
        COIN,
        True,
        size,
        "c-limit-1",
        order_type=OrderType.LIMIT,
        limit_price=mark * Decimal("0.9"),
        tif=TimeInForce.GTC,
    )
    placed = await vut.venue.place_order(req)
    assert placed.status is OrderStatus.RESTING and placed.venue_order_id
    found = await vut.venue.order_status("c-limit-1")
    assert found is not None and found.status is OrderStatus.RESTING
    assert found.venue_order_id == placed.venue_order_id and found.filled_size == 0
    resting = await vut.venue.open_orders(COIN)
    assert [o.venue_order_id for o in resting] == [placed.venue_order_id]
    assert resting[0].is_buy and resting[0].size == size and resting[0].trigger_kind is None
    assert resting[0].price <= mark * Decimal("0.9")
    assert await vut.venue.open_orders("BTC") == []


async def test_order_status_of_unknown_client_id_is_none(vut: VenueUnderTest) -> None:
    await vut.venue.markets()
    assert await vut.venue.order_status("never-sent-0001") is None


async def test_order_status_of_filled_market_order(vut: VenueUnderTest) -> None:
    size, _ = await _size_for(vut, Decimal(100))
    placed = await vut.venue.place_order(OrderRequest(COIN, True, size, "c-fill-status"))
    found = await vut.venue.order_status("c-fill-status")
    assert found is not None and found.status is OrderStatus.FILLED
    assert found.filled_size == size and found.venue_order_id == placed.venue_order_id
    assert found.avg_price is not None and found.avg_price > 0


async def test_triggers_placed_listed_and_cancelled(vut: VenueUnderTest, sim: Any) -> None:
    venue = vut.venue
    size, mark = await _size_for(vut, Decimal(200))
    await venue.place_order(OrderRequest(COIN, True, size, "c-tp-open"))
    results = await venue.place_triggers(
        COIN, size, mark * Decimal("1.2"), mark * Decimal("0.8"), ("c-tp", "c-sl")
    )
    assert [r.status for r in results] == [OrderStatus.RESTING, OrderStatus.RESTING]
    triggers = {o.trigger_kind: o for o in await venue.open_orders(COIN) if o.trigger_kind}
    assert set(triggers) == {TriggerKind.TAKE_PROFIT, TriggerKind.STOP_LOSS}
    assert all(not o.is_buy and o.reduce_only for o in triggers.values())
    tp, sl = triggers[TriggerKind.TAKE_PROFIT].trigger_price, triggers[TriggerKind.STOP_LOSS].trigger_price
    assert tp is not None and sl is not None and sl < mark < tp
    assert await venue.cancel_triggers(COIN) == 2
    assert [o for o in await venue.open_orders(COIN) if o.trigger_kind] == []
    assert await venue.cancel_triggers(COIN) == 0
    assert (await venue.positions())[COIN].size == size  # cancelling triggers never touches the position


async def test_stop_loss_fires_on_the_exchange(vut: VenueUnderTest, sim: Any) -> None:
    size, mark = await _size_for(vut, Decimal(200))
    await vut.venue.place_order(OrderRequest(COIN, True, size, "c-sl-open"))
    await vut.venue.place_triggers(COIN, size, None, mark * Decimal("0.9"), ("c-sl-tp", "c-sl-sl"))
    sim.admin.set_price(COIN, mark * Decimal("0.85"), venue=vut.sim_venue)
    assert COIN not in await vut.venue.positions()


async def test_set_leverage_applies_to_new_positions(vut: VenueUnderTest) -> None:
    await vut.venue.set_leverage(COIN, 3)
    size, _ = await _size_for(vut, Decimal(100))
    await vut.venue.place_order(OrderRequest(COIN, True, size, "c-lev"))
    assert (await vut.venue.positions())[COIN].leverage == 3


async def test_fills_have_fee_and_realized_pnl(vut: VenueUnderTest, sim: Any) -> None:
    since = utcnow() - timedelta(seconds=5)
    size, mark = await _size_for(vut, Decimal(300))
    await vut.venue.place_order(OrderRequest(COIN, True, size, "c-pnl-open"))
    sim.admin.set_price(COIN, mark * Decimal("1.05"), venue=vut.sim_venue)
    await vut.venue.place_order(OrderRequest(COIN, False, size, "c-pnl-close", reduce_only=True))
    fills = await vut.venue.fills(since)
    assert [f.is_buy for f in fills] == [True, False]
    assert all(f.coin == COIN and f.size == size and f.fee > 0 and f.fill_id for f in fills)
    assert fills[0].realized_pnl == 0 and fills[1].realized_pnl > 0
    assert len({f.fill_id for f in fills}) == 2
    assert await vut.venue.fills(utcnow() + timedelta(seconds=60)) == []


async def test_partial_fill_reports_what_filled(vut: VenueUnderTest, sim: Any) -> None:
    sim.admin.settings(venue=vut.sim_venue, partial_fill_probability=1.0)
    size, _ = await _size_for(vut, Decimal(500))
    result = await vut.venue.place_order(OrderRequest(COIN, True, size, "c-partial"))
    assert result.status is OrderStatus.PARTIALLY_FILLED and 0 < result.filled_size < size
    assert (await vut.venue.positions())[COIN].size == result.filled_size == _exchange_size(sim, vut)
    found = await vut.venue.order_status("c-partial")
    assert found is not None and found.filled_size == result.filled_size
    assert found.status in (OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED)


async def test_order_status_after_a_restart(vut: VenueUnderTest, sim: Any) -> None:
    """A new adapter (no memory of the send) still finds the order by client id, as after a crash."""
    size, _ = await _size_for(vut, Decimal(100), coin="SOL")
    await vut.venue.place_order(OrderRequest("SOL", False, size, "c-restart"))
    fresh = type(vut.venue)(vut.venue.config)
    try:
        found = await fresh.order_status("c-restart")
        assert found is not None and found.status is OrderStatus.FILLED and found.filled_size == size
        assert await fresh.order_status("c-never") is None
    finally:
        await fresh.close()


async def test_an_order_past_its_intents_window_is_refused_by_the_venue(
    vut: VenueUnderTest, sim: Any
) -> None:
    """`not_after` (intent time + validity) is what the venue enforces, not the send time: an order
    whose send was held up past it is refused unexecuted (`Expired`), on every venue and auth."""
    venue = vut.venue
    size, _ = await _size_for(vut, Decimal(100))
    held_up = utcnow() - timedelta(seconds=venue.order_validity_s + 1)  # its intent time
    late = OrderRequest(
        COIN, True, size, "c-held-up", not_after=held_up + timedelta(seconds=venue.order_validity_s)
    )
    with pytest.raises(Expired):
        await venue.place_order(late)
    assert await venue.order_status("c-held-up") is None and _exchange_size(sim, vut) == 0
    # A request within its window goes through (the adapter's clock is in step with the venue's).
    fresh = OrderRequest(
        COIN, True, size, "c-in-time", not_after=utcnow() + timedelta(seconds=venue.order_validity_s)
    )
    assert (await venue.place_order(fresh)).filled_size == size == _exchange_size(sim, vut)


async def test_triggers_past_their_intents_window_are_refused_by_the_venue(vut: VenueUnderTest) -> None:
    venue = vut.venue
    size, mark = await _size_for(vut, Decimal(200))
    await venue.place_order(OrderRequest(COIN, True, size, "c-late-tp-open"))
    ended = utcnow() - timedelta(seconds=1)  # intent time + validity, a second ago
    with pytest.raises(Expired):
        await venue.place_triggers(
            COIN, size, mark * Decimal("1.2"), mark * Decimal("0.8"), ("c-late-tp", "c-late-sl"), ended
        )
    assert [o for o in await venue.open_orders(COIN) if o.trigger_kind] == []
