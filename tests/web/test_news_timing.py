"""Honest news timing on a running bot + simulator: the ledger starts at the edge.

- a webhook item's ledger starts when the handler began, before its body had even arrived;
- a feed item that carries its publication time shows publication → fill on `/api/stats`.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from websockets.asyncio.server import ServerConnection, serve

from newstrader.news.sources import Backoff
from newstrader.news.sources.websocket import WebSocketSource

if TYPE_CHECKING:
    from conftest import RunningStack

pytestmark = pytest.mark.xdist_group("web")

BODY_PAUSE_S = 0.3  # the sender stalls this long mid-body


def _outcomes_of(stack: RunningStack, news_id: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        signals = {s["id"] for s in await stack.bot.journal.recent_signals(200) if s["news_id"] == news_id}
        return [o for o in await stack.bot.journal.recent_outcomes(200) if o["signal_id"] in signals]

    return stack.run(read())


def test_a_webhook_items_ledger_starts_at_the_handler(flat_stack: RunningStack) -> None:
    stack = flat_stack
    news_id = f"timing-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"id": news_id, "title": "Coinbase will list Sui (SUI) perpetual futures"}).encode()

    async def slow_body() -> AsyncIterator[bytes]:
        yield body[:20]
        await asyncio.sleep(BODY_PAUSE_S)  # a slow sender: the rest of the body comes later
        yield body[20:]

    async def post() -> tuple[float, httpx.Response]:
        headers = {"Authorization": f"Bearer {stack.token}", "Content-Type": "application/json"}
        async with httpx.AsyncClient(
            base_url=stack.url, headers=headers, trust_env=False, timeout=30
        ) as client:
            sent = time.monotonic()
            return sent, await client.post("/api/news", content=slow_body())

    sent, response = asyncio.run(post())  # the bot runs in this process: one monotonic clock
    assert response.status_code == 202, response.text
    outcomes = stack.wait_until(lambda: _outcomes_of(stack, news_id), timeout=30)
    assert outcomes, "the item traded on no venue"
    for outcome in outcomes:
        stamps = outcome["latency"]
        assert outcome["status"] == "ok", outcome
        # Stamped when the handler started: after the request left, before the body was all there.
        assert sent <= stamps["received"] <= stamps["parsed"] - BODY_PAUSE_S * 0.8
        order = ["received", "parsed", "decided", "sent", "acked", "filled"]
        assert [stamps[s] for s in order] == sorted(stamps[s] for s in order), stamps
        assert "published" not in stamps  # the webhook gave no publication time
        # The dashboard's per-stage view counts from receipt too.
        assert outcome["latency_ms"]["received"] == 0


class AnnouncementFeed:
    """A local WebSocket feed sending one exchange announcement as such relays do."""

    def __init__(self, message: dict[str, Any]) -> None:
        self.message = message
        self.sent = asyncio.Event()

    async def handler(self, ws: ServerConnection) -> None:
        await ws.send(json.dumps(self.message))
        self.sent.set()
        await ws.wait_closed()


def test_a_feed_items_publication_to_fill_time_is_on_api_stats(flat_stack: RunningStack) -> None:
    stack = flat_stack
    published = datetime.now(UTC) - timedelta(seconds=2)  # the exchange posted it 2 s before we read it
    message = {
        "id": uuid.uuid4().hex,
        "url": "https://www.binance.com/en/support/announcement/x",
        "title": "Binance Will List Avalanche (AVAX)",
        "serverTime": int(published.timestamp() * 1000),
        "exchange": "Binance",
    }
    feed = AnnouncementFeed(message)

    async def deliver() -> None:
        async with serve(feed.handler, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            source = WebSocketSource(
                f"ws://127.0.0.1:{port}/",
                stack.bot.submit_news,
                preset="announcements",
                name="announcements",
                backoff=Backoff(0.05, 0.2),
            )
            await source.start()
            try:
                await asyncio.wait_for(feed.sent.wait(), 10)
                deadline = time.monotonic() + 30
                while source.delivered < 1 and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
            finally:
                await source.stop()

    stack.run(deliver(), timeout=60)
    news_id = next(
        n["id"] for n in stack.run(stack.bot.journal.recent_news(50)) if n["title"] == message["title"]
    )
    outcomes = stack.wait_until(lambda: _outcomes_of(stack, news_id), timeout=30)
    assert outcomes and all(o["status"] == "ok" for o in outcomes), outcomes
    for outcome in outcomes:
        stamps = outcome["latency"]
        assert stamps["published"] < stamps["received"] < stamps["filled"]
        assert 1.9 <= stamps["received"] - stamps["published"] <= 10  # publication, then our receipt
    with stack.api() as api:
        summary = api.get("/api/stats").json()["summary"]
        metrics = api.get("/metrics").text
    assert 'newstrader_stage_latency_seconds_count{stage="published_to_filled"' in metrics
    assert summary["published_to_fill_samples"] >= len(outcomes)
    assert summary["published_to_fill_ms_p50"] >= 1900
    assert summary["news_to_fill_ms_p50"] is not None and summary["news_to_fill_ms_p50"] < 1900


@pytest.mark.parametrize(
    ("headline", "coin", "sign"),
    [
        ("Bitcoin crashes below 90k", "BTC", -1),
        ("XRP surges 20% as ETF inflows pour in", "XRP", 1),
        ("Ripple lawsuit: SEC drops appeal, XRP surges", "XRP", 1),
    ],
)
def test_the_issues_three_headlines_trade(
    flat_stack: RunningStack, headline: str, coin: str, sign: int
) -> None:
    """The headlines issue 18 opened with, through the webhook of a running bot: each opens its
    coin on the exchanges (the simulator's truth) on the side the headline calls."""
    stack = flat_stack
    with stack.api() as api:
        answer = api.post(
            "/api/news", params={"wait": 30}, json={"title": f"{headline} ({uuid.uuid4().hex[:6]})"}
        )
        accepted = answer.json()
    assert answer.status_code == 200 and accepted["done"], accepted  # ?wait: answered with the outcomes
    assert accepted["signal"] is not None, accepted
    assert accepted["signal"]["coin"] == coin and accepted["outcome"] == "traded", accepted
    assert accepted["signal"]["why"][-1].startswith("decided by"), accepted["signal"]["why"]
    held = stack.wait_until(
        lambda: {v: s for (v, c), s in stack.exchange_positions().items() if c == coin and s != 0}, 20
    )
    assert set(held) == {"hyperliquid", "aster"}, held
    assert all((size > 0) == (sign > 0) for size in held.values()), held
