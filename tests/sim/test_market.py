"""The matching engine under both venues, driven directly: rules, money arithmetic, triggers, liquidation."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

import pytest

from newstrader.sim.market import (
    Exchange,
    ExchangeConfig,
    TriggerSpec,
    UnknownAccount,
    UnknownMarket,
    aster_symbol,
)

ADDR = "0x" + "a1" * 20


@pytest.fixture
def ex():
    exchange = Exchange("hyperliquid", seed=5)
    exchange.create_account(ADDR, D(10_000))
    return exchange


def test_default_markets_are_the_big_perps_with_real_decimals():
    ex = Exchange("hyperliquid")
    assert len(ex.markets) >= 45
    assert (
        ex.markets["BTC"].sz_decimals,
        ex.markets["ETH"].sz_decimals,
        ex.markets["kPEPE"].sz_decimals,
    ) == (5, 4, 0)
    assert ex.markets["BTC"].asset_id == 0 and ex.markets["ETH"].asset_id == 1
    assert ex.coin_for_asset(1) == "ETH"


def test_aster_uses_usdt_symbols_and_thousand_prefix():
    ex = Exchange("aster")
    assert ex.markets["BTC"].symbol == "BTCUSDT"
    assert aster_symbol("kPEPE") == ("1000PEPEUSDT", "1000PEPE")
    assert ex.coin_for_symbol("1000PEPEUSDT") == "kPEPE"
    assert ex.markets["kPEPE"].initial_price == Exchange("hyperliquid").markets["kPEPE"].initial_price
    with pytest.raises(UnknownMarket):
        ex.coin_for_symbol("PEPEUSDT")


def test_price_rules_per_venue():
    hl = Exchange("hyperliquid").markets
    assert hl["ETH"].price_ok(D("1234.5")) and not hl["ETH"].price_ok(D("1234.56"))
    assert hl["BTC"].price_ok(D("123456"))  # integers are always valid
    assert hl["kPEPE"].price_ok(D("0.001234")) and not hl["kPEPE"].price_ok(D("0.0012345"))
    aster = Exchange("aster").markets
    tick = aster["ETH"].tick_size
    assert aster["ETH"].price_ok(D("3200") + tick) and not aster["ETH"].price_ok(D("3200") + tick / 2)


def test_fees_and_realized_pnl_add_up_to_the_balance(ex):
    start = ex.account(ADDR).balance
    buy = ex.place_order(ADDR, "ETH", True, D("2"), None, "ioc")
    ex.set_mark("ETH", D("3300"))
    sell = ex.place_order(ADDR, "ETH", False, D("2"), None, "ioc")
    assert buy.status == sell.status == "filled"
    open_fill, close_fill = ex.fills(ADDR)
    assert open_fill.direction == "Open Long" and close_fill.direction == "Close Long"
    assert close_fill.closed_pnl == (close_fill.px - open_fill.px) * 2
    assert open_fill.fee == (open_fill.px * 2 * D("0.00045")).quantize(D("0.000001"))
    assert ex.account(ADDR).balance == start + close_fill.closed_pnl - open_fill.fee - close_fill.fee
    assert ex.position(ADDR, "ETH").size == 0


def test_flip_in_one_order_sets_the_new_entry(ex):
    ex.place_order(ADDR, "SOL", True, D("1"), None, "ioc")
    flip = ex.place_order(ADDR, "SOL", False, D("3"), None, "ioc")
    pos = ex.position(ADDR, "SOL")
    assert pos.size == D("-2") and pos.entry_px == flip.avg_px
    assert ex.fills(ADDR)[-1].direction == "Long > Short"


def test_reduce_only_rejects_when_flat_and_shrinks_to_fit(ex):
    flat = ex.place_order(ADDR, "ETH", False, D("1"), None, "ioc", reduce_only=True)
    assert flat.status == "rejected" and flat.reject_reason == "reduceOnlyRejected"
    ex.place_order(ADDR, "ETH", True, D("0.5"), None, "ioc")
    same_side = ex.place_order(ADDR, "ETH", True, D("0.1"), None, "ioc", reduce_only=True)
    assert same_side.reject_reason == "reduceOnlyRejected"
    shrink = ex.place_order(ADDR, "ETH", False, D("5"), None, "ioc", reduce_only=True)
    assert shrink.filled_size == D("0.5") and ex.position(ADDR, "ETH").size == 0


def test_resting_reduce_only_shrinks_then_cancels_with_the_position(ex):
    ex.place_order(ADDR, "ETH", True, D("1"), None, "ioc")
    resting = ex.place_order(ADDR, "ETH", False, D("1"), D("3500"), "gtc", reduce_only=True)
    assert resting.is_open and resting.remaining == D("1")
    ex.set_position(ADDR, "ETH", D("0.4"))
    assert resting.remaining == D("0.4")
    ex.set_position(ADDR, "ETH", D("0"))
    assert resting.status == "reduceOnlyCanceled"


def test_min_notional_applies_to_opening_orders_only(ex):
    small = ex.place_order(ADDR, "ETH", True, D("0.001"), None, "ioc")
    assert small.reject_reason == "minTradeNtlRejected"
    ex.place_order(ADDR, "ETH", True, D("0.01"), None, "ioc")
    close_small = ex.place_order(ADDR, "ETH", False, D("0.001"), None, "ioc", reduce_only=True)
    assert close_small.status == "filled"


def test_aster_values_a_limit_order_at_its_limit_price():
    """Aster MIN_NOTIONAL is price × quantity (the mark only for MARKET): an aggressive IOC sell
    worth $5.12 at the mark but $4.86 at its limit is refused; the same as a MARKET order is not."""
    ex = Exchange("aster", config=ExchangeConfig(notional_price="limit"))
    ex.create_account(ADDR, D(10_000))
    ex.set_mark("ETH", D(3200))
    size, limit = D("0.0016"), D(3040)  # 0.0016 × 3200 = 5.12; × 3040 = 4.864
    assert ex.place_order(ADDR, "ETH", False, size, limit, "ioc").reject_reason == "minTradeNtlRejected"
    assert ex.place_order(ADDR, "ETH", False, size, limit, "ioc", market_order=True).status == "filled"
    # a buy's limit is above the mark: valued at the limit, it passes
    assert ex.place_order(ADDR, "ETH", True, D("0.0016"), D(3360), "ioc").status == "filled"


def test_hyperliquid_values_a_marketable_order_at_the_lower_of_limit_and_mark(ex):
    """The venue documents no basis for its $10 minimum: the simulator takes the stricter one."""
    ex.set_mark("ETH", D(3200))
    size = D("0.0032")  # $10.24 at the mark, $9.73 at a 5 % slippage limit
    assert ex.place_order(ADDR, "ETH", True, size, D(3360), "ioc").status == "filled"
    assert ex.place_order(ADDR, "ETH", False, size, D(3040), "ioc").reject_reason == "minTradeNtlRejected"
    # a resting order is valued at its own price
    assert ex.place_order(ADDR, "ETH", False, size, D(3300), "gtc").is_open


def test_margin_check_uses_leverage(ex):
    ex.create_account("0x" + "b2" * 20, D(100))
    poor = "0x" + "b2" * 20
    assert ex.place_order(poor, "ETH", True, D("1"), None, "ioc").reject_reason == "perpMarginRejected"
    ex.set_leverage(poor, "ETH", 25)
    # $3200 at 25x needs $128 > $100; 0.7 ETH needs ~$90
    assert ex.place_order(poor, "ETH", True, D("0.7"), None, "ioc").status == "filled"
    with pytest.raises(Exception, match="leverage"):
        ex.set_leverage(poor, "ETH", 26)


def test_ioc_partial_fill_by_probability():
    ex = Exchange("hyperliquid", seed=3, config=ExchangeConfig(partial_fill_probability=1.0))
    ex.create_account(ADDR, D(100_000))
    order = ex.place_order(ADDR, "SOL", True, D("10"), None, "ioc")
    assert order.status == "filled" and D(0) < order.filled_size < D("10")
    assert order.remaining == 0 and order.filled_size == order.filled_size.quantize(D("0.01"))
    gtc = ex.place_order(ADDR, "SOL", True, D("10"), D("150"), "gtc")
    assert gtc.filled_size == D("10")  # only IOCs are cut short
    held = ex.position(ADDR, "SOL").size
    stop = ex.place_order(ADDR, "SOL", False, held, None, "ioc", True, None, TriggerSpec("sl", D("130")))
    ex.set_mark("SOL", D("129"))
    assert stop.filled_size == held and ex.position(ADDR, "SOL").size == 0  # a fired stop closes it all


def test_depth_walks_levels_and_limit_stops_the_walk():
    ex = Exchange("hyperliquid", seed=1, config=ExchangeConfig(level_notional_usd=D(3200)))
    ex.create_account(ADDR, D(1_000_000))
    _, ask = ex.best_bid_ask("ETH")
    order = ex.place_order(ADDR, "ETH", True, D("3"), None, "ioc")
    assert order.filled_size == D("3") and order.avg_px > ask
    capped = ex.place_order(ADDR, "ETH", True, D("3"), ask, "ioc")
    assert D(0) < capped.filled_size < D("3")  # one level's worth, the rest cancelled


def test_gtc_rests_then_fills_as_maker_when_the_mark_crosses(ex):
    order = ex.place_order(ADDR, "BTC", True, D("0.01"), D("94000"), "gtc")
    assert order.is_open and not ex.fills(ADDR)
    ex.set_mark("BTC", D("93990"))
    assert order.status == "filled" and order.avg_px == D("94000")
    (fill,) = ex.fills(ADDR)
    assert fill.crossed is False and fill.fee == (D("940") * D("0.00015")).quantize(D("0.000001"))


def test_alo_that_would_cross_is_rejected(ex):
    _, ask = ex.best_bid_ask("ETH")
    assert ex.place_order(ADDR, "ETH", True, D("0.1"), ask, "alo").reject_reason == "badAloPxRejected"
    assert ex.place_order(ADDR, "ETH", True, D("0.1"), D("3100"), "alo").is_open


def test_stop_loss_trigger_fires_and_sibling_is_cancelled(ex):
    ex.place_order(ADDR, "ETH", True, D("1"), None, "ioc")
    tp = ex.place_order(
        ADDR, "ETH", False, D("1"), D("3380"), "gtc", True, None, TriggerSpec("tp", D("3400"))
    )
    sl = ex.place_order(
        ADDR, "ETH", False, D("1"), D("2900"), "gtc", True, None, TriggerSpec("sl", D("3000"))
    )
    ex.set_mark("ETH", D("3001"))
    assert tp.is_open and sl.is_open
    ex.set_mark("ETH", D("2999"))
    assert sl.status == "filled" and sl.triggered and tp.status == "reduceOnlyCanceled"
    assert ex.position(ADDR, "ETH").size == 0


def test_close_position_trigger_closes_whatever_is_held(ex):
    ex.place_order(ADDR, "SOL", False, D("4"), None, "ioc")
    sl = ex.place_order(
        ADDR, "SOL", True, D("0"), None, "gtc", False, None, TriggerSpec("sl", D("150")), True
    )
    ex.set_position(ADDR, "SOL", D("-7"))
    ex.set_mark("SOL", D("151"))
    assert sl.status == "filled" and sl.filled_size == D("7")
    assert ex.position(ADDR, "SOL").size == 0


def test_aster_rejects_a_trigger_that_would_fire_at_once():
    ex = Exchange("aster", config=ExchangeConfig(immediate_trigger="reject"))
    ex.create_account(ADDR, D(10_000))
    ex.place_order(ADDR, "ETH", True, D("1"), None, "ioc")
    order = ex.place_order(ADDR, "ETH", False, D("1"), None, "gtc", True, None, TriggerSpec("sl", D("3300")))
    assert order.reject_reason == "wouldImmediatelyTrigger"


def test_liquidation_by_mark_cancels_reduce_only_orders(ex):
    ex.set_leverage(ADDR, "BTC", 40)
    ex.place_order(ADDR, "BTC", True, D("3"), None, "ioc")  # $285k on $10k
    stop = ex.place_order(ADDR, "BTC", False, D("3"), None, "gtc", True, None, TriggerSpec("sl", D("80000")))
    liq_px = ex.liquidation_price(ex.account(ADDR), "BTC")
    assert liq_px is not None and D("80000") < liq_px < D("95000")
    ex.set_mark("BTC", liq_px - 50)
    assert ex.position(ADDR, "BTC").size == 0
    assert stop.status == "liquidatedCanceled"
    last = ex.fills(ADDR)[-1]
    assert last.liquidation and last.size == D("3") and not last.is_buy


def test_admin_style_outside_trade_and_liquidate(ex):
    fill = ex.set_position(ADDR, "DOGE", D("-500"))
    assert fill is not None and fill.outside and fill.px == ex.mark("DOGE")
    assert ex.set_position(ADDR, "DOGE", D("-500")) is None  # already there: no trade
    liq = ex.liquidate(ADDR, "DOGE")
    assert liq is not None and liq.is_buy and liq.liquidation
    assert ex.liquidate(ADDR, "DOGE") is None
    with pytest.raises(UnknownAccount):
        ex.liquidate("0x" + "00" * 20, "DOGE")


def test_duplicate_client_id_is_refused_while_known(ex):
    first = ex.place_order(ADDR, "BTC", True, D("0.01"), D("90000"), "gtc", client_id="0xabc")
    again = ex.place_order(ADDR, "BTC", True, D("0.01"), D("90000"), "gtc", client_id="0xabc")
    assert first.is_open and again.reject_reason == "duplicateClientId"
    assert ex.order_by_client_id(ADDR, "0xabc") is first


def test_same_seed_same_ids_and_walk():
    def run(seed):
        ex = Exchange("hyperliquid", seed=seed, clock=lambda: 0)
        ex.create_account(ADDR, D(100_000))
        ex.tick(10)
        order = ex.place_order(ADDR, "BTC", True, D("0.1"), None, "ioc")
        return order.oid, order.avg_px, dict(ex.marks), ex.fills(ADDR)[0].hash

    assert run(11) == run(11)
    assert run(11)[2] != run(12)[2]


# ----- invariants under random operation sequences ---------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("ioc"), st.booleans(), st.integers(1, 400), st.booleans()),
        st.tuples(st.just("gtc"), st.booleans(), st.integers(1, 400), st.integers(-300, 300)),
        st.tuples(st.just("mark"), st.integers(-400, 400)),
        st.tuples(st.just("outside"), st.integers(-500, 500)),
        st.tuples(st.just("trigger"), st.booleans(), st.sampled_from(["tp", "sl"]), st.integers(-300, 300)),
        st.tuples(st.just("cancel_all")),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(OPERATIONS, st.floats(0, 1))
def test_ledger_invariants_hold_for_any_sequence(operations, partial):
    ex = Exchange("hyperliquid", seed=9, config=ExchangeConfig(partial_fill_probability=partial))
    start = D(50_000)
    ex.create_account(ADDR, start)
    for op in operations:
        mark = ex.mark("ETH")
        before = ex.position(ADDR, "ETH").size
        if op[0] == "ioc":
            _, is_buy, centi, reduce_only = op
            order = ex.place_order(ADDR, "ETH", is_buy, D(centi) / 100, None, "ioc", reduce_only)
            after = ex.position(ADDR, "ETH").size
            if reduce_only:  # never grows, never flips
                assert abs(after) <= abs(before) and (after == 0 or (after > 0) == (before > 0))
            assert order.filled_size <= order.requested_size and order.remaining == 0
        elif op[0] == "gtc":
            _, is_buy, centi, offset = op
            ex.place_order(
                ADDR, "ETH", is_buy, D(centi) / 100, ex.markets["ETH"].round_price(mark + offset), "gtc"
            )
        elif op[0] == "mark":
            ex.set_mark("ETH", max(D(100), mark + op[1]))
        elif op[0] == "outside":
            ex.set_position(ADDR, "ETH", D(op[1]) / 100)
        elif op[0] == "trigger":
            _, is_buy, kind, offset = op
            px = ex.markets["ETH"].round_price(mark + offset)
            ex.place_order(ADDR, "ETH", is_buy, D("0.5"), None, "ioc", True, None, TriggerSpec(kind, px))
        else:
            ex.cancel_all(ADDR)
        fills = ex.fills(ADDR)
        position = ex.position(ADDR, "ETH")
        # The position is exactly the sum of signed fills; the balance is exactly PnL minus fees.
        assert position.size == sum((f.size if f.is_buy else -f.size for f in fills), D(0))
        assert ex.account(ADDR).balance == start + sum((f.closed_pnl - f.fee for f in fills), D(0))
        assert (position.size == 0) == (position.entry_px == 0)
        for order in ex.open_orders(ADDR):
            assert order.remaining > 0
            if order.reduce_only and order.trigger is None:
                assert position.size != 0 and (position.size > 0) != order.is_buy
                assert order.remaining <= abs(position.size)


async def _after_scheduled() -> None:
    """Until what was scheduled with call_soon so far has run (they run in order)."""
    done = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(done.set_result, None)
    await done


async def test_an_armed_change_lands_after_the_next_api_fill_as_its_own_change(ex):
    # `after_next_fill`: one shot, after the order's own changes (pushed first), only on a fill.
    changes: list[tuple[str, object]] = []
    ex.on_change = lambda kind, item: changes.append((kind, item))
    ex.set_mark("ETH", D(2000))
    ex.after_next_fill(ADDR, "ETH", D(0))
    ex.after_next_fill(ADDR, "BTC", None)
    order = ex.place_order(ADDR, "ETH", True, D("0.5"), None, tif="ioc", client_id="ours")
    assert order.filled_size == D("0.5")
    assert ex.position(ADDR, "ETH").size == D("0.5")  # not yet: right after the order's call
    seen = len(changes)
    await _after_scheduled()
    assert ex.position(ADDR, "ETH").size == 0
    assert [kind for kind, _ in changes[seen:]] == ["fill"]  # the manual close, after the order's
    assert ex.fired == [
        {"account": ADDR, "coin": "ETH", "liquidation": False, "before": "0.5", "after": "0", "changed": True}
    ]
    assert list(ex.armed) == [(ADDR, "BTC")]  # armed on another coin: still waiting
    ex.place_order(ADDR, "ETH", True, D("0.5"), None, tif="ioc")
    await _after_scheduled()
    assert ex.position(ADDR, "ETH").size == D("0.5")  # one shot


def test_arming_needs_a_known_account_and_market(ex):
    with pytest.raises(UnknownAccount):
        ex.after_next_fill("0x" + "b2" * 20, "ETH", D(0))
    with pytest.raises(UnknownMarket):
        ex.after_next_fill(ADDR, "NOPE", None)
