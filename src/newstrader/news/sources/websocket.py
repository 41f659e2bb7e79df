"""A generic WebSocket JSON news feed, as news terminals stream it, with a configurable field map.

`fields` maps our names (title, id, url, body, source, published_at, coin, side) to the
message's keys; a dotted key ("data.headline") reaches into nested objects. A message may
be one object or a list of them; anything without a title is ignored. `preset` names the
field map of a feed news traders use (`PRESETS`); `fields` given too override the preset's.

Each message is stamped `received_mono` the moment its bytes arrive, before JSON decoding:
the latency ledger of every item starts there.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import structlog
from websockets.asyncio.client import connect

from newstrader.domain import NewsItem, Side
from newstrader.news.sources.base import Backoff, Source, Submit

log = structlog.get_logger("newstrader.news.websocket")

DEFAULT_FIELDS = {
    "title": "title",
    "id": "id",
    "url": "url",
    "body": "body",
    "source": "source",
    "published_at": "published_at",
    "coin": "coin",
    "side": "side",
}
_MAX_MESSAGE = 1024 * 1024

# Message formats of the feeds news traders stream, each tested with a recorded message
# (tests/news/test_sources.py); sources noted per preset.
PRESETS: dict[str, dict[str, str]] = {
    # Tree of Alpha (wss://news.treeofalpha.com/ws): {"_id", "title", "body", "source", "url",
    # "time": epoch ms, "coin", "suggestions": [...]}, as read by plutus-terminal's TreeNews.
    "treeofalpha": {
        "title": "title",
        "id": "_id",
        "url": "url",
        "body": "body",
        "source": "source",
        "published_at": "time",
    },
    # BWEnews (wss://bwenews-api.bwe-ws.com/ws): {"source_name", "news_title", "coins_included",
    # "url", "timestamp": epoch s}, as read by public Telegram relays of the feed.
    "bwenews": {
        "title": "news_title",
        "id": "",
        "url": "url",
        "body": "",
        "source": "source_name",
        "published_at": "timestamp",
    },
    # Exchange-announcement relays (e.g. coinixy's listing socket): {"id", "url", "title",
    # "serverTime": epoch ms, "exchange"}: "Binance Will List Lido DAO (LDO)".
    "announcements": {
        "title": "title",
        "id": "id",
        "url": "url",
        "body": "",
        "source": "exchange",
        "published_at": "serverTime",
    },
}


def _lookup(message: Any, path: str) -> Any:
    if not path:
        return None
    value = message
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def parse_time(value: Any) -> datetime | None:
    """Epoch seconds or milliseconds, or an ISO-8601 string; None when it is neither."""
    if value is None or isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float):
            seconds = float(value) / 1000.0 if value > 1e11 else float(value)
            return datetime.fromtimestamp(seconds, UTC)
        if isinstance(value, str) and value.strip():
            text = value.strip().replace("Z", "+00:00")
            parsed = datetime.fromisoformat(text)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


class WebSocketSource(Source):
    """Connects, reads JSON messages, delivers news items; reconnects with backoff when dropped."""

    kind = "websocket"

    def __init__(
        self,
        url: str,
        submit: Submit,
        *,
        fields: dict[str, str] | None = None,
        name: str | None = None,
        subscribe: str | dict[str, Any] | None = None,  # sent once connected; a dict as JSON
        backoff: Backoff | None = None,
        preset: str | None = None,
    ) -> None:
        super().__init__(name or f"ws:{url.split('://', 1)[-1].split('/', 1)[0]}", submit, backoff=backoff)
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"preset: unknown websocket preset {preset!r}; one of {', '.join(PRESETS)}")
        self.url = url
        self.fields = {**DEFAULT_FIELDS, **(PRESETS[preset] if preset else {}), **(fields or {})}
        self.subscribe = subscribe
        self.ignored = 0

    def to_item(self, message: Any, received_mono: float | None = None) -> NewsItem | None:
        """One message → a NewsItem, or None when it carries no title."""
        if not isinstance(message, dict):
            return None
        title = _lookup(message, self.fields["title"])
        if not isinstance(title, str) or not title.strip():
            return None
        title = title.strip()
        source = _lookup(message, self.fields["source"])
        source = f"{self.name}/{source}" if isinstance(source, str) and source else self.name
        url = _lookup(message, self.fields["url"])
        url = url if isinstance(url, str) else None
        raw_id = _lookup(message, self.fields["id"])
        if raw_id is not None and not isinstance(raw_id, dict | list):
            news_id = NewsItem.make_id(self.name, f"id:{raw_id}")
        else:
            news_id = NewsItem.make_id(self.name, title, url)
        body = _lookup(message, self.fields["body"])
        coin = _lookup(message, self.fields["coin"])
        side_text = _lookup(message, self.fields["side"])
        side = None
        if isinstance(side_text, str) and side_text.strip().lower() in ("long", "buy", "short", "sell"):
            side = Side.LONG if side_text.strip().lower() in ("long", "buy") else Side.SHORT
        return NewsItem(
            id=news_id,
            title=title,
            source=source,
            body=body[:65536] if isinstance(body, str) else "",
            url=url,
            published_at=parse_time(_lookup(message, self.fields["published_at"])),
            received_mono=received_mono,
            coin=coin.strip() if isinstance(coin, str) and coin.strip() and side else None,
            side=side if isinstance(coin, str) and coin.strip() else None,
        )

    async def run_once(self) -> None:
        async with connect(self.url, max_size=_MAX_MESSAGE, open_timeout=10, ping_interval=20) as ws:
            if self.subscribe is not None:
                payload = self.subscribe if isinstance(self.subscribe, str) else json.dumps(self.subscribe)
                await ws.send(payload)
            self.connected()
            async for raw in ws:
                received = time.monotonic()
                try:
                    message = json.loads(raw)
                except (ValueError, TypeError):
                    self.ignored += 1
                    continue
                for one in message if isinstance(message, list) else [message]:
                    item = self.to_item(one, received)
                    if item is None:
                        self.ignored += 1
                        continue
                    await self.deliver(item)
