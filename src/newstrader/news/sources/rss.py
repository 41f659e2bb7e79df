"""RSS/Atom polling: conditional GETs (ETag / Last-Modified), each entry delivered once, ever.

"Once" survives restarts: before delivering, the entry's stable id is looked up in the
journal (`news_seen`), so a restarted bot does not replay yesterday's feed.
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import time
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import feedparser
import httpx
import structlog

from newstrader.domain import NewsItem
from newstrader.news.sources.base import Backoff, Source, Submit

log = structlog.get_logger("newstrader.news.rss")

_MAX_FEED_BYTES = 10 * 1024 * 1024
_SEEN_MEMORY = 20_000


class SeenNews(Protocol):
    """The journal as a feed asks it: was this id ever journaled (`journal.Journal.news_seen`)."""

    async def news_seen(self, news_id: str) -> bool: ...


def _entry_time(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if parsed:
            try:
                return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
            except (OverflowError, ValueError, TypeError):
                return None
    return None


class RssSource(Source):
    """Polls one feed every `interval_s`; an HTTP or parse failure backs off and retries."""

    kind = "rss"

    def __init__(
        self,
        url: str,
        submit: Submit,
        *,
        interval_s: float = 60.0,
        name: str | None = None,
        journal: SeenNews | None = None,
        timeout_s: float = 10.0,
        backoff: Backoff | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(name or f"rss:{urlsplit(url).netloc or url}", submit, backoff=backoff)
        self.url = url
        self.interval_s = interval_s
        self.journal = journal
        self.timeout_s = timeout_s
        self.etag: str | None = None
        self.last_modified: str | None = None
        self.polls = 0
        self.not_modified = 0
        self._client = client
        self._own_client = client is None
        self._seen: dict[str, None] = {}

    def item_id(self, entry: Any) -> str:
        """A stable id per entry: the feed's guid, else its link, else its title."""
        key = entry.get("id") or entry.get("link") or entry.get("title") or ""
        return "rss-" + hashlib.sha256(f"{self.url}\n{key}".encode()).hexdigest()[:24]

    async def poll(self) -> int:
        """One conditional GET; delivers new entries; returns how many were delivered."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=True)
        headers = {"User-Agent": "newstrader/0.1 (+rss)"}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        response = await self._client.get(self.url, headers=headers)
        received = time.monotonic()  # the edge: every item of this poll arrived now
        self.polls += 1
        if response.status_code == 304:
            self.not_modified += 1
            return 0
        response.raise_for_status()
        if len(response.content) > _MAX_FEED_BYTES:
            raise ValueError(f"feed larger than {_MAX_FEED_BYTES} bytes")
        # Parsing a big feed is CPU work: keep it off the event loop the orders run on.
        feed = await asyncio.to_thread(feedparser.parse, response.content)
        if feed.get("bozo") and not feed.entries:
            raise ValueError(f"unparseable feed: {feed.get('bozo_exception')!r}")
        # Remember the validators only once the body was read and parsed.
        self.etag = response.headers.get("ETag") or self.etag
        self.last_modified = response.headers.get("Last-Modified") or self.last_modified
        delivered = 0
        # Feeds list newest first; deliver oldest first so the news keeps its order.
        for entry in reversed(feed.entries):
            title = (entry.get("title") or "").strip()
            if not title:
                continue
            news_id = self.item_id(entry)
            if news_id in self._seen:
                continue
            if self.journal is not None and await self.journal.news_seen(news_id):
                self._remember(news_id)
                continue
            item = NewsItem(
                id=news_id,
                title=title,
                source=self.name,
                body=(entry.get("summary") or "")[:65536],
                url=entry.get("link"),
                published_at=_entry_time(entry),
                received_mono=received,
            )
            await self.deliver(item)
            self._remember(news_id)
            delivered += 1
        if delivered:
            log.info("rss_polled", source=self.name, delivered=delivered, entries=len(feed.entries))
        return delivered

    def _remember(self, news_id: str) -> None:
        self._seen[news_id] = None
        if len(self._seen) > _SEEN_MEMORY:
            self._seen.pop(next(iter(self._seen)))

    async def run_once(self) -> None:
        first = True
        while True:
            await self.poll()
            if first:
                self.connected()
                first = False
            if await self.pause(self.interval_s):
                return

    async def close(self) -> None:
        if self._client is not None and self._own_client:
            await self._client.aclose()
            self._client = None
