"""News sources: RSS/Atom polling, a WebSocket JSON feed, JSONL replay (the webhook is the web app's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from newstrader.news.sources.base import Backoff, Source, Submit

if TYPE_CHECKING:
    from newstrader.config import NewsSettings
    from newstrader.news.sources.rss import SeenNews


def build_sources(news: NewsSettings, submit: Submit, journal: SeenNews | None = None) -> list[Source]:
    """One source per `[[news.rss]]`, `[[news.websocket]]` and `[[news.replay]]` entry."""
    from newstrader.news.sources.replay import ReplaySource
    from newstrader.news.sources.rss import RssSource
    from newstrader.news.sources.websocket import WebSocketSource

    sources: list[Source] = []
    for rss in news.rss:
        sources.append(RssSource(rss.url, submit, interval_s=rss.interval_s, name=rss.name, journal=journal))
    for ws in news.websocket:
        sources.append(
            WebSocketSource(ws.url, submit, fields=dict(ws.fields), name=ws.name, preset=ws.preset)
        )
    for replay in news.replay:
        sources.append(ReplaySource(replay.path, submit, speed=replay.speed))
    return sources


__all__ = ["Backoff", "Source", "Submit", "build_sources"]
