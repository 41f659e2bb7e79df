"""The order a commit's results reach the event loop in: awaited writes before queued rows."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

import pytest

from newstrader import journal as journal_module
from newstrader.domain import NewsItem, OrderRequest, Side, Signal
from newstrader.journal import Journal


async def test_an_order_intent_resumes_its_caller_before_the_queued_rows_of_its_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """News, signal and order intent share a commit. The order waiting on its intent must go on
    first: the webhook's answer waits on the news and signal rows, and running it first put
    ~0.4 ms of response work between a durable intent and the order's bytes."""
    monkeypatch.setattr(journal_module, "QUEUED_ROWS_LINGER_S", 30.0)  # the three share a group
    journal = await Journal.open(f"sqlite:///{tmp_path / 'handback.db'}")
    resumed: list[str] = []
    try:
        news = journal.queue_news(NewsItem(id="h-1", title="queued"), "received")
        signal = journal.queue_signal(Signal(id="s-1", news_id="h-1", coin="ETH", side=Side.LONG), "accepted")

        async def answer() -> None:  # the pipeline's answer to the webhook waits so
            await asyncio.gather(news, signal)
            resumed.append("answer")

        async def order() -> None:  # the executor's order waits so (it signs meanwhile)
            req = OrderRequest(coin="ETH", is_buy=True, size=Decimal("1"), client_id="c-1")
            recording = asyncio.ensure_future(journal.record_intent("s-1", "sim", "ETH", "t0", "c-1", req))
            assert await recording is True
            resumed.append("order")

        answering = asyncio.ensure_future(answer())
        deadline = time.monotonic() + 10
        while not journal._writer._queue.empty():  # the writer has taken both rows and lingers
            assert time.monotonic() < deadline, "the journal writer never took the queued rows"
            await asyncio.sleep(0.001)
        await asyncio.gather(answering, order())
        assert resumed == ["order", "answer"]
    finally:
        await journal.close()
