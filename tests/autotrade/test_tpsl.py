"""Exchange-side TP/SL against the simulator, driven through the real Bot and adapters.

Issue 8, "Must show": after a signal, TP and SL rest on each venue at the configured distances;
moving the mark past the TP closes the position on the exchange, the stats show the realized
PnL equal to the simulator's, and the other trigger is gone. After a flip, no trigger of the
old direction remains.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from newstrader.autotrade.tpsl import trigger_prices

VENUES = ("hyperliquid", "aster")
Rig = Any  # tests/autotrade/conftest.py: the `rig` fixture


async def fill_price(bot: Any, venue: str, coin: str) -> Decimal:
    """The average price of the bot's last filled order on `venue`, as the venue reported it."""
    orders = [
        o
        for o in await bot.journal.recent_orders(50)
        if o["venue"] == venue and o["coin"] == coin and o["status"] == "filled"
    ]
    return Decimal(orders[0]["avg_price"])


async def expected_triggers(bot: Any, venue: str, coin: str, size: Decimal) -> tuple[Decimal, Decimal]:
    market = (await bot.venues[venue].markets())[coin]
    prices = trigger_prices(bot.autotrader.policy, market, size, await fill_price(bot, venue, coin))
    assert prices.take_profit is not None and prices.stop_loss is not None
    return prices.take_profit, prices.stop_loss


async def test_tp_and_sl_rest_at_the_configured_distance_and_tp_closes_with_exchange_pnl(rig: Rig) -> None:
    bot = await rig.start_bot(take_profit_pct=Decimal(2), stop_loss_pct=Decimal(1))
    await rig.news(bot, "ETH", "long")
    for venue in VENUES:
        size = rig.position(venue, "ETH")
        assert size > 0, venue
        fill = await fill_price(bot, venue, "ETH")
        tp, sl = await expected_triggers(bot, venue, "ETH", size)
        # The configured distances from the actual fill, within one price tick of rounding.
        assert abs(tp - fill * Decimal("1.02")) <= Decimal("0.5") and tp >= fill * Decimal("1.02")
        assert abs(sl - fill * Decimal("0.99")) <= Decimal("0.5") and sl >= fill * Decimal("0.99")
        triggers = rig.triggers(venue, "ETH")
        by_kind = {t["trigger"]["kind"]: t for t in triggers}
        assert sorted(by_kind) == ["sl", "tp"], triggers
        assert Decimal(by_kind["tp"]["trigger"]["trigger_px"]) == tp
        assert Decimal(by_kind["sl"]["trigger"]["trigger_px"]) == sl
        for t in triggers:
            assert t["side"] == "sell" and t["reduce_only"], t

    # The mark runs past the TP on both venues: the exchange closes the positions by itself.
    rig.set_price("ETH", Decimal(2_100))
    for venue in VENUES:
        assert rig.position(venue, "ETH") == 0, venue
        assert rig.open_orders(venue, "ETH") == [], venue

    stats = await rig.stats(bot, fills=4)  # two opens, two TP closes
    for venue in VENUES:
        row = stats["by_venue"][venue]
        # Net of fees, the stats equal what the exchange booked to the account's balance.
        assert Decimal(row["net_pnl"]) == rig.balance_change(venue), (venue, row)
        assert Decimal(row["realized_pnl"]) > 0 and Decimal(row["fees"]) > 0
        assert row["trades"] == 1 and row["wins"] == 1
    assert stats["by_source"]["wire"]["trades"] == 2
    assert stats["signal_to_fill_samples"] >= 2 and stats["signal_to_fill_ms_p50"] is not None


async def test_after_a_flip_no_trigger_of_the_old_direction_remains(rig: Rig) -> None:
    bot = await rig.start_bot()
    await rig.news(bot, "BTC", "long")
    for venue in VENUES:
        assert {t["side"] for t in rig.triggers(venue, "BTC")} == {"sell"}, venue

    await rig.news(bot, "BTC", "short")
    for venue in VENUES:
        size = rig.position(venue, "BTC")
        assert size < 0, venue
        triggers = rig.triggers(venue, "BTC")
        assert len(triggers) == 2, triggers
        # Closing a short buys: every trigger left is a buy, none of the long's sells.
        assert {t["side"] for t in triggers} == {"buy"}, triggers
        tp, sl = await expected_triggers(bot, venue, "BTC", size)
        assert {t["trigger"]["kind"]: Decimal(t["trigger"]["trigger_px"]) for t in triggers} == {
            "tp": tp,
            "sl": sl,
        }
        assert tp < await fill_price(bot, venue, "BTC") < sl


async def test_orphaned_triggers_are_cancelled_by_the_monitor(rig: Rig) -> None:
    """A venue that leaves the sibling trigger behind a closed position: the monitor cancels it."""
    bot = await rig.start_bot()
    for name in VENUES:
        venue = bot.venues[name]
        # Reduce-only triggers resting on a coin the account does not hold.
        results = await venue.place_triggers(
            "SOL", Decimal(1), Decimal(120), Decimal(90), (f"nt-orph-{name[:3]}1", f"nt-orph-{name[:3]}2")
        )
        assert results and all(r.ok for r in results), results
        assert len(rig.triggers(name, "SOL")) == 2
    turn = await bot.autotrader.run_once(full=True)
    for name in VENUES:
        assert turn["venues"][name]["orphan_triggers_cancelled"] == ["SOL"], turn
        assert rig.triggers(name, "SOL") == []


async def test_a_position_left_without_triggers_is_protected_again_at_start_up(rig: Rig) -> None:
    """A crash between the fill and the TP/SL: the restarted bot finds it bare and protects it."""
    bot = await rig.start_bot()
    await rig.news(bot, "ETH", "short")
    for name in VENUES:
        assert await bot.venues[name].cancel_triggers("ETH") == 2  # as if they never went out
        assert rig.triggers(name, "ETH") == []
    await rig.stop_bot(bot)

    bot = await rig.start_bot()  # the start-up turn of the monitor finds the bare positions
    for name in VENUES:
        size = rig.position(name, "ETH")
        assert size < 0
        entry = Decimal(rig.account(name)["positions"]["ETH"]["entry_px"])
        market = (await bot.venues[name].markets())["ETH"]
        want = trigger_prices(bot.autotrader.policy, market, size, entry)
        triggers = {t["trigger"]["kind"]: t for t in rig.triggers(name, "ETH")}
        assert {k: Decimal(t["trigger"]["trigger_px"]) for k, t in triggers.items()} == {
            "tp": want.take_profit,
            "sl": want.stop_loss,
        }
        assert all(t["side"] == "buy" for t in triggers.values())
    events = [e for e in await bot.journal.recent_events(50) if e["kind"] == "protection_restored"]
    assert sorted(e["venue"] for e in events) == sorted(VENUES)


async def test_half_a_pair_or_doubled_triggers_end_as_exactly_one_pair_at_start_up(rig: Rig) -> None:
    """A crash between a venue's TP and SL requests (Aster sends them one by one) leaves half a
    pair; a trigger sent twice leaves two. "Has a trigger" is not "protected": the restarted bot
    replaces what rests with exactly one TP and one SL per held position."""
    bot = await rig.start_bot()
    await rig.news(bot, "ETH", "long")
    half, doubled = VENUES
    for name in VENUES:
        assert {t["trigger"]["kind"] for t in rig.triggers(name, "ETH")} == {"tp", "sl"}
    size = {name: rig.position(name, "ETH") for name in VENUES}
    mark = Decimal(2000)
    # Half a pair: only the TP rests.
    assert await bot.venues[half].cancel_triggers("ETH") == 2
    placed = await bot.venues[half].place_triggers(
        "ETH", size[half], mark * Decimal("1.02"), None, ("nt-half-tp", "nt-half-sl")
    )
    assert [r.ok for r in placed] == [True]
    # Doubled: a second TP beside the pair.
    placed = await bot.venues[doubled].place_triggers(
        "ETH", size[doubled], mark * Decimal("1.03"), None, ("nt-dbl-tp", "nt-dbl-sl")
    )
    assert [r.ok for r in placed] == [True]
    assert sorted(t["trigger"]["kind"] for t in rig.triggers(half, "ETH")) == ["tp"]
    assert sorted(t["trigger"]["kind"] for t in rig.triggers(doubled, "ETH")) == ["sl", "tp", "tp"]
    await rig.stop_bot(bot)

    bot = await rig.start_bot()  # the start-up turn of the monitor replaces them
    for name in VENUES:
        entry = Decimal(rig.account(name)["positions"]["ETH"]["entry_px"])
        market = (await bot.venues[name].markets())["ETH"]
        want = trigger_prices(bot.autotrader.policy, market, size[name], entry)
        triggers = rig.triggers(name, "ETH")
        assert sorted(t["trigger"]["kind"] for t in triggers) == ["sl", "tp"], (name, triggers)
        assert {t["trigger"]["kind"]: Decimal(t["trigger"]["trigger_px"]) for t in triggers} == {
            "tp": want.take_profit,
            "sl": want.stop_loss,
        }
    assert rig.positions("ETH") == size
    events = [e for e in await bot.journal.recent_events(50) if e["kind"] == "protection_restored"]
    assert sorted(e["venue"] for e in events) == sorted(VENUES)
    # Once protected exactly once, later monitor turns leave it alone.
    turn = await bot.autotrader.run_once(full=True)
    assert all(turn["venues"][n]["protection_restored"] == [] for n in VENUES), turn
