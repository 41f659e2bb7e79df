"""The news stream: NATS JetStream carries every item from `newstrader ingest` to the bots.

- Publishing sets ``Nats-Msg-Id`` to the news id, so the server drops a copy published again
  within the stream's duplicate window (an ingest restart replaying a feed).
- Each account has its own durable pull consumer (``acct-<venue>``): whoever owns the account
  reads it, and a new owner goes on where the old one stopped. An item is acked only after its
  outcome is journaled; an item fetched by an owner that died is redelivered after `ack_wait_s`,
  and the journal's news-id dedupe (or its resume of interrupted items) makes that harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import nats
import structlog
from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from newstrader.domain import NewsItem, Side

log = structlog.get_logger("newstrader.cluster.stream")

DEFAULT_STREAM: Final = "NEWSTRADER_NEWS"
DEFAULT_SUBJECT: Final = "newstrader.news"
_DURABLE_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")

Handler = Callable[[NewsItem], Awaitable[Any]]


class StreamError(Exception):
    """The news stream cannot be used (server unreachable, bad message)."""


def item_to_json(item: NewsItem) -> bytes:
    """The wire form of an item: JSON with ISO timestamps."""
    return json.dumps(
        {
            "id": item.id,
            "title": item.title,
            "source": item.source,
            "body": item.body,
            "url": item.url,
            "published_at": None if item.published_at is None else item.published_at.isoformat(),
            "received_at": item.received_at.isoformat(),
            "coin": item.coin,
            "side": None if item.side is None else item.side.value,
        },
        separators=(",", ":"),
    ).encode()


def item_from_json(data: bytes) -> NewsItem:
    """Parse the wire form; a malformed message is a StreamError naming what is wrong."""
    try:
        raw = json.loads(data)
        published = raw.get("published_at")
        return NewsItem(
            id=str(raw["id"]),
            title=str(raw["title"]),
            source=str(raw.get("source") or "stream"),
            body=str(raw.get("body") or ""),
            url=raw.get("url"),
            published_at=None if published is None else datetime.fromisoformat(published),
            received_at=datetime.fromisoformat(raw["received_at"]),
            coin=raw.get("coin"),
            side=None if raw.get("side") is None else Side(raw["side"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise StreamError(f"not a news item: {type(exc).__name__}: {exc}") from None


def durable_name(venue: str) -> str:
    """The durable consumer of one account."""
    return "acct-" + _DURABLE_UNSAFE.sub("_", venue)


@dataclass(frozen=True, slots=True)
class Published:
    """The server's answer to one publish: its sequence, and whether it was a dropped copy."""

    seq: int
    duplicate: bool


class NewsStream:
    """A connection to the stream: publish items, or consume them through a durable consumer."""

    def __init__(
        self,
        url: str,
        *,
        stream: str = DEFAULT_STREAM,
        subject: str = DEFAULT_SUBJECT,
        duplicate_window_s: float = 3600.0,
        ack_wait_s: float = 10.0,
    ) -> None:
        self.url = url
        self.stream = stream
        self.subject = subject
        self.duplicate_window_s = duplicate_window_s
        self.ack_wait_s = ack_wait_s
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None

    async def connect(self) -> None:
        """Connect and make sure the stream exists (created on first use, file storage)."""
        try:
            self._nc = await nats.connect(self.url, connect_timeout=5, max_reconnect_attempts=-1)
        except Exception as exc:
            raise StreamError(f"cannot reach the news stream at {self.url}: {exc}") from exc
        self._js = self._nc.jetstream()
        config = StreamConfig(
            name=self.stream,
            subjects=[self.subject],
            storage=StorageType.FILE,
            duplicate_window=self.duplicate_window_s,
        )
        try:
            await self._js.stream_info(self.stream)
        except NotFoundError:
            await self._js.add_stream(config)

    async def close(self) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
            self._nc = None

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise StreamError("the news stream is not connected")
        return self._js

    async def publish(self, item: NewsItem) -> Published:
        """Publish one item with its news id as ``Nats-Msg-Id`` (the server dedupes on it)."""
        ack = await self.js.publish(self.subject, item_to_json(item), headers={"Nats-Msg-Id": item.id})
        return Published(seq=int(ack.seq), duplicate=bool(ack.duplicate))

    async def consume(self, venue: str, handle: Handler, stop: asyncio.Event) -> None:
        """Feed the account's items to `handle` one at a time, acking each after it returned,
        until `stop` is set. A `handle` that raises leaves the item unacked: it comes again."""
        durable = durable_name(venue)
        subscription = await self.js.pull_subscribe(
            self.subject,
            durable=durable,
            stream=self.stream,
            config=ConsumerConfig(
                durable_name=durable,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=self.ack_wait_s,
                max_ack_pending=64,
            ),
        )
        try:
            while not stop.is_set():
                try:
                    messages = await subscription.fetch(batch=1, timeout=0.5)
                except NatsTimeout:
                    continue
                for msg in messages:
                    try:
                        item = item_from_json(msg.data)
                    except StreamError as exc:
                        log.error("stream_bad_message", venue=venue, error=str(exc))
                        await msg.term()  # never redelivered: it can never parse
                        continue
                    await handle(item)
                    await msg.ack_sync()
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def lag(self, venue: str) -> int | None:
        """Items of the account not yet acked (waiting + delivered-unacked); None if no consumer yet."""
        try:
            info = await self.js.consumer_info(self.stream, durable_name(venue))
        except NotFoundError:
            return None
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)
