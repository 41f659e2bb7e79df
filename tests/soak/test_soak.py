"""The short chaos soak inside `make test`: `bench/soak.py` with 100 signals and 4 SIGKILL restarts.

`make soak` runs the long version (1000 signals, 10 restarts); this one keeps every kind of
chaos but fewer of each, so it fits the suite's time budget.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.engine.sim_accounts import funded_venues
from tests.harness.bots import MARKS

from newstrader.domain import NewsItem, OrderRequest, OutcomeStatus, Side, Signal, VenueOutcome
from newstrader.engine.executor import Executor
from newstrader.engine.risk import Sizer
from newstrader.engine.settings import EngineSettings
from newstrader.journal import Journal
from newstrader.sim.faults import FAULT_KINDS as SIM_FAULT_KINDS

VENUES = {"hyperliquid", "aster"}
FAULT_KINDS = set(SIM_FAULT_KINDS)  # the plan covers every kind the simulator has


def test_the_plan_is_fixed_by_the_seed_and_covers_every_kind_of_chaos(soak: Any) -> None:
    cfg = soak.SoakConfig(signals=1000, restarts=10, coins=11, seed=1)
    plan = soak.make_plan(cfg)
    assert plan == soak.make_plan(cfg)  # deterministic given --seed
    assert plan != soak.make_plan(soak.SoakConfig(signals=1000, restarts=10, coins=11, seed=2))

    kinds = Counter(step.kind for step in plan)
    assert kinds["signal"] == 1000 and kinds["restart"] == 10
    assert kinds["outside"] > 20 and kinds["liquidate"] > 10 and kinds["fault"] > 200
    signals = [s for s in plan if s.kind == "signal"]
    assert len({s.coin for s in signals}) == 11 and {s.side for s in signals} == {"long", "short"}
    assert len({s.news_id for s in signals}) == 1000
    faults = [s.fault for s in plan if s.kind == "fault"]
    assert {f["kind"] for f in faults} == FAULT_KINDS and {f["venue"] for f in faults} == VENUES
    restarts = [s for s in plan if s.kind == "restart"]
    # Half keep the journal, half start empty, plus the in-flight, TP/SL and after-ack kills
    # (which keep it).
    assert sum(s.keep_journal for s in restarts) == 8
    assert {s.mid_signal for s in restarts} == {True, False}
    # Every fourth: killed while the next signal's orders are held inside the venues.
    assert [k for k, s in enumerate(restarts) if s.in_flight] == [3, 7]
    # One in eight: the bot kills itself right after the next signal's TP/SL send (journal kept).
    assert [k for k, s in enumerate(restarts) if s.tpsl] == [2]
    assert all(s.keep_journal and s.mid_signal for s in restarts if s.tpsl)
    # The other mid-signal kills walk the news→order path (issue 18): after the webhook's 202,
    # between the item's rows being queued and their commit, between the order intent's commit
    # and the send, after the order's answer before its outcome is journaled, and at random.
    points = [s.point for s in restarts]
    assert points == [
        "after-ack",
        "queued",
        None,
        None,
        "before-send",
        "after-send",
        None,
        None,
        "random",
        "after-ack",
    ]
    assert set(points) - {None} == set(soak.KILL_POINTS)
    # An acknowledged item is never delivered again: only a kept journal can finish it. The
    # hooked kills fall on both kinds of turn (on an empty one the armed bot starts empty).
    assert all(s.keep_journal and s.mid_signal for s in restarts if s.point == "after-ack")
    assert {s.keep_journal for s in restarts if s.point in soak.CRASH_HOOKS} == {True, False}
    assert set(soak.CRASH_HOOKS) == {"queued", "before-send", "after-send"}
    # Outside trades stay within the target, so a larger position can only be the bot's doing.
    harness = soak.engine_harness()
    for step in plan:
        if step.kind in ("outside", "stream_lag"):
            assert abs(Decimal(step.size)) <= harness.target_size(step.coin, "long")
    # Stream lag (issue 15): an outside trade whose push is held back, right before a signal on
    # that coin, so the signal arrives while the venue's stream still shows the old position.
    lags = [(k, s) for k, s in enumerate(plan) if s.kind == "stream_lag"]
    assert len(lags) > 20 and {s.venue for _, s in lags} == VENUES
    for k, step in lags:
        assert step.fault is not None and step.fault["kind"] == "ws_stall_ms"
        assert step.fault["endpoint"] == soak.POSITION_PUSH[step.venue]
        assert plan[k + 1].kind == "signal" and plan[k + 1].coin == step.coin
    # A manual close or a liquidation right after the next signal's fill, on a signal with no
    # fault, late push or restart of its own (those are answered by re-reads that order again).
    after = [(k, s) for k, s in enumerate(plan) if s.kind == "after_fill"]
    assert len(after) > 20 and {s.venue for _, s in after} == VENUES
    assert {s.liquidate for _, s in after} == {True, False}
    for k, step in after:
        assert plan[k + 1].kind == "signal" and plan[k + 1].coin == step.coin
        assert step.size == (None if step.liquidate else "0")
        previous_signal = max((j for j in range(k) if plan[j].kind == "signal"), default=-1)
        assert not {s.kind for s in plan[previous_signal + 1 : k]} & {"fault", "stream_lag", "restart"}


@pytest.mark.xdist_group("soak")
@pytest.mark.timeout(600)  # ~90 s on an idle 2-core box; far more when it is shared
def test_short_soak_nothing_lost_never_doubled(soak: Any, tmp_path: Path) -> None:
    # Fewer and shorter faults than `make soak` (each costs the bot seconds of retries), same kinds.
    # Four restarts: a kill right after a TP/SL send, a kill while orders are held inside the
    # venues (issue 14), and two on the news→order path (issue 18): SIGKILL the moment the
    # webhook's 202 arrives (never redelivered: the restarted bot must finish the item) and the
    # bot, started on an empty journal, killing itself right after the item's rows are queued,
    # before their commit (the restart keeps that journal). The `before-send` and `after-send`
    # kills run in `make soak` only: a restart that finds an intent it cannot know was sent waits
    # out the venues' validity window (the in-flight rule), seconds this suite cannot spare.
    # Each restarted client starts with a full Hyperliquid weight budget, which paces the bot
    # (1200/min).
    cfg = soak.SoakConfig(signals=100, restarts=4, coins=11, seed=3, fault_rate=0.15, timeout_ms=400)
    lines: list[str] = []
    report = soak.run_soak(cfg, tmp_path, say=lines.append)
    summary = soak.render(report, cfg)
    assert report.problems == [], summary
    line = report.line()
    assert (line["mismatches"], line["doubled"], line["lost"]) == (0, 0, 0), summary
    # Every held position ended protected exactly once (after the TP/SL kill and at the end).
    assert (line["unprotected"], line["double_protected"]) == (0, 0), summary
    # Nothing acknowledged was lost, nothing left unfinished, no order without its intent.
    assert (line["news_lost"], line["unfinished"], line["orphan_orders"]) == (0, 0, 0), summary
    assert line["acknowledged"] == 100, summary
    assert line["signals"] == 100 and line["restarts"] == 4
    # The chaos really happened: faults of several kinds fired, the world moved under the bot.
    assert line["faults"] >= 8 and len(line["faults_by_kind"]) >= 3, summary
    assert line["outside_trades"] + line["liquidations"] >= 5, summary
    assert line["late_pushes"] >= 2, summary
    assert report.restarts_by_kind == Counter(
        {
            "kept-journal/after-ack": 1,
            "empty-journal/queued": 1,
            "kept-journal/tpsl": 1,
            "kept-journal/in-flight": 1,
        }
    )
    # The queued kill landed inside the item's handling (its rows not yet committed, or
    # committed and unfinished); the after-ack one after the 202, wherever the orders were.
    landings = report.kill_landings
    assert landings["queued:absent"] + landings["queued:received"] == 1, summary
    assert landings["after-ack:received:acked"] + landings["after-ack:final:acked"] == 1, summary
    # Most signals were carried out on both venues (a venue may fail a signal under faults).
    for venue in VENUES:
        assert report.outcomes[(venue, "ok")] >= 80, summary
    # The journal saw the drift the outside trades, liquidations and empty journal caused.
    assert report.drift_events["missing_local_adopted"] >= 1, summary


async def test_the_end_checks_count_what_an_acknowledged_item_lost(soak: Any, tmp_path: Path) -> None:
    """`news_lost` and `unfinished` catch each way a kill could lose an item, on a real journal."""
    path = tmp_path / "journal-0.db"
    journal = await Journal.open(f"sqlite:///{path}")
    try:

        async def item(news_id: str, outcome: str, signal: str | None, venues: tuple[str, ...]) -> None:
            coin = "BTC"
            await journal.record_news(
                NewsItem(id=news_id, title=f"BTC up {news_id}", source="test", coin=coin, side=Side.LONG),
                "received",
            )
            if outcome != "received":
                await journal.update_news(news_id, outcome, "test")
            if signal is None:
                return
            sig = Signal(id=f"s-{news_id}", news_id=news_id, coin=coin, side=Side.LONG, source="test")
            await journal.record_signal(sig, signal)
            for venue in venues:
                await journal.record_outcome(sig.id, VenueOutcome(venue, coin, OutcomeStatus.OK))

        both = tuple(sorted(VENUES))
        await item("done", "traded", "executed", both)  # finished on both venues: fine
        await item("skipped", "skipped", None, ())  # decided without a signal: fine
        await item("never-sent", "received", None, ())  # was still in flight (not acknowledged)
        await item("left-received", "received", "accepted", ())  # the restart never resumed it
        await item("left-interrupted", "interrupted", "accepted", ())  # waits for a redelivery
        await item("one-venue", "traded", "executed", ("aster",))  # a venue's outcome missing
        request = OrderRequest(coin="BTC", is_buy=True, size=Decimal("0.01"), client_id="nt-x")
        await journal.record_intent("s-done", "aster", "BTC", "t0", "nt-x", request)  # never resolved
    finally:
        await journal.close()

    check = soak.Soak(soak.SoakConfig(signals=1, restarts=0), tmp_path, say=lambda _: None)
    check.journals = [path]
    check.acked = {"done", "skipped", "left-received", "left-interrupted", "one-venue", "absent"}
    check._check_journals()
    lost = sorted(p.split(": ")[1] for p in check.report.problems if p.startswith("news_lost"))
    assert lost == ["absent", "left-interrupted", "left-received", "one-venue"]
    assert check.report.news_lost == 4
    unfinished = [p for p in check.report.problems if p.startswith("unfinished")]
    # never-sent and left-received still `received`, left-interrupted's signal still `accepted`,
    # one-venue's signal without hyperliquid's outcome, the pending intent.
    assert check.report.unfinished == 5 == len(unfinished), unfinished
    assert check.report.bad() == 9


async def test_the_end_check_finds_an_order_with_no_journaled_intent(
    soak: Any, engine_sim: Any, tmp_path: Path
) -> None:
    """`orphan_orders`: the venue's fills are matched to journaled intents by client id (the
    cloid Hyperliquid sees is a hash of ours); a journal without them leaves every fill orphaned."""
    venues, addresses = funded_venues(engine_sim, MARKS)
    ours, other = tmp_path / "ours.db", tmp_path / "other.db"
    journal = await Journal.open(f"sqlite:///{ours}")
    await (await Journal.open(f"sqlite:///{other}")).close()
    try:
        executor = Executor(venues, journal, EngineSettings(mode="target"), Sizer(Decimal(1000), 3))
        signal = Signal(id="s-orphan", news_id="n-orphan", coin="BTC", side=Side.LONG)
        outcomes = await executor.execute(signal)
        assert [o.status for o in outcomes] == [OutcomeStatus.OK] * 2, outcomes
    finally:
        await journal.close()
        for venue in venues.values():
            await venue.close()
    assert soak.orders_without_intent(engine_sim.admin, addresses, [ours]) == []
    orphans = soak.orders_without_intent(engine_sim.admin, addresses, [other])
    assert sorted(line.split()[0] for line in orphans) == sorted(VENUES), orphans
