"""Bugs the chaos soak found, each pinned by a test of its own.

1. A news item being handled when the bot was killed stayed `received` for ever, and its
   redelivery (the sender never got a 202) was dropped as a duplicate: the signal was never
   finished and the item had no outcome. Now start-up marks such items `interrupted` and a
   redelivery resumes them; orders already sent are found by client id, never resent.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from newstrader.domain import NewsItem, Side
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


@pytest.mark.xdist_group("soak")
@pytest.mark.timeout(400)  # two bot starts: a minute each on a loaded 2-core box
def test_killed_mid_signal_then_redelivered_is_finished_not_dropped(world: Any) -> None:
    bot = world.start_bot(env={"NEWSTRADER_TEST_CRASH_AFTER_SEND": "1"})
    body = {"id": "crash-mid", "title": "crash mid ETH", "coin": "ETH", "side": "long", "source": "test"}
    with pytest.raises(httpx.TransportError):
        bot.http.post("/api/news", json=body)
    deadline = time.monotonic() + 20
    while bot.process.poll() is None:
        assert time.monotonic() < deadline, "the test hook did not end the bot"
        time.sleep(0.05)  # poll interval
    assert [r["outcome"] for r in bot.rows("SELECT outcome FROM news WHERE id = 'crash-mid'")] == ["received"]

    restarted = world.start_bot()  # same journal
    assert "news_interrupted" in restarted.log()
    [row] = restarted.rows("SELECT outcome FROM news WHERE id = 'crash-mid'")
    assert row["outcome"] == "interrupted"  # final even if it never comes again

    reply = restarted.news("ETH", "long", news_id="crash-mid")  # the sender retries
    assert reply["signal"] is not None, reply
    want = world.target("ETH", "long")
    assert world.positions("ETH") == {v: want for v in VENUES}
    [row] = restarted.rows("SELECT outcome FROM news WHERE id = 'crash-mid'")
    assert row["outcome"] == "traded"
    outcomes = {o["venue"]: o["status"] for o in restarted.outcomes(reply["signal"]["id"])}
    assert outcomes == {v: "ok" for v in VENUES}
    # The leg sent before the kill was looked up by its client id, not sent a second time.
    sent = restarted.rows("SELECT venue, leg FROM orders WHERE signal_id = ?", reply["signal"]["id"])
    assert len(sent) == len({(o["venue"], o["leg"]) for o in sent})
    assert all(Decimal(o["exchange_size_after"]) == want for o in restarted.outcomes(reply["signal"]["id"]))

    again = restarted.news("ETH", "long", news_id="crash-mid")  # finished now: a duplicate
    assert again["signal"] is None and "duplicate" in again["reason"]
    assert world.positions("ETH") == {v: want for v in VENUES}
