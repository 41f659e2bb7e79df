"""Bugs the chaos soak found, each pinned by a test of its own.

1. A news item being handled when the bot was killed stayed `received` for ever, and its
   redelivery (the sender never got a 202) was dropped as a duplicate: the signal was never
   finished and the item had no outcome. Now start-up marks such items `interrupted` and a
   redelivery resumes them; orders already sent are found by client id, never resent.
2. Once the webhook answers 202 before the orders, its sender has no reason to deliver again:
   an accepted signal a crash cut short must finish without a redelivery. Start-up resumes it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from newstrader.domain import NewsItem, Side, Signal
from newstrader.journal import Journal

VENUES = ("hyperliquid", "aster")


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    j = await Journal.open(f"sqlite:///{tmp_path / 'journal.db'}")
    yield j
    await j.close()


async def test_an_interrupted_item_is_claimed_again_once(journal: Journal) -> None:
    item = NewsItem(id="n-crash", title="BTC up", source="webhook", coin="BTC", side=Side.LONG)
    done = NewsItem(id="n-done", title="ETH down", source="webhook", coin="ETH", side=Side.SHORT)
    assert await journal.record_news(item, "received") is True
    assert await journal.record_news(done, "received") is True
    await journal.update_news("n-done", "traded", "ok")
    assert await journal.record_news(item, "received") is False  # in flight: a plain duplicate

    assert await journal.interrupt_unfinished_news("restart") == ["n-crash"]  # only the unfinished one
    rows = {r["id"]: r for r in await journal.recent_news(10)}
    assert rows["n-crash"]["outcome"] == "interrupted" and rows["n-crash"]["reason"] == "restart"
    assert rows["n-done"]["outcome"] == "traded"

    assert await journal.record_news(done, "received") is False  # finished items stay duplicates
    assert await journal.record_news(item, "received") is True  # the redelivery resumes it
    assert await journal.record_news(item, "received") is False  # ...once
    assert await journal.interrupt_unfinished_news("again") == ["n-crash"]


async def test_only_accepted_signals_of_unfinished_items_are_resumed(journal: Journal) -> None:
    decided = NewsItem(id="n-decided", title="SOL up", source="webhook", coin="SOL", side=Side.LONG)
    undecided = NewsItem(id="n-undecided", title="BTC up", source="webhook", coin="BTC", side=Side.LONG)
    done = NewsItem(id="n-done", title="ETH up", source="webhook", coin="ETH", side=Side.LONG)
    for item in (decided, undecided, done):
        assert await journal.record_news(item, "received")
    accepted = Signal(id="s-decided", news_id="n-decided", coin="SOL", side=Side.LONG)
    finished = Signal(id="s-done", news_id="n-done", coin="ETH", side=Side.LONG)
    await journal.record_signal(accepted, "accepted")
    await journal.record_signal(finished, "accepted")
    await journal.update_signal("s-done", "executed", "ok")
    await journal.update_news("n-done", "traded", "ok")

    [resumable] = await journal.unfinished_signals()
    assert resumable == accepted  # read back whole: the same signal executes again
    # The resumed item stays unfinished (a crash during the resume resumes it again); the rest
    # is interrupted, for its sender's retry.
    assert await journal.interrupt_unfinished_news("restart", keep=["n-decided"]) == ["n-undecided"]
    rows = {r["id"]: r["outcome"] for r in await journal.recent_news(10)}
    assert rows == {"n-decided": "received", "n-undecided": "interrupted", "n-done": "traded"}


@pytest.mark.xdist_group("soak")
@pytest.mark.timeout(400)  # two bot starts: a minute each on a loaded 2-core box
def test_killed_mid_signal_is_resumed_at_start_up_not_dropped(world: Any) -> None:
    """2. Since the webhook answers at once, the sender may never deliver again: an accepted item
    a crash cut short is resumed at start-up, and a later redelivery is a plain duplicate."""
    bot = world.start_bot(env={"NEWSTRADER_TEST_CRASH_AFTER_SEND": "1"})
    body = {"id": "crash-mid", "title": "crash mid ETH", "coin": "ETH", "side": "long", "source": "test"}
    with contextlib.suppress(httpx.TransportError):  # the 202 comes first, unless the crash wins the race
        bot.post_news(body)
    deadline = time.monotonic() + 20
    while bot.process.poll() is None:
        assert time.monotonic() < deadline, "the test hook did not end the bot"
        time.sleep(0.05)  # poll interval
    assert [r["outcome"] for r in bot.rows("SELECT outcome FROM news WHERE id = 'crash-mid'")] == ["received"]
    [signal] = bot.rows("SELECT id, status FROM signals WHERE news_id = 'crash-mid'")
    assert signal["status"] == "accepted"

    restarted = world.start_bot()  # same journal; nobody delivers the item again
    assert "signal_resumed" in restarted.log()
    view = restarted.signal_done(signal["id"], 60)
    want = world.target("ETH", "long")
    assert world.positions("ETH") == {v: want for v in VENUES}
    [row] = restarted.rows("SELECT outcome FROM news WHERE id = 'crash-mid'")
    assert row["outcome"] == "traded"
    latest = {o["venue"]: o["status"] for o in view["outcomes"]}  # a leg resumed has a second run
    assert latest == {v: "ok" for v in VENUES}, view
    # The leg sent before the kill was looked up by its client id, not sent a second time.
    sent = restarted.rows("SELECT venue, leg FROM orders WHERE signal_id = ?", signal["id"])
    assert len(sent) == len({(o["venue"], o["leg"]) for o in sent})
    last_runs = {o["venue"]: o for o in restarted.outcomes(signal["id"])}
    assert all(Decimal(o["exchange_size_after"]) == want for o in last_runs.values())

    again = restarted.news("ETH", "long", news_id="crash-mid")  # finished: a duplicate
    assert again["signal"] is None and "duplicate" in again["reason"]
    assert world.positions("ETH") == {v: want for v in VENUES}
