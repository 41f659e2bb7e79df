"""The pipeline's filters against a real SQLite journal in a temp dir (no mocks of our code)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from newstrader.domain import NewsItem, OrderRequest, OutcomeStatus, Side, Signal, VenueOutcome, utcnow
from newstrader.journal import Journal
from newstrader.news.parser import Parser
from newstrader.news.pipeline import DUPLICATE_HEADLINE, DUPLICATE_ID, Pipeline, PipelineSettings

PARSER = Parser()


class Clock:
    """A settable wall clock starting at the real now (the journal stamps rows with real time)."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Recorder:
    """An `act` that, like the engine, writes an order intent (awaited) before it would send,
    and then records what the journal holds: the news item and its signal must be durable by
    then, though the pipeline only queued them. Optionally holds until released."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.signals: list[Signal] = []
        self.outcome_at_act: list[str] = []
        self.signal_at_act: list[str] = []
        self.gate: asyncio.Event | None = None

    async def __call__(self, signal: Signal) -> list[VenueOutcome]:
        self.signals.append(signal)
        request = OrderRequest(signal.coin, signal.side is Side.LONG, Decimal(1), f"c-{signal.id}")
        await self.journal.record_intent(signal.id, "sim", signal.coin, "open", f"c-{signal.id}", request)
        rows = {row["id"]: row for row in await self.journal.recent_news(500)}
        self.outcome_at_act.append(rows[signal.news_id]["outcome"])
        signals = {row["id"]: row for row in await self.journal.recent_signals(500)}
        self.signal_at_act.append(signals[signal.id]["status"])
        if self.gate is not None:
            await self.gate.wait()
        return [VenueOutcome("sim", signal.coin, OutcomeStatus.OK, "opened")]


async def _open(path: Path) -> Journal:
    return await Journal.open(f"sqlite:///{path}")


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    j = await _open(tmp_path / "journal.db")
    yield j
    await j.close()


def make(journal: Journal, clock: Clock, act: Callable[[Signal], Awaitable[Any]], **cfg: float) -> Pipeline:
    return Pipeline(PARSER, journal, PipelineSettings(**cfg), act, clock=clock)


def item(news_id: str, title: str, clock: Clock, **kw: Any) -> NewsItem:
    return NewsItem(id=news_id, title=title, received_at=clock(), **kw)


async def news_row(journal: Journal, news_id: str) -> dict[str, Any]:
    rows = {row["id"]: row for row in await journal.recent_news(500)}
    return rows[news_id]


async def signal_rows(journal: Journal) -> dict[str, dict[str, Any]]:
    return {row["news_id"]: row for row in await journal.recent_signals(500)}


async def test_item_is_journaled_before_acting_and_final_outcome_after(journal: Journal) -> None:
    clock = Clock()
    act = Recorder(journal)
    pipeline = make(journal, clock, act)
    decision = await pipeline.submit(item("n1", "Coinbase will list SUI", clock, source="rss"))
    assert decision.signal is not None and decision.signal.coin == "SUI"
    assert act.outcome_at_act == ["received"]  # durable once the intent was: before any send
    assert act.signal_at_act == ["accepted"]
    # The ledger starts at receipt: the signal carries received → parsed.
    stages = dict(decision.signal.stamps)
    assert list(stages) == ["received", "parsed"] and stages["received"] <= stages["parsed"]
    row = await news_row(journal, "n1")
    assert (row["outcome"], row["reason"]) == ("traded", "sim: ok (opened)")
    assert (await signal_rows(journal))["n1"]["status"] == "executed"


async def test_no_signal_items_are_journaled_with_the_reason(journal: Journal) -> None:
    clock = Clock()
    act = Recorder(journal)
    pipeline = make(journal, clock, act)
    for news_id, title, reason in [
        ("a", "Fed holds rates", "no coin"),
        ("b", "Bitcoin trades flat", "no direction"),
        ("c", "Kraken has no plans to delist XRP", "negated"),
        ("d", "Will the SEC approve an XRP ETF?", "question"),
    ]:
        decision = await pipeline.submit(item(news_id, title, clock))
        assert (decision.signal, decision.reason) == (None, reason)
        row = await news_row(journal, news_id)
        assert (row["outcome"], row["reason"]) == ("ignored", reason)
    assert act.signals == []


async def test_dedupe_by_id_and_by_headline_across_sources_and_restarts(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "restart.db"
    journal = await _open(path)
    act = Recorder(journal)
    pipeline = make(journal, clock, act, dedupe_window_s=600)
    first = await pipeline.submit(item("x1", "Binance will list WIF perpetual", clock, source="rss"))
    assert first.outcome == "traded"
    again = await pipeline.submit(item("x1", "Binance will list WIF perpetual", clock, source="rss"))
    assert again.outcome == "duplicate" and "id" in again.reason
    clock.advance(5)
    other = await pipeline.submit(item("x2", "BINANCE WILL LIST WIF PERPETUAL!", clock, source="ws"))
    assert other.outcome == "duplicate" and "headline" in other.reason
    assert (await news_row(journal, "x2"))["outcome"] == "duplicate"
    await journal.close()

    # A restart: a fresh journal connection and pipeline still know both.
    journal = await _open(path)
    act2 = Recorder(journal)
    pipeline = make(journal, clock, act2, dedupe_window_s=600)
    clock.advance(5)
    assert (
        await pipeline.submit(item("x1", "Binance will list WIF perpetual", clock))
    ).outcome == "duplicate"
    third = await pipeline.submit(item("x3", "Binance will list WIF perpetual", clock, source="webhook"))
    assert third.outcome == "duplicate"
    # Outside the window the same headline is news again.
    clock.advance(601)
    later = await pipeline.submit(item("x4", "Binance will list WIF perpetual", clock, source="webhook"))
    assert later.outcome == "traded"
    assert [s.news_id for s in act.signals + act2.signals] == ["x1", "x4"]
    await journal.close()


async def test_what_another_bot_journaled_just_before_is_caught(tmp_path: Path) -> None:
    """Two bots share one journal file, each reading its gate on its own loop's connection: an
    item the other one journaled, the same headline under another id, and a pause it wrote just
    before an item arrives are all caught before acting."""
    path = tmp_path / "shared.db"
    mine, theirs = await _open(path), await _open(path)
    try:
        clock = Clock()
        act = Recorder(mine)
        pipeline = make(mine, clock, act)
        other = make(theirs, clock, Recorder(theirs))
        assert (await pipeline.submit(item("a1", "Coinbase will list SUI", clock))).outcome == "traded"
        assert (await other.submit(item("b1", "Coinbase will list TIA", clock))).outcome == "traded"
        same_id = await pipeline.submit(item("b1", "Coinbase will list TIA", clock))
        assert (same_id.outcome, same_id.reason) == ("duplicate", DUPLICATE_ID)
        same_headline = await pipeline.submit(item("a2", "COINBASE will list TIA!", clock))
        assert (same_headline.outcome, same_headline.reason) == ("duplicate", DUPLICATE_HEADLINE)
        await theirs.set_control("paused", True)
        paused = await pipeline.submit(item("a3", "Coinbase will list TAO", clock))
        assert (paused.outcome, paused.reason) == ("skipped", "paused")
        assert [s.news_id for s in act.signals] == ["a1"]
    finally:
        await mine.close()
        await theirs.close()


async def test_concurrent_copies_of_one_headline_pass_once(journal: Journal) -> None:
    clock = Clock()
    act = Recorder(journal)
    pipeline = make(journal, clock, act)
    decisions = await asyncio.gather(
        *(pipeline.submit(item(f"c{i}", "Robinhood lists PEPE", clock, source=f"s{i}")) for i in range(6))
    )
    assert sorted(d.outcome for d in decisions) == ["duplicate"] * 5 + ["traded"]
    assert len(act.signals) == 1


async def test_stale_items_are_skipped(journal: Journal) -> None:
    clock = Clock()
    act = Recorder(journal)
    pipeline = make(journal, clock, act, max_age_s=300)
    old = await pipeline.submit(
        item("old", "Coinbase will list SUI", clock, published_at=clock() - timedelta(seconds=301))
    )
    assert old.outcome == "skipped" and old.reason.startswith("stale")
    fresh = await pipeline.submit(
        item("new", "Coinbase will list ENA", clock, published_at=clock() - timedelta(seconds=299))
    )
    assert fresh.outcome == "traded"
    assert [s.news_id for s in act.signals] == ["new"]


async def test_min_confidence(journal: Journal) -> None:
    clock = Clock()
    act = Recorder(journal)
    pipeline = make(journal, clock, act, min_confidence=0.5)
    weak = await pipeline.submit(item("w", "Bitcoin surges", clock))
    assert weak.outcome == "skipped" and weak.reason.startswith("low confidence")
    assert (await signal_rows(journal))["w"]["status"] == "skipped"
    strong = await pipeline.submit(item("s", "Bitcoin surges as SEC approves ETF", clock))
    assert strong.outcome == "traded"
    assert [s.news_id for s in act.signals] == ["s"]


async def test_cooldown_per_coin_survives_restart(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "cool.db"
    journal = await _open(path)
    act = Recorder(journal)
    pipeline = make(journal, clock, act, cooldown_s=60)
    assert (await pipeline.submit(item("b1", "LONG BTC", clock))).outcome == "traded"
    clock.advance(10)
    blocked = await pipeline.submit(item("b2", "SHORT BTC", clock))
    assert blocked.outcome == "skipped" and blocked.reason.startswith("cooldown")
    assert (await pipeline.submit(item("e1", "LONG ETH", clock))).outcome == "traded"
    await journal.close()

    journal = await _open(path)
    act2 = Recorder(journal)
    pipeline = make(journal, clock, act2, cooldown_s=60)
    clock.advance(10)
    assert (await pipeline.submit(item("b3", "short btc 2x", clock))).reason.startswith("cooldown")
    clock.advance(45)
    assert (await pipeline.submit(item("b4", "sell bitcoin", clock))).outcome == "traded"
    assert [s.news_id for s in act.signals + act2.signals] == ["b1", "e1", "b4"]
    await journal.close()


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_conflict_window_newer_wins_older_superseded(journal: Journal) -> None:
    clock = Clock()
    act = Recorder(journal)
    act.gate = asyncio.Event()
    pipeline = make(journal, clock, act, conflict_window_s=30)
    first = asyncio.create_task(pipeline.submit(item("k1", "LONG SOL", clock)))
    await _until(lambda: len(act.signals) == 1)  # k1 is acting (held at the gate)
    clock.advance(1)
    second = asyncio.create_task(pipeline.submit(item("k2", "SHORT SOL", clock)))
    await _until(lambda: "SOL" in pipeline._tracked and pipeline._tracked["SOL"].signal.news_id == "k2")
    clock.advance(1)
    third = asyncio.create_task(pipeline.submit(item("k3", "buy solana", clock)))
    await _until(lambda: pipeline._tracked["SOL"].signal.news_id == "k3")
    act.gate.set()
    d1, d2, d3 = await asyncio.gather(first, second, third)
    assert [s.news_id for s in act.signals] == ["k1", "k3"]  # k2 was superseded before it acted
    assert d1.outcome == "traded" and d3.outcome == "traded"
    assert d2.outcome == "skipped" and d2.reason.startswith("superseded")
    signals = await signal_rows(journal)
    assert signals["k1"]["status"] == "superseded" and "after it acted" in signals["k1"]["reason"]
    assert signals["k2"]["status"] == "superseded" and "before it acted" in signals["k2"]["reason"]
    assert signals["k3"]["status"] == "executed"


async def test_without_conflict_window_every_signal_acts_in_order(journal: Journal) -> None:
    clock = Clock()
    act = Recorder(journal)
    pipeline = make(journal, clock, act, conflict_window_s=0)
    for i, text in enumerate(["LONG SOL", "SHORT SOL", "buy solana"]):
        assert (await pipeline.submit(item(f"o{i}", text, clock))).outcome == "traded"
    assert [s.side for s in act.signals] == [Side.LONG, Side.SHORT, Side.LONG]


async def test_outside_the_window_no_conflict(journal: Journal) -> None:
    clock = Clock()
    act = Recorder(journal)
    pipeline = make(journal, clock, act, conflict_window_s=30)
    await pipeline.submit(item("w1", "LONG AVAX", clock))
    clock.advance(31)
    await pipeline.submit(item("w2", "SHORT AVAX", clock))
    assert (await signal_rows(journal))["w1"]["status"] == "executed"


async def test_paused_switch(journal: Journal) -> None:
    clock = Clock()
    act = Recorder(journal)
    pipeline = make(journal, clock, act)
    await journal.set_control("paused", True)
    paused = await pipeline.submit(item("p1", "Coinbase will list TIA", clock))
    assert (paused.outcome, paused.reason) == ("skipped", "paused")
    await journal.set_control("paused", False)
    assert (await pipeline.submit(item("p2", "Coinbase will list TAO", clock))).outcome == "traded"
    assert [s.news_id for s in act.signals] == ["p2"]


async def test_act_failure_is_journaled_and_pipeline_goes_on(journal: Journal) -> None:
    clock = Clock()

    async def broken(signal: Signal) -> None:
        raise RuntimeError("venue exploded")

    pipeline = make(journal, clock, broken)
    failed = await pipeline.submit(item("f1", "LONG BTC", clock))
    assert failed.outcome == "failed" and "venue exploded" in failed.reason
    row = await news_row(journal, "f1")
    assert row["outcome"] == "failed"
    assert (await signal_rows(journal))["f1"]["status"] == "failed"


async def test_given_coin_and_side_skip_parsing(journal: Journal) -> None:
    clock = Clock()
    act = Recorder(journal)
    pipeline = make(journal, clock, act)
    decision = await pipeline.submit(item("tv", "TV alert #42", clock, coin="eth", side=Side.SHORT))
    assert decision.outcome == "traded"
    assert (act.signals[0].coin, act.signals[0].side, act.signals[0].terms) == ("ETH", Side.SHORT, ("given",))


async def test_many_different_headlines_in_parallel_are_all_journaled(journal: Journal) -> None:
    clock = Clock()
    act = Recorder(journal)
    pipeline = make(journal, clock, act)
    coins = ["BTC", "ETH", "SOL", "XRP", "DOGE", "SUI", "AVAX", "LINK", "LTC", "DOT"]
    decisions = await asyncio.gather(
        *(
            pipeline.submit(item(f"par{i}", f"Coinbase will list {coin} options", clock))
            for i, coin in enumerate(coins)
        )
    )
    assert [d.outcome for d in decisions] == ["traded"] * len(coins)
    assert sorted(s.coin for s in act.signals) == sorted(coins)
    rows = await journal.recent_news(50)
    assert {r["id"] for r in rows if r["outcome"] == "traded"} == {f"par{i}" for i in range(len(coins))}


class GatedJournal:
    """The real journal, with the pipeline's read for one id held until a gate opens (slow I/O)."""

    def __init__(self, journal: Journal, held_id: str) -> None:
        self._journal = journal
        self.held_id = held_id
        self.gate = asyncio.Event()
        self.holding = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._journal, name)

    async def news_gate(self, news_id: str, norm_title: str, since: datetime | None) -> Any:
        if news_id == self.held_id:
            self.holding = True
            await self.gate.wait()
        return await self._journal.news_gate(news_id, norm_title, since)


async def test_conflict_rule_follows_arrival_order_not_io_order(journal: Journal) -> None:
    clock = Clock()
    act = Recorder(journal)
    gated = GatedJournal(journal, held_id="first")
    pipeline = Pipeline(PARSER, gated, PipelineSettings(conflict_window_s=30), act, clock=clock)  # type: ignore[arg-type]
    first = asyncio.create_task(pipeline.submit(item("first", "LONG SOL", clock)))
    await _until(lambda: gated.holding)  # the older item is stuck in journal I/O
    clock.advance(1)
    second_task = asyncio.create_task(pipeline.submit(item("second", "SHORT SOL", clock)))
    await _until(lambda: "SOL" in pipeline._tracked)  # the newer got through its filters first
    assert not act.signals  # ...and waits: an earlier item on SOL is still in flight
    gated.gate.set()
    older, second = await asyncio.gather(first, second_task)
    assert second.outcome == "traded"
    assert older.outcome == "skipped" and older.reason.startswith("superseded")
    assert [s.news_id for s in act.signals] == ["second"]  # the newer won, the older never acted
    signals = await signal_rows(journal)
    assert signals["first"]["status"] == "superseded"
    assert signals["second"]["status"] == "executed"


async def test_acts_on_one_coin_follow_arrival_order(journal: Journal) -> None:
    clock = Clock()
    act = Recorder(journal)
    gated = GatedJournal(journal, held_id="a1")
    pipeline = Pipeline(PARSER, gated, PipelineSettings(), act, clock=clock)  # type: ignore[arg-type]
    first = asyncio.create_task(pipeline.submit(item("a1", "LONG SOL", clock)))
    await _until(lambda: gated.holding)
    second = asyncio.create_task(pipeline.submit(item("a2", "SHORT SOL", clock)))
    other = await pipeline.submit(item("a3", "LONG ETH", clock))  # another coin is not held up
    assert other.outcome == "traded"
    await _until(lambda: "SOL" in pipeline._tracked)
    assert [s.news_id for s in act.signals] == ["a3"]  # a2 waits for a1, which arrived first
    gated.gate.set()
    await asyncio.gather(first, second)
    assert [s.news_id for s in act.signals] == ["a3", "a1", "a2"]


# -- the answer before the orders (`accept`), and what happens to executions at stop and start


async def test_accept_answers_before_acting_and_keeps_arrival_order_per_coin(journal: Journal) -> None:
    clock = Clock()
    act = Recorder(journal)
    act.gate = asyncio.Event()
    pipeline = make(journal, clock, act, max_age_s=0)
    first = await pipeline.accept(item("a1", "t1", clock, coin="BTC", side=Side.LONG))
    second = await pipeline.accept(item("a2", "t2", clock, coin="BTC", side=Side.SHORT))
    # Both answered while the first still holds the venue: decided and journaled, not done.
    assert first.outcome == second.outcome == "accepted" and first.execution and second.execution
    assert (await news_row(journal, "a1"))["outcome"] == "received"
    assert (await signal_rows(journal))["a2"]["status"] == "accepted"
    await _until(lambda: len(act.signals) == 1)
    assert [s.news_id for s in act.signals] == ["a1"]  # the second waits for the first (one coin)
    act.gate.set()
    final = await second.execution
    assert [s.news_id for s in act.signals] == ["a1", "a2"]
    assert final.outcome == "traded" and "sim: ok" in final.reason
    assert (await news_row(journal, "a2"))["outcome"] == "traded"
    assert await pipeline.drain(1) == 0


async def test_stop_cancels_what_is_late_and_start_resumes_it(tmp_path: Path) -> None:
    clock = Clock()
    journal = await _open(tmp_path / "j.db")
    held = Recorder(journal)
    held.gate = asyncio.Event()  # a venue that never answers before the stop
    pipeline = make(journal, clock, held, max_age_s=60)
    decision = await pipeline.accept(item("r1", "t", clock, coin="ETH", side=Side.LONG))
    await _until(lambda: len(held.signals) == 1)
    assert await pipeline.drain(0.05) == 1  # late: cancelled, journaled as still to do
    assert decision.execution is not None and decision.execution.cancelled()
    assert (await news_row(journal, "r1"))["outcome"] == "received"
    await journal.close()

    journal = await _open(tmp_path / "j.db")  # the next start
    act = Recorder(journal)
    restarted = make(journal, clock, act, max_age_s=60)
    resumed, interrupted = await restarted.resume_unfinished("restart")
    assert (resumed, interrupted) == (["r1"], [])
    # A new item on the coin, accepted right after start-up, acts after the resumed one.
    later = await restarted.accept(item("r2", "t2", clock, coin="ETH", side=Side.SHORT))
    assert later.execution is not None
    await later.execution
    assert [s.news_id for s in act.signals] == ["r1", "r2"]
    assert act.signals[0] == held.signals[0]  # the same signal, read back from the journal
    assert (await news_row(journal, "r1"))["outcome"] == "traded"
    await journal.close()


async def test_a_signal_older_than_max_age_is_not_resumed(tmp_path: Path) -> None:
    clock = Clock()
    journal = await _open(tmp_path / "j.db")
    held = Recorder(journal)
    held.gate = asyncio.Event()
    pipeline = make(journal, clock, held, max_age_s=60)
    await pipeline.accept(item("o1", "t", clock, coin="SOL", side=Side.LONG))
    await _until(lambda: len(held.signals) == 1)
    await pipeline.drain(0)
    clock.advance(61)  # down for longer than the news may be old
    act = Recorder(journal)
    resumed, interrupted = await make(journal, clock, act, max_age_s=60).resume_unfinished("restart")
    assert (resumed, interrupted) == ([], ["o1"]) and act.signals == []
    assert (await news_row(journal, "o1"))["outcome"] == "interrupted"  # a redelivery may resume it
    await journal.close()
