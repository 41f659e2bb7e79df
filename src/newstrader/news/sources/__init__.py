"""News sources: RSS/Atom polling, a WebSocket JSON feed, JSONL replay (the webhook is the web app's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from newstrader.news.sources.base import Backoff, Source, Submit


def _get(section: Any, key: str, default: Any = None) -> Any:
    value = section.get(key, default) if isinstance(section, dict) else getattr(section, key, default)
    return default if value is None else value


def build_sources(news: Any, submit: Submit, journal: Any = None) -> list[Source]:
    """One source per `[[news.rss]]`, `[[news.websocket]]` and `[[news.replay]]` entry."""
    from newstrader.news.sources.replay import ReplaySource
    from newstrader.news.sources.rss import RssSource
    from newstrader.news.sources.websocket import WebSocketSource

    sources: list[Source] = []
    for cfg in _get(news, "rss", []):
        url = str(_get(cfg, "url"))
        sources.append(
            RssSource(
                url,
                submit,
                interval_s=float(_get(cfg, "interval_s", 60.0)),
                name=_get(cfg, "name"),
                journal=journal,
            )
        )
    for cfg in _get(news, "websocket", []):
        sources.append(
            WebSocketSource(
                str(_get(cfg, "url")),
                submit,
                fields=dict(_get(cfg, "fields", {})),
                name=_get(cfg, "name"),
                preset=_get(cfg, "preset"),
            )
        )
    for cfg in _get(news, "replay", []):
        sources.append(ReplaySource(Path(_get(cfg, "path")), submit, speed=float(_get(cfg, "speed", 1.0))))
    return sources


__all__ = ["Backoff", "Source", "Submit", "build_sources"]
