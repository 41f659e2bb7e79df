"""TP/SL upkeep from the account streams: the auto trader knows its triggers from our own acks and
the pushes, and reads the venue's open orders only when the stream cannot vouch for them.

Issue 15 ("TP/SL upkeep without polling"): a Hyperliquid `frontendOpenOrders` read weighs 20 of
the 1200 a minute, and replacing triggers on every position change used to read it every time.
A real `Bot` over both simulated venues; the reads are counted at the simulator.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from newstrader.bot import Bot
from newstrader.domain import Position
from newstrader.venues.base import Streaming
from newstrader.venues.factory import build_venue

from .conftest import VENUES, Rig

# The venues' open-orders reads (any generation of the Aster API).
OPEN_ORDER_READS = {"hyperliquid": ("info:frontendOpenOrders", "info:openOrders"), "aster": ("openOrders",)}


def open_order_reads(rig: Rig) -> dict[str, int]:
    requests = rig.sim.admin.stats()["requests"]
    return {
        venue: sum(
            n
            for label, n in requests.get(venue, {}).items()
            if any(label.endswith(kind) for kind in OPEN_ORDER_READS[venue])
        )
        for venue in VENUES
    }


def streams(bot: Bot) -> dict[str, Any]:
    found = {}
    for name in VENUES:
        venue = bot.venues[name]
        assert isinstance(venue, Streaming)
        found[name] = venue.stream
    return found


async def start_current(rig: Rig) -> Bot:
    """A bot whose account streams are current (the start-up snapshot reads are behind us)."""
    bot = await rig.start_bot()
    await rig.wait_for(lambda: all(s.state.is_current() for s in streams(bot).values()), 20)
    return bot


async def settled(rig: Rig, bot: Bot) -> None:
    """Every trigger push has arrived: the state is current again (no order unreported)."""
    await rig.wait_for(lambda: all(s.state.is_current() for s in streams(bot).values()), 10)


def trigger_sides(rig: Rig, venue: str, coin: str) -> list[str]:
    return sorted(t["side"] + ":" + t["trigger"]["kind"] for t in rig.triggers(venue, coin))


async def test_triggers_placed_replaced_and_cancelled_without_open_order_reads(rig: Rig) -> None:
    bot = await start_current(rig)
    connects = {name: s.connects for name, s in streams(bot).items()}
    before = open_order_reads(rig)

    await rig.news(bot, "ETH", "long")
    for venue in VENUES:
        assert rig.position(venue, "ETH") > 0, venue
        assert trigger_sides(rig, venue, "ETH") == ["sell:sl", "sell:tp"], venue
    await settled(rig, bot)

    await rig.news(bot, "ETH", "short")  # replace: the long's triggers go, the short's come
    for venue in VENUES:
        assert rig.position(venue, "ETH") < 0, venue
        assert trigger_sides(rig, venue, "ETH") == ["buy:sl", "buy:tp"], venue
    await settled(rig, bot)

    await bot.close("ETH")  # flat: no trigger is left behind
    for venue in VENUES:
        assert rig.position(venue, "ETH") == 0, venue
        assert rig.triggers(venue, "ETH") == [], venue
    # The monitor's full turn (orphans, bare positions) reads the state as well.
    turn = await bot.autotrader.run_once(full=True)
    assert all(t["orphan_triggers_cancelled"] == [] for t in turn["venues"].values()), turn

    assert open_order_reads(rig) == before  # not one open-orders read while the streams were current
    for name, stream in streams(bot).items():
        assert stream.connects == connects[name], name  # ... and they were current throughout
        assert stream.state.triggers("ETH") == [], name


async def test_a_trigger_placed_outside_the_bot_is_found_by_one_read_and_replaced(rig: Rig) -> None:
    """Hyperliquid's orderUpdates do not say an outside order is a trigger: the upkeep reads once."""
    bot = await start_current(rig)
    await rig.news(bot, "SOL", "long")
    await settled(rig, bot)
    # Another process on the same account (its own adapter) adds a trigger this bot never sent.
    outside = build_venue(rig.settings().venues[0])
    try:
        ids = ("nt-out-tp", "nt-out-sl")
        placed = await outside.place_triggers("SOL", Decimal(1), None, Decimal(50), ids)
        assert placed and all(r.ok for r in placed), placed
    finally:
        await outside.close()
    assert len(rig.triggers("hyperliquid", "SOL")) == 3
    state = streams(bot)["hyperliquid"].state
    await rig.wait_for(lambda: len(state.open_orders) == 3, 5)  # pushed, of a kind the push does not say
    assert state.known_triggers("SOL") is None
    before = open_order_reads(rig)

    # The upkeep's replace (what a position change runs): one read finds the outside trigger too.
    size = rig.position("hyperliquid", "SOL")
    position = Position(venue="hyperliquid", coin="SOL", size=size, entry_price=Decimal(100))
    await bot.autotrader.protection.replace("hyperliquid", "SOL", position, Decimal(100), "t-replace-1")
    assert trigger_sides(rig, "hyperliquid", "SOL") == ["sell:sl", "sell:tp"]
    assert open_order_reads(rig)["hyperliquid"] == before["hyperliquid"] + 1
    await settled(rig, bot)
    assert state.known_triggers("SOL") is not None  # known again: the next replace reads nothing
    await bot.autotrader.protection.replace("hyperliquid", "SOL", position, Decimal(101), "t-replace-2")
    assert trigger_sides(rig, "hyperliquid", "SOL") == ["sell:sl", "sell:tp"]
    assert open_order_reads(rig)["hyperliquid"] == before["hyperliquid"] + 1


async def test_triggers_stay_right_through_stream_faults(rig: Rig) -> None:
    """A dropped push of our own trigger, then a dropped connection: the triggers on the exchange
    are still exactly those of the position; while the stream is not current the bot reads."""
    bot = await start_current(rig)
    s = streams(bot)
    # Every order push of both venues is lost: our triggers are known from their acks alone.
    for venue in VENUES:
        await asyncio.to_thread(rig.sim.admin.add_fault, venue, "ws_drop_message", None, 50, "ws:order")
        await asyncio.to_thread(rig.sim.admin.add_fault, venue, "ws_drop_message", None, 50, "ORDER_TRADE")
    await rig.news(bot, "BTC", "long")
    for venue in VENUES:
        assert trigger_sides(rig, venue, "BTC") == ["sell:sl", "sell:tp"], venue
        assert len(s[venue].state.triggers("BTC")) == 2, venue  # from the acks
    before = open_order_reads(rig)
    await rig.news(bot, "BTC", "short")
    for venue in VENUES:
        assert trigger_sides(rig, venue, "BTC") == ["buy:sl", "buy:tp"], venue
    assert open_order_reads(rig) == before
    await asyncio.to_thread(rig.sim.admin.clear_faults)

    # The unreported orders make the stream resync (a fresh snapshot), then it is current again.
    connects = {name: st.connects for name, st in s.items()}
    await rig.wait_for(
        lambda: all(st.connects > connects[n] and st.state.is_current() for n, st in s.items()), 30
    )

    # A dropped connection: a gap until the next snapshot; a flip meanwhile reads the venue.
    for venue in VENUES:
        await asyncio.to_thread(rig.sim.admin.add_fault, venue, "ws_disconnect", None, 1)
    await asyncio.to_thread(rig.sim.admin.set_price, "ETH", "2001")  # a push that carries the fault
    await rig.news(bot, "BTC", "long")
    for venue in VENUES:
        assert rig.position(venue, "BTC") > 0, venue
        assert trigger_sides(rig, venue, "BTC") == ["sell:sl", "sell:tp"], venue
    await settled(rig, bot)
    for venue in VENUES:
        assert sorted(o.venue_order_id for o in s[venue].state.triggers("BTC")) == sorted(
            str(t["oid"]) for t in rig.triggers(venue, "BTC")
        ), venue


FILL_READS = ("info:userFills", "info:userFillsByTime", "userTrades")


def fill_reads(rig: Rig) -> int:
    requests = rig.sim.admin.stats()["requests"]
    return sum(
        n
        for venue in VENUES
        for label, n in requests.get(venue, {}).items()
        if any(label.endswith(kind) for kind in FILL_READS)
    )


async def journaled_fills(bot: Bot) -> dict[str, int]:
    fills = await bot.journal.fills()
    return {venue: sum(1 for f in fills if f.venue == venue) for venue in VENUES}


async def test_fills_come_from_the_stream_between_rest_reads_and_a_lost_push_is_found(rig: Rig) -> None:
    bot = await start_current(rig)
    ingester = bot.autotrader.fills
    await ingester.ingest(force=True)  # the first ingest reads the venues: the base the pushes extend

    async def all_journaled() -> bool:
        await ingester.ingest(force=True)
        return await journaled_fills(bot) == {v: rig.account(v)["fills"] for v in VENUES}

    reads = fill_reads(rig)
    await rig.news(bot, "ETH", "long")
    await rig.news(bot, "ETH", "short")
    await rig.wait_for(all_journaled, 10)
    assert fill_reads(rig) == reads  # every fill from the pushes: no fills read
    assert all(n >= 2 for n in (await journaled_fills(bot)).values())

    # The fill pushes of the next trade are lost: the periodic REST read finds those fills.
    for venue in VENUES:
        await asyncio.to_thread(rig.sim.admin.add_fault, venue, "ws_drop_message", None, 20, "ws:userFills")
        await asyncio.to_thread(rig.sim.admin.add_fault, venue, "ws_drop_message", None, 20, "ORDER_TRADE")
    await rig.news(bot, "ETH", "long")
    await ingester.ingest(force=True)
    assert await journaled_fills(bot) != {v: rig.account(v)["fills"] for v in VENUES}  # not pushed
    await asyncio.to_thread(rig.sim.admin.clear_faults)
    ingester.rest_every_s = 0  # the REST read is due
    await rig.wait_for(all_journaled, 10)
    assert fill_reads(rig) > reads
