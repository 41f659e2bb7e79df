"""Hypothesis against the real `POST /api/news` route with the real pipeline and journal behind it:
never a 5xx, and every accepted (202) item is in the journal."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newstrader.domain import NewsItem, Signal
from newstrader.journal import Journal
from newstrader.news.parser import Parser
from newstrader.news.pipeline import NewsDecision, Pipeline, PipelineSettings

TOKEN = "test-token"


class NewsDesk:
    """What the web app's news route uses of a bot: a journal, a bus, no venues and `accept_news`."""

    def __init__(self, pipeline: Pipeline, journal: Journal) -> None:
        from newstrader.bot import Bus

        self.pipeline = pipeline
        self.journal = journal
        self.bus = Bus()
        self.venues: dict[str, Any] = {}

    async def accept_news(self, item: NewsItem) -> NewsDecision:
        return await self.pipeline.accept(item)


class Harness:
    def __init__(self, path: Path) -> None:
        from newstrader.web.app import create_app

        self.loop = asyncio.new_event_loop()
        self.journal: Journal = self.loop.run_until_complete(Journal.open(f"sqlite:///{path}"))

        async def act(signal: Signal) -> str:
            return "acted"

        self.pipeline = Pipeline(Parser(), self.journal, PipelineSettings(max_age_s=10**9), act)
        app = create_app(NewsDesk(self.pipeline, self.journal), token=TOKEN)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://127.0.0.1",
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )

    def post(self, content: bytes) -> httpx.Response:
        response: httpx.Response = self.loop.run_until_complete(
            self.client.post("/api/news", content=content)
        )
        return response

    def close(self) -> None:
        self.loop.run_until_complete(self.pipeline.drain(10))  # executions behind the 202s
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(self.journal.close())
        self.loop.close()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(tmp_path_factory.mktemp("webhook-http") / "journal.db")
    yield h
    h.close()


_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40))
_value = st.one_of(
    _scalar,
    st.sampled_from(["long", "short", "sell", "BTC", "pepe", "", "2025-01-01T00:00:00Z", "\x00"]),
    st.lists(_scalar, max_size=3),
)
_objects = st.dictionaries(
    st.sampled_from(["title", "body", "source", "url", "id", "published_at", "coin", "side", "x"]),
    _value,
    max_size=8,
).map(lambda d: json.dumps(d).encode())
_titled = st.fixed_dictionaries(
    {"title": st.text(min_size=1, max_size=200)},
    optional={"coin": st.sampled_from(["BTC", "eth", "NOPE"]), "side": st.sampled_from(["long", "sell"])},
).map(lambda d: json.dumps(d).encode())
_junk = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda v: json.dumps(v).encode(), _value),
    st.just(b'{"title": "' + b"x" * 70_000 + b'"}'),  # over the 64 KiB limit
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(_objects, _titled, _junk))
def test_webhook_never_5xx_and_accepted_items_are_journaled(harness: Harness, content: bytes) -> None:
    response = harness.post(content)
    assert response.status_code in (202, 413, 422), response.text
    if response.status_code == 202:
        payload = response.json()
        assert payload["reason"]
        assert harness.loop.run_until_complete(harness.journal.news_seen(payload["news_id"]))
    else:
        assert response.json().get("detail"), "a rejection says why"


def test_tradingview_style_alert_is_used_as_is(harness: Harness) -> None:
    response = harness.post(
        json.dumps({"title": "TV: BTC breakout", "coin": "BTC", "side": "buy", "id": "tv-77"}).encode()
    )
    assert response.status_code == 202
    payload: dict[str, Any] = response.json()
    assert payload["news_id"] == "tv-77"
    assert payload["signal"]["coin"] == "BTC" and payload["signal"]["side"] == "long"
