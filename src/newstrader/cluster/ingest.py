"""`newstrader ingest`: run the configured news sources and publish every item to the stream.

The sources are the bot's own (RSS, WebSocket, replay); each item goes to JetStream with its
news id as ``Nats-Msg-Id``, so a copy (an ingest restarted on the same feed, two ingests on one
feed) is dropped by the server. The bots read the stream (`[bus] url`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal as signals
import sys
from pathlib import Path

import structlog

from newstrader.cluster.stream import NewsStream, Published
from newstrader.config import ConfigError, Settings, load_settings
from newstrader.domain import NewsItem

log = structlog.get_logger("newstrader.ingest")


class Ingest:
    """Sources → stream. `publish` is also the way in for callers with items of their own."""

    def __init__(self, settings: Settings) -> None:
        if not settings.bus.url:
            raise ConfigError("bus.url", 'required by ingest (e.g. "nats://127.0.0.1:4222")')
        bus = settings.bus
        self.stream = NewsStream(
            bus.url, stream=bus.stream, subject=bus.subject, duplicate_window_s=bus.duplicate_window_s
        )
        from newstrader.news.sources import build_sources

        self.sources = build_sources(settings.news, self.publish)
        self.published = 0
        self.duplicates = 0

    async def start(self) -> None:
        await self.stream.connect()
        for source in self.sources:
            await source.start()
        log.info("ingest_started", sources=len(self.sources), stream=self.stream.stream)

    async def stop(self) -> None:
        for source in self.sources:
            with contextlib.suppress(Exception):
                await source.stop()
        await self.stream.close()

    async def publish(self, item: NewsItem) -> Published:
        """Publish one item (acknowledged by the server before this returns)."""
        answer = await self.stream.publish(item)
        if answer.duplicate:
            self.duplicates += 1
        else:
            self.published += 1
        log.info(
            "news_published", news_id=item.id, source=item.source, seq=answer.seq, duplicate=answer.duplicate
        )
        return answer


async def _serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signals.SIGINT, signals.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    ingest = Ingest(settings)
    await ingest.start()
    try:
        await stop.wait()
    finally:
        await ingest.stop()


def run_ingest(config_path: Path) -> int:
    """`newstrader ingest --config C`; the exit code (2 for a bad config, 1 for no stream)."""
    from newstrader.cluster.stream import StreamError
    from newstrader.logging_setup import configure_logging

    configure_logging()
    try:
        settings = load_settings(config_path)
        Ingest(settings)  # the config problems, before anything connects
    except ConfigError as exc:
        print(f"newstrader ingest: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(settings))
    except StreamError as exc:
        print(f"newstrader ingest: {exc}", file=sys.stderr)
        return 1
    return 0
