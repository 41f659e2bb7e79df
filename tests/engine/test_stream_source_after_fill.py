"""A streamed decision whose position changes outside the bot right after our fill.

The read after a streamed order starts once the order is answered, so a manual close or a
liquidation that lands between our fill and that read shows up as "the exchange holds something
other than the stream's position plus our fill", just like a stream that was behind. The
stream's position as of its report of our fill tells them apart: such a change stands (journaled
as `outside_change_after_fill`), a stream that was behind is still corrected with one more order
(`test_stream_source.py`). The simulator's `after_fill` arm lands the change right after our
order's fill, before its answer reaches us.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.engine.test_stream_source import POSITION_PUSH, VENUES, StreamRig, target

from newstrader.domain import OutcomeStatus, Side, Signal, VenueOutcome


@pytest.fixture
async def rig(sim: Any, tmp_path: Path) -> AsyncIterator[StreamRig]:
    r = StreamRig(sim, tmp_path)
    await r.start()
    yield r
    sim.admin.clear_faults()
    sim.admin.disarm_after_fill()
    await r.stop()


async def signal(rig: StreamRig, signal_id: str, coin: str, side: Side) -> list[VenueOutcome]:
    outcomes = await rig.executor.execute(
        Signal(id=signal_id, news_id=f"n-{signal_id}", coin=coin, side=side)
    )
    for outcome in outcomes:
        assert outcome.status is OutcomeStatus.OK, (outcome.venue, outcome.reason)
    return outcomes


async def cached(rig: StreamRig, venue: str, coin: str) -> Decimal:
    held = (await rig.journal.cached_positions(venue)).get((venue, coin))
    return held.size if held is not None else Decimal(0)


@pytest.mark.parametrize(
    ("start", "side", "change"),
    [(None, Side.LONG, "manual close"), (Side.LONG, Side.SHORT, "liquidation")],
    ids=["open-then-closed-by-hand", "flip-then-liquidated"],
)
async def test_a_change_right_after_our_fill_stands_and_is_journaled(
    rig: StreamRig, start: Side | None, side: Side, change: str
) -> None:
    if start is not None:
        await rig.signal("ETH", start)
        for venue in VENUES:
            await rig.wait_pushed(venue, "ETH", target("ETH", start))
    before = {v: target("ETH", start) if start is not None else Decimal(0) for v in VENUES}
    for venue in VENUES:
        size = None if change == "liquidation" else "0"
        rig.sim.admin.after_next_fill(venue, rig.address[venue], "ETH", size)
    outcomes = await signal(rig, f"after-fill-{change}", "ETH", side)
    fired = rig.sim.admin.disarm_after_fill()
    assert fired["unfired"] == [], fired
    assert sorted(f["venue"] for f in fired["fired"]) == sorted(VENUES), fired
    for f in fired["fired"]:
        # The change landed on our fill: the position our order made, then flat.
        assert Decimal(f["before"]) == target("ETH", side) and Decimal(f["after"]) == 0, f
        assert f["liquidation"] is (change == "liquidation")
    for outcome in outcomes:
        venue = outcome.venue
        # One order, the signal's; nothing sent against the close.
        assert len(outcome.orders) == 1, outcome.orders
        assert outcome.exchange_size_before == before[venue]
        assert outcome.exchange_size_after == 0
        assert rig.position(venue, "ETH") == 0
        assert await cached(rig, venue, "ETH") == 0  # the cache follows the exchange
        assert rig.executor.decided_from[(venue, "stream")] == (2 if start is not None else 1)
    assert await rig.events("stream_lag") == []
    changes = await rig.events("outside_change_after_fill")
    assert sorted(e["venue"] for e in changes) == sorted(VENUES)
    for e in changes:
        assert e["coin"] == "ETH"
        assert Decimal(str(e["exchange_size"])) == 0
        assert Decimal(str(e["cached_size"])) == target("ETH", side)  # the stream + our fill
        assert f"signal after-fill-{change}:" in e["detail"], e["detail"]
    # The stream caught up: the next signal is decided from it again and reaches its target.
    for venue in VENUES:
        await rig.wait_pushed(venue, "ETH", Decimal(0))
    await rig.signal("ETH", side)
    for venue in VENUES:
        assert rig.position(venue, "ETH") == target("ETH", side)
    assert await rig.events("stream_lag") == []


async def test_a_stream_behind_before_our_order_is_still_corrected_when_a_change_follows_the_fill(
    rig: StreamRig,
) -> None:
    # Both at once: an outside trade before our order whose push is late (the stream is behind),
    # and a manual trade right after our fill. The stream's position as of our fill carries the
    # first trade, so it was behind: corrected with one more order, towards the target.
    await rig.signal("SOL", Side.LONG)
    for venue in VENUES:
        await rig.wait_pushed(venue, "SOL", target("SOL", Side.LONG))
        rig.sim.admin.add_fault(venue, "ws_stall_ms", count=1, endpoint=POSITION_PUSH[venue], ms=150)
    for venue in VENUES:
        rig.outside(venue, "SOL", Decimal(3))
        rig.sim.admin.after_next_fill(venue, rig.address[venue], "SOL", Decimal(-4))
    for venue in VENUES:
        held = rig.state(venue).position("SOL")
        assert held is not None and held.size == target("SOL", Side.LONG)  # the stream is behind
    outcomes = await rig.signal("SOL", Side.SHORT)
    assert len(rig.sim.admin.disarm_after_fill()["fired"]) == len(VENUES)
    for outcome in outcomes:
        assert len(outcome.orders) == 2, outcome.orders
        assert rig.position(outcome.venue, "SOL") == target("SOL", Side.SHORT)
    lags = await rig.events("stream_lag")
    assert sorted(e["venue"] for e in lags) == sorted(VENUES)
    for e in lags:
        assert "was not the one we decided from" in e["detail"], e["detail"]
    assert await rig.events("outside_change_after_fill") == []


async def test_a_lost_fill_push_then_a_change_falls_back_to_correcting_and_says_why(
    rig: StreamRig,
) -> None:
    # Our fill's position push is lost and a manual trade lands right after the fill: the stream
    # reported our order at the old position, then showed the manual trade. It cannot tell a
    # stream that was behind from a change after our fill: as before, one more order reaches the
    # target, and the journal says it could not tell.
    await rig.signal("SOL", Side.SHORT)  # the coin's leverage set-up pushes the account too
    for venue in VENUES:
        await rig.wait_pushed(venue, "SOL", target("SOL", Side.SHORT))
    for venue in VENUES:
        rig.sim.admin.add_fault(venue, "ws_drop_message", count=1, endpoint=POSITION_PUSH[venue])
        rig.sim.admin.after_next_fill(venue, rig.address[venue], "SOL", Decimal(2))
    outcomes = await rig.signal("SOL", Side.LONG)
    assert len(rig.sim.admin.disarm_after_fill()["fired"]) == len(VENUES)
    for outcome in outcomes:
        assert len(outcome.orders) == 2, outcome.orders
        assert rig.position(outcome.venue, "SOL") == target("SOL", Side.LONG)
    lags = await rig.events("stream_lag")
    assert sorted(e["venue"] for e in lags) == sorted(VENUES)
    for e in lags:
        assert "cannot tell" in e["detail"], e["detail"]
