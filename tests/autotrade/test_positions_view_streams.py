"""The positions view (dashboard, CLI, `/api/positions`) reads the account streams, not REST.

A real `Bot` over both simulated venues: page views cost the venue nothing while the streams are
current, outside trades show within a second, and a stalled stream falls back to a REST snapshot
read at a bounded rate, which the row says.
"""

from __future__ import annotations

import asyncio
import re
import time
from decimal import Decimal
from typing import Any

from newstrader.bot import Bot

from .conftest import VENUES, Rig

REST_READS = (
    "info:clearinghouseState",
    "info:frontendOpenOrders",
    "GET /fapi/v3/positionRisk",
    "GET /fapi/v3/openOrders",
)


def _rest_reads(rig: Rig) -> int:
    requests = rig.sim.admin.stats()["requests"]
    return sum(requests.get(venue, {}).get(label, 0) for venue in VENUES for label in REST_READS)


async def _start(rig: Rig, silence_ms: float = 5000) -> Bot:
    settings = rig.settings()
    engine = settings.engine.model_copy(update={"stream_max_silence_ms": silence_ms})
    settings = settings.model_copy(update={"engine": engine})
    bot = Bot(settings, serve_web=False)
    await bot.start()
    rig.bots.append(bot)
    await rig.wait_for(
        lambda: all(v.state is not None and v.state.is_current() for v in bot.views.values()), 20
    )
    return bot


def _row(rows: list[dict[str, Any]], venue: str, coin: str) -> dict[str, Any] | None:
    return next((r for r in rows if r["venue"] == venue and r["coin"] == coin), None)


async def test_page_views_cost_no_rest_reads_and_outside_trades_show_within_a_second(rig: Rig) -> None:
    bot = await _start(rig)
    before = _rest_reads(rig)
    for _ in range(25):
        rows = await bot.positions_view()
    assert _rest_reads(rig) - before <= 2  # 25 page views; only background upkeep may read
    assert all(r["source"] == "stream" and r["stream"] == "stream current" for r in rows)

    last = max((e["id"] for e in await bot.journal.recent_events(1)), default=0)
    for venue in VENUES:
        await asyncio.to_thread(rig.sim.admin.set_position, venue, rig.address(venue), "ETH", "0.25")
    start = time.monotonic()

    async def shown() -> bool:
        rows = await bot.positions_view()
        return all(
            (row := _row(rows, v, "ETH")) is not None and row["exchange_size"] == Decimal("0.25")
            for v in VENUES
        )

    # The page shows the pushed size, and the trade is drift. The row's own `drift` flag is only
    # momentary: the push is reconciled at once, so the cache adopts the size (a journaled event).
    await rig.wait_for(shown, 5)
    await rig.wait_for(lambda: all_drift(bot, "missing_local_adopted", last), 5)
    assert time.monotonic() - start < 1.0


async def test_stalled_stream_shows_a_bounded_rest_snapshot_and_says_so(rig: Rig) -> None:
    bot = await _start(rig, silence_ms=1200)
    # Every Hyperliquid push (and pong) stalls, on every connection, until the fault is cleared.
    await asyncio.to_thread(rig.sim.admin.add_fault, "hyperliquid", "ws_stall_ms", 1.0, None, None, 15_000)
    await asyncio.to_thread(rig.sim.admin.set_price, "ETH", "2010")
    view = bot.views["hyperliquid"]
    await rig.wait_for(lambda: view.state is not None and not view.state.is_current(), 10)

    started = time.monotonic()
    for _ in range(20):  # a burst of page views: one REST snapshot serves them all
        await bot.positions_view()
    assert view.rest_reads <= 1 + (time.monotonic() - started) / view.refresh_s
    views = 0
    await asyncio.to_thread(rig.sim.admin.set_position, "hyperliquid", rig.address("hyperliquid"), "SOL", "3")

    async def shown() -> list[dict[str, Any]] | None:
        nonlocal views
        views += 1
        rows = await bot.positions_view()
        row = _row(rows, "hyperliquid", "SOL")
        return rows if row is not None and row["exchange_size"] == Decimal(3) else None

    rows = await rig.wait_for(shown, 10)  # the REST snapshot is refreshed, at most every 2 s
    periods = (time.monotonic() - started) / view.refresh_s
    assert view.rest_reads <= periods + 2  # bounded by time, not by the page views
    hl = [r for r in rows if r["venue"] == "hyperliquid"]
    assert all(r["source"] == "rest" and r["stream"].startswith("stream down (") for r in hl)
    assert "showing REST snapshot from" in hl[0]["stream"]
    aster = [r for r in await bot.positions_view() if r["venue"] == "aster"]
    assert all(r["source"] == "stream" for r in aster)  # the other venue's stream is unaffected
    await asyncio.to_thread(rig.sim.admin.clear_faults)
    await rig.wait_for(lambda: view.state is not None and view.state.is_current(), 30)  # resynced


async def test_a_page_view_never_waits_for_a_slow_rest_refresh(rig: Rig) -> None:
    """The 14 s answers of a loaded `make test`: a REST refresh the rate limiter (or the venue)
    holds back is the view's background work, never the page's: the answer shows the last
    snapshot, with its age, and comes at once."""
    bot = await _start(rig, silence_ms=1200)
    view = bot.views["hyperliquid"]
    await asyncio.to_thread(rig.sim.admin.set_position, "hyperliquid", rig.address("hyperliquid"), "SOL", "2")
    await rig.wait_for(lambda: view.state is not None and view.state.position("SOL") is not None, 5)
    await asyncio.to_thread(rig.sim.admin.add_fault, "hyperliquid", "ws_stall_ms", 1.0, None, None, 30_000)
    try:
        await rig.wait_for(lambda: view.state is not None and not view.state.is_current(), 10)

        async def snapshot_read() -> bool:  # page views start the refresh, at full speed here
            await bot.positions_view()
            return view.rest_reads >= 1

        await rig.wait_for(snapshot_read, 10)
        # Every later positions read takes 4 s at the venue (a limiter wait looks the same).
        await asyncio.to_thread(
            rig.sim.admin.add_fault, "hyperliquid", "latency_ms", 1.0, None, "info:clearinghouseState", 4000
        )
        slowest = 0.0
        notes = []
        started = time.monotonic()
        while time.monotonic() - started < 5.0:  # past refresh_s: a refresh starts and hangs
            sent = time.monotonic()
            rows = await bot.positions_view()
            slowest = max(slowest, time.monotonic() - sent)
            notes.append(next(r["stream"] for r in rows if r["venue"] == "hyperliquid"))
            await asyncio.sleep(0.2)  # the poller's pace
        assert slowest < 0.5, slowest
        assert view.rest_reads == 1  # the slow refresh was still in flight throughout
        assert all("showing REST snapshot from" in n for n in notes), notes
        age = re.search(r"from (\d+) s ago", notes[-1])
        assert age is not None and int(age.group(1)) >= 4, notes[-1]  # an aged snapshot, and it says so
    finally:
        await asyncio.to_thread(rig.sim.admin.clear_faults)


async def _drift(bot: Bot, venue: str, kind: str, after_id: int) -> bool:
    events = await bot.journal.recent_events(50)
    return any(
        e["id"] > after_id and e["venue"] == venue and e["kind"] == kind and e["detail"] == "stream"
        for e in events
    )


async def test_outside_trade_and_liquidation_are_drift_events_within_a_second(rig: Rig) -> None:
    bot = await _start(rig)
    last = max((e["id"] for e in await bot.journal.recent_events(1)), default=0)
    for venue in VENUES:
        await asyncio.to_thread(rig.sim.admin.set_position, venue, rig.address(venue), "SOL", "2")
    start = time.monotonic()
    await rig.wait_for(lambda: all_drift(bot, "missing_local_adopted", last), 5)
    assert time.monotonic() - start < 1.0

    last = max(e["id"] for e in await bot.journal.recent_events(1))
    for venue in VENUES:
        await asyncio.to_thread(rig.sim.admin.liquidate, venue, rig.address(venue), "SOL")
    start = time.monotonic()
    await rig.wait_for(lambda: all_drift(bot, "stale_local_cleared", last), 5)
    assert time.monotonic() - start < 1.0
    rows = await bot.positions_view()
    assert not [r for r in rows if r["coin"] == "SOL" and r["exchange_size"] != 0]


async def all_drift(bot: Bot, kind: str, after_id: int) -> bool:
    return all([await _drift(bot, venue, kind, after_id) for venue in VENUES])


async def test_our_own_fills_pushed_are_not_drift(rig: Rig) -> None:
    bot = await _start(rig)
    last = max((e["id"] for e in await bot.journal.recent_events(1)), default=0)
    await rig.news(bot, "ETH", "long")
    await rig.wait_for(lambda: all(size > 0 for size in rig.positions("ETH").values()), 10)
    views = bot.views.values()
    await rig.wait_for(
        lambda: all(v.state is not None and v.state.position("ETH") is not None for v in views), 5
    )
    await rig.wait_for(lambda: not [t for t in bot._tasks if t.get_name().startswith("push-reconcile")], 5)
    events = [e for e in await bot.journal.recent_events(50) if e["id"] > last]
    assert events == []
