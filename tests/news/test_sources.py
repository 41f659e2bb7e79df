"""Each source against a real local server, including a server that drops and comes back."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve

from newstrader.domain import NewsItem, Side, Signal, utcnow
from newstrader.journal import Journal
from newstrader.news.parser import Parser
from newstrader.news.pipeline import Pipeline, PipelineSettings
from newstrader.news.sources import Backoff, build_sources
from newstrader.news.sources.replay import ReplayFileError, ReplaySource, read_replay_file
from newstrader.news.sources.rss import RssSource
from newstrader.news.sources.websocket import WebSocketSource

FAST = Backoff(initial=0.05, maximum=0.2)


async def until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `condition` with a deadline (never a fixed sleep as synchronisation)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


# --------------------------------------------------------------------------- RSS


def rss_xml(entries: list[tuple[str, str]]) -> bytes:
    now = format_datetime(utcnow())
    items = "".join(
        f"<item><title>{title}</title><guid>{guid}</guid><link>https://news.example/{guid}</link>"
        f"<pubDate>{now}</pubDate><description>about {title}</description></item>"
        for guid, title in reversed(entries)  # newest first, as feeds do
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode()
    )


class FeedServer:
    """A real HTTP server (own thread) serving one feed with ETag and Last-Modified."""

    def __init__(self, port: int = 0) -> None:
        self.body = rss_xml([])
        self.requests = 0
        self.not_modified = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                body = owner.body
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                last_modified = "Wed, 01 Jan 2025 00:00:00 GMT"
                if self.headers.get("If-None-Match") == etag:
                    owner.not_modified += 1
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", last_modified)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/feed.xml"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class Collector:
    def __init__(self) -> None:
        self.items: list[NewsItem] = []

    async def __call__(self, item: NewsItem) -> None:
        self.items.append(item)


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    j = await Journal.open(f"sqlite:///{tmp_path / 'journal.db'}")
    yield j
    await j.close()


async def test_rss_conditional_get_once_each_and_reconnect(journal: Journal) -> None:
    acted: list[Signal] = []

    async def act(signal: Signal) -> str:
        acted.append(signal)
        return "acted"

    pipeline = Pipeline(Parser(), journal, PipelineSettings(), act)
    server = FeedServer()
    server.body = rss_xml([("g1", "Coinbase will list SUI"), ("g2", "Bitcoin trades flat")])
    source = RssSource(server.url, pipeline.submit, interval_s=0.05, journal=journal, backoff=FAST)
    await source.start()
    try:
        await until(lambda: source.delivered == 2, what="first two entries")
        await until(lambda: server.not_modified >= 3, what="304s for an unchanged feed")
        assert source.etag and source.last_modified
        assert source.delivered == 2  # polling an unchanged feed delivers nothing new

        server.body = rss_xml(
            [("g1", "Coinbase will list SUI"), ("g2", "Bitcoin trades flat"), ("g3", "SEC sues Aave")]
        )
        await until(lambda: source.delivered == 3, what="the new entry")

        # The server drops: the source backs off and retries until it is back on the same port.
        port = server.port
        server.stop()
        failures_before = source.failures
        await until(lambda: source.failures >= failures_before + 2, what="failed polls while down")
        server = FeedServer(port)
        server.body = rss_xml(
            [
                ("g1", "Coinbase will list SUI"),
                ("g2", "Bitcoin trades flat"),
                ("g3", "SEC sues Aave"),
                ("g4", "Robinhood lists WIF"),
            ]
        )
        await until(lambda: source.delivered == 4, what="entry after the server came back")
        assert source.connects >= 2
    finally:
        await source.stop()

    rows = {row["title"]: row for row in await journal.recent_news(10)}
    assert set(rows) == {
        "Coinbase will list SUI",
        "Bitcoin trades flat",
        "SEC sues Aave",
        "Robinhood lists WIF",
    }
    assert rows["Bitcoin trades flat"]["outcome"] == "ignored"
    assert [(s.coin, s.side) for s in acted] == [("SUI", Side.LONG), ("AAVE", Side.SHORT), ("WIF", Side.LONG)]

    # A restart: a new source with an empty memory, the same journal: nothing is delivered again.
    again = RssSource(server.url, pipeline.submit, interval_s=0.05, journal=journal, backoff=FAST)
    await again.start()
    try:
        await until(lambda: again.polls >= 2, what="polls after restart")
        assert again.delivered == 0
    finally:
        await again.stop()
        server.stop()


async def test_rss_bad_feed_backs_off_and_recovers() -> None:
    server = FeedServer()
    server.body = b"this is not a feed <<<"
    collector = Collector()
    source = RssSource(server.url, collector, interval_s=0.05, backoff=FAST)
    await source.start()
    try:
        await until(lambda: source.failures >= 2, what="failures on a broken feed")
        assert "unparseable" in (source.last_error or "")
        server.body = rss_xml([("a", "Binance will list TIA")])
        await until(lambda: len(collector.items) == 1, what="recovery")
        assert collector.items[0].url == "https://news.example/a"
        assert collector.items[0].published_at is not None
    finally:
        await source.stop()
        server.stop()


# --------------------------------------------------------------------------- WebSocket


class WsFeed:
    """A local WebSocket news feed; "DROP" on the queue closes the current connection."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.connections = 0
        self.server: Server | None = None
        self.port = 0

    async def handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        closed = asyncio.ensure_future(ws.wait_closed())
        try:
            while True:
                getter = asyncio.ensure_future(self.queue.get())
                await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():  # the client went away
                    getter.cancel()
                    return
                message = getter.result()
                if message == "DROP":
                    await ws.close()
                    return
                await ws.send(message if isinstance(message, str) else json.dumps(message))
        finally:
            closed.cancel()

    async def start(self, port: int = 0) -> None:
        self.server = await serve(self.handler, "127.0.0.1", port)
        self.port = next(iter(self.server.sockets)).getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def test_websocket_field_map_and_reconnect() -> None:
    feed = WsFeed()
    await feed.start()
    collector = Collector()
    source = WebSocketSource(
        f"ws://127.0.0.1:{feed.port}/news",
        collector,
        fields={"title": "headline", "id": "id", "url": "link", "published_at": "time", "body": "data.text"},
        name="terminal",
        backoff=FAST,
    )
    await source.start()
    try:
        await until(lambda: feed.connections == 1, what="connection")
        feed.queue.put_nowait(
            {"headline": "Coinbase will list SUI", "id": 7, "link": "https://x/7", "time": 1735689600000}
        )
        feed.queue.put_nowait([{"headline": "SEC sues Aave", "id": 8}, {"headline": "LONG BTC", "id": 9}])
        feed.queue.put_nowait("not json")
        feed.queue.put_nowait({"no": "headline"})
        feed.queue.put_nowait({"headline": "TV alert", "id": 10, "coin": "ETH", "side": "sell"})
        await until(lambda: len(collector.items) == 4, what="four items")
        assert source.ignored == 2
        first = collector.items[0]
        assert (first.title, first.url, first.source) == ("Coinbase will list SUI", "https://x/7", "terminal")
        assert first.published_at is not None and first.published_at.year == 2025
        assert first.id == NewsItem.make_id("terminal", "id:7")
        assert (collector.items[3].coin, collector.items[3].side) == ("ETH", Side.SHORT)

        # The server drops the connection: the client reconnects by itself.
        feed.queue.put_nowait("DROP")
        await until(lambda: feed.connections == 2, what="reconnect after drop")
        feed.queue.put_nowait({"headline": "Robinhood lists WIF", "id": 11})
        await until(lambda: len(collector.items) == 5, what="item after reconnect")

        # The whole server goes away and comes back on the same port.
        port = feed.port
        feed.queue.put_nowait("DROP")
        await feed.stop()
        failures = source.failures
        await until(lambda: source.failures >= failures + 2, what="failed connects while down")
        await feed.start(port)
        await until(lambda: feed.connections == 3, what="reconnect after restart")
        feed.queue.put_nowait({"headline": "Binance will list TIA", "id": 12})
        await until(lambda: len(collector.items) == 6, what="item after restart")
        assert source.connects == 3
    finally:
        await source.stop()
        await feed.stop()


# Messages as each feed sends them. The announcement relay's is the example its README
# publishes (github.com/coinixy/CryptoNewListing); Tree of Alpha's and BWEnews's carry the keys
# their public clients read (plutus-terminal's TreeNews.format_news; askmark's BWE relay).
RECORDED = {
    "treeofalpha": {
        "_id": "1735689600123Binance",
        "title": "Binance Will List dogwifhat (WIF)",
        "body": "",
        "source": "Binance",
        "url": "https://www.binance.com/en/support/announcement/abc",
        "time": 1735689600123,
        "coin": "WIF",
        "suggestions": [{"coin": "WIF", "found": ["WIF"]}],
    },
    "bwenews": {
        "source_name": "BWENEWS",
        "news_title": "UPBIT LISTING: [Trading] New digital asset on KRW market (SUI)",
        "coins_included": ["SUI"],
        "url": "https://upbit.com/service_center/notice?id=4711",
        "timestamp": 1735689601,
    },
    "announcements": {
        "id": "b76eb4e952a94959afb5964c32ddbb7a",
        "url": "https://www.binance.com/en/support/announcement/b76eb4e952a94959afb5964c32ddbb7a",
        "title": "Binance Will List Lido DAO (LDO)",
        "serverTime": 1652079437647,
        "exchange": "Binance",
    },
}


@pytest.mark.parametrize("preset", sorted(RECORDED))
async def test_websocket_presets_read_each_feeds_recorded_message(preset: str) -> None:
    feed = WsFeed()
    await feed.start()
    collector = Collector()
    source = WebSocketSource(f"ws://127.0.0.1:{feed.port}/", collector, preset=preset, backoff=FAST)
    await source.start()
    try:
        await until(lambda: feed.connections == 1, what="connection")
        sent_at = time.monotonic()
        feed.queue.put_nowait(RECORDED[preset])
        await until(lambda: len(collector.items) == 1, what="the recorded message as an item")
    finally:
        await source.stop()
        await feed.stop()
    item = collector.items[0]
    message = RECORDED[preset]
    assert item.title == message.get("title", message.get("news_title"))
    assert item.url == message["url"]
    assert item.published_at is not None and item.published_at.year in (2022, 2025)
    assert item.received_mono is not None and item.received_mono >= sent_at  # stamped at the edge
    parsed = Parser().parse(item)
    expected = {
        "treeofalpha": ("WIF", Side.LONG),
        "bwenews": ("SUI", Side.LONG),
        "announcements": ("LDO", Side.LONG),
    }
    assert parsed.signal is not None and (parsed.signal.coin, parsed.signal.side) == expected[preset]


def test_an_unknown_websocket_preset_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="preset"):
        WebSocketSource("ws://127.0.0.1:1/", Collector(), preset="nope")


# --------------------------------------------------------------------------- replay


class FakeTime:
    """A monotonic clock that only moves when the replay sleeps on it."""

    def __init__(self) -> None:
        self.t = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def write_lines(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


ROWS = [
    {"t": 0, "title": "LONG BTC"},
    {"t": 2, "title": "Coinbase will list SUI"},
    {"t": 2, "title": "SEC sues Aave"},
    {"t": 5, "title": "TV alert", "coin": "ETH", "side": "short", "id": "tv-1"},
    {"t": 10, "title": "Bitcoin trades flat", "source": "desk"},
]


@pytest.mark.parametrize(
    ("speed", "expected"), [(1.0, [0, 2, 2, 5, 10]), (2.0, [0, 1, 1, 2.5, 5]), (0.5, [0, 4, 4, 10, 20])]
)
async def test_replay_keeps_order_and_scales_gaps(
    tmp_path: Path, speed: float, expected: list[float]
) -> None:
    fake = FakeTime()
    collector = Collector()
    source = ReplaySource(
        write_lines(tmp_path / "r.jsonl", ROWS), collector, speed=speed, clock=fake.clock, sleep=fake.sleep
    )
    await source.start()
    await source.wait()
    assert [i.title for i in collector.items] == [r["title"] for r in ROWS]
    assert [round(t - 100.0, 6) for t in source.sent_at] == expected
    assert (collector.items[3].coin, collector.items[3].side) == ("ETH", Side.SHORT)
    assert collector.items[4].source == "desk"
    assert all(i.published_at is not None for i in collector.items)  # stamped at replay time
    assert len({i.id for i in collector.items}) == len(ROWS)


async def test_replay_speed_zero_never_waits(tmp_path: Path) -> None:
    fake = FakeTime()
    collector = Collector()
    source = ReplaySource(
        write_lines(tmp_path / "r.jsonl", ROWS), collector, speed=0, clock=fake.clock, sleep=fake.sleep
    )
    await source.start()
    await source.wait()
    assert fake.sleeps == [] and len(collector.items) == len(ROWS)


async def test_replay_timing_from_published_at(tmp_path: Path) -> None:
    rows = [
        {"title": "a", "published_at": "2025-01-01T00:00:00Z"},
        {"title": "b", "published_at": "2025-01-01T00:00:30Z"},
        {"title": "c", "published_at": 1735689660},
    ]
    lines = read_replay_file(write_lines(tmp_path / "p.jsonl", rows))
    assert [line.offset_s for line in lines] == [0, 30, 60]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"title": "a"}\nnot json\n', ":2: not JSON"),
        ('{"t": 1}\n', ":1: needs a non-empty string 'title'"),
        ('{"title": "a", "t": -1}\n', "'t' must be seconds"),
        ('{"title": "a", "t": 5}\n{"title": "b", "t": 1}\n', "times go backwards"),
        ('{"title": "a", "side": "up", "coin": "BTC"}\n', "'side' must be long or short"),
    ],
)
def test_replay_bad_files_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ReplayFileError, match=message):
        read_replay_file(path)


def test_build_sources_from_settings(tmp_path: Path) -> None:
    from newstrader.config import NewsSettings

    replay = write_lines(tmp_path / "r.jsonl", ROWS)
    news = NewsSettings.model_validate(
        {
            "rss": [{"url": "http://127.0.0.1:1/feed", "interval_s": 5}],
            "websocket": [{"url": "ws://127.0.0.1:1/ws", "fields": {"title": "headline"}}],
            "replay": [{"path": str(replay), "speed": 3}],
        }
    )

    async def submit(item: NewsItem) -> None:
        return None

    rss, ws, rep = build_sources(news, submit)
    assert isinstance(rss, RssSource) and rss.interval_s == 5
    assert isinstance(ws, WebSocketSource) and ws.fields["title"] == "headline"
    assert isinstance(rep, ReplaySource) and rep.speed == 3


async def test_a_slow_trade_does_not_hold_up_news_on_other_coins(journal: Journal) -> None:
    feed = WsFeed()
    await feed.start()
    gate = asyncio.Event()
    acted: list[str] = []

    async def act(signal: Signal) -> str:
        acted.append(signal.coin)
        if signal.coin == "BTC":
            await gate.wait()  # a trade that takes its time
        return "acted"

    pipeline = Pipeline(Parser(), journal, PipelineSettings(), act)
    source = WebSocketSource(f"ws://127.0.0.1:{feed.port}", pipeline.submit, backoff=FAST)
    await source.start()
    try:
        await until(lambda: feed.connections == 1, what="connection")
        feed.queue.put_nowait({"title": "LONG BTC", "id": 1})
        feed.queue.put_nowait({"title": "LONG ETH", "id": 2})
        feed.queue.put_nowait({"title": "short btc 2x", "id": 3})
        # Coins are independent (either may act first); BTC's second signal waits for its first.
        await until(lambda: sorted(acted) == ["BTC", "ETH"], what="ETH acted while BTC is still trading")
        gate.set()
        await until(lambda: source.delivered == 3, what="all through")
        assert sorted(acted) == ["BTC", "BTC", "ETH"] and acted[-1] == "BTC"
    finally:
        gate.set()
        await source.stop()
        await feed.stop()
