"""The webhook body model: clear rejections, and every accepted body reaches the journal."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from newstrader.domain import NewsItem, Side, Signal
from newstrader.journal import Journal
from newstrader.news.parser import Parser
from newstrader.news.pipeline import Pipeline, PipelineSettings
from newstrader.news.webhook_model import WebhookNews


def test_minimal_and_full_bodies() -> None:
    item = WebhookNews.model_validate({"title": "  Coinbase will list SUI "}).to_news_item()
    assert (item.title, item.source, item.coin, item.side) == (
        "Coinbase will list SUI",
        "webhook",
        None,
        None,
    )
    assert item.id == NewsItem.make_id("webhook", "Coinbase will list SUI")  # a retry maps to the same id
    full = WebhookNews.model_validate(
        {
            "title": "TV alert",
            "body": "x",
            "source": "tradingview",
            "url": "https://example.com/a",
            "id": "tv-1",
            "published_at": "2025-01-02T03:04:05Z",
            "coin": "btc",
            "side": "SELL",
            "extra": "ignored",
        }
    ).to_news_item()
    assert (full.id, full.source, full.coin, full.side) == ("tv-1", "tradingview", "btc", Side.SHORT)
    assert full.published_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": "   "}, "title"),
        ({"title": 5}, "title"),
        ({"title": "x" * 2001}, "title"),
        ({"title": "x", "coin": "BTC"}, "coin and side go together"),
        ({"title": "x", "side": "long"}, "coin and side go together"),
        ({"title": "x", "coin": "BTC", "side": "up"}, "side"),
        ({"title": "x", "published_at": "yesterday"}, "published_at"),
        ({"title": "x", "published_at": "1999-01-01T00:00:00Z"}, "published_at"),
        ({"title": "x", "id": "i" * 201}, "id"),
    ],
)
def test_bad_bodies_say_what_is_wrong(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        WebhookNews.model_validate(body)
    assert field in str(info.value)


class _Loop:
    """One event loop + journal + pipeline shared by every hypothesis example (opening is slow)."""

    def __init__(self, path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.journal: Journal = self.loop.run_until_complete(Journal.open(f"sqlite:///{path}"))
        self.acted: list[Signal] = []

        async def act(signal: Signal) -> str:
            self.acted.append(signal)
            return "acted"

        self.pipeline = Pipeline(Parser(), self.journal, PipelineSettings(max_age_s=10**9), act)

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self.journal.close())
        self.loop.close()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Loop]:
    runner = _Loop(tmp_path_factory.mktemp("webhook") / "journal.db")
    yield runner
    runner.close()


_json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=60)
)
_field_values = st.one_of(
    _json_scalars,
    st.sampled_from(["long", "short", "BUY", "sell", "BTC", "$eth", "kPEPE", "", " ", "\x00"]),
    st.sampled_from(["2025-01-01T00:00:00Z", "2025-06-01 12:00:00", "1e99", "2100-01-01T00:00:00"]),
    st.lists(_json_scalars, max_size=3),
    st.dictionaries(st.text(max_size=5), _json_scalars, max_size=2),
)
_bodies = st.dictionaries(
    st.sampled_from(["title", "body", "source", "url", "id", "published_at", "coin", "side", "other"]),
    _field_values,
    max_size=8,
) | st.fixed_dictionaries(
    {"title": st.text(min_size=1, max_size=300)},
    optional={
        "coin": st.sampled_from(["BTC", "eth", "pepe", "NOPE"]),
        "side": st.sampled_from(["long", "short", "buy", "sell"]),
        "id": st.text(min_size=1, max_size=40),
        "body": st.text(max_size=200),
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_bodies)
def test_fuzz_every_accepted_body_is_journaled(shared: _Loop, body: dict[str, Any]) -> None:
    raw = json.dumps(body)  # the web layer hands us parsed JSON; keep to what JSON can carry
    try:
        model = WebhookNews.model_validate_json(raw)
    except ValidationError as exc:
        assert exc.errors(), "a rejection always says why"
        return
    item = model.to_news_item()
    decision = shared.run(shared.pipeline.submit(item))
    assert decision.news_id == item.id
    assert decision.reason
    assert shared.run(shared.journal.news_seen(item.id))
    rows = {row["id"]: row for row in shared.run(shared.journal.recent_news(5))}
    if item.id in rows:  # a redelivered id keeps its first outcome
        assert rows[item.id]["outcome"] in {"traded", "ignored", "skipped", "duplicate", "failed"}
