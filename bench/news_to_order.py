"""Webhook receipt → first order bytes on the socket, with the journal on.

The bot's own path from a headline to an order, measured end to end on this machine:
`POST /api/news` on the real web app (uvicorn on 127.0.0.1), the pipeline (parse, one
journal read for dedupe, the news record queued), the engine (fresh position and mark reads
from the venue, the order intent written durably to SQLite WAL with FULL sync), signing, and
the order request's last byte written to the venue's socket (httpcore's
`http11.send_request_body.complete` trace event). The venues are the simulator processes on
loopback, answering at once; the time spent waiting on their read replies is reported too,
and subtracted for "our own" time.

- **receipt → order bytes**: from the handler's `received_mono` stamp (the ledger's first stage)
  to the first order's bytes on either venue's socket;
- **client send → order bytes**: the same end, from just before the client sent the request;
- **our own**: receipt → order bytes minus the venue reads' round trips in between. With
  `position_source = "stream"` the engine decides from the account streams and its REST read goes
  out alongside the order: a read that happens to finish before the bytes is still subtracted, so
  this is then a lower bound. `reads_before_first_order` counts those reads by kind.

Each headline alternates a coin between long and short, so every one sends an order on both
venues. The webhook's sender is a process of its own. The venues and the sender stand for other
machines: they run in SCHED_BATCH, so their wake-ups on our bytes do not preempt the bot on this
box's two cores (`--venues-as-local-processes` leaves them at normal priority). Prints a table
and a final JSON line.

    uv run --frozen python bench/news_to_order.py [--items 200] [--coins 6]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

import parser as parser_bench  # bench/parser.py: its stand-in bot for the web app
from newstrader.bot import freeze_startup_heap, prefer_short_handoffs
from newstrader.domain import NewsItem, Signal, VenueOutcome
from newstrader.engine.executor import Executor
from newstrader.engine.risk import Sizer
from newstrader.engine.settings import EngineSettings
from newstrader.journal import Journal
from newstrader.logging_setup import configure_logging
from newstrader.news.parser import Parser
from newstrader.news.pipeline import NewsDecision, NewsOutcome, Pipeline, PipelineSettings
from newstrader.venues.base import Streaming
from sim_harness import COINS, as_batch_process, machine, new_trader, percentile, venue_sims

ORDER_PATHS = ("/exchange", "/fapi/v3/order")


class Wire(httpx.AsyncBaseTransport):
    """The venue's real transport, noting when each order's last byte went on the socket and
    how long each read waited for its reply (monotonic seconds)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.order_bytes: list[float] = []
        self.reads: list[tuple[float, float]] = []
        self.read_kinds: list[str] = []  # per read: its path (and Hyperliquid info type)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        is_order = path.endswith(ORDER_PATHS) and request.method == "POST" and b'"order"' in request.content
        if path.endswith("/fapi/v3/order"):
            is_order = request.method == "POST"
        if is_order:
            request.extensions["trace"] = self._trace
            return await self.inner.handle_async_request(request)
        started = time.monotonic()
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.reads.append((started, time.monotonic()))
        self.read_kinds.append(_read_kind(request))
        return response

    async def _trace(self, event: str, info: dict[str, Any]) -> None:
        if event == "http11.send_request_body.complete":
            self.order_bytes.append(time.monotonic())

    async def aclose(self) -> None:
        await self.inner.aclose()


def time_journal_calls(journal: Journal, names: tuple[str, ...]) -> dict[str, list[float]]:
    """Wrap these journal methods of this one object to note how long each call took (ms): the
    journal's share of the path (the gate read, the cached-size read, the order intent's write)."""
    took: dict[str, list[float]] = {name: [] for name in names}

    def timed(name: str) -> Callable[..., Awaitable[Any]]:
        inner = getattr(journal, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            try:
                return await inner(*args, **kwargs)
            finally:
                took[name].append((time.monotonic() - started) * 1000)

        return call

    for name in names:
        setattr(journal, name, timed(name))
    return took


def _read_kind(request: httpx.Request) -> str:
    path = request.url.path.rsplit("/", 1)[-1]
    if path == "info":
        return "info:" + str(json.loads(request.content).get("type"))
    return path


class NewsDesk(parser_bench.NewsDesk):
    """`bench/parser.py`'s stand-in bot for the web app, handing each item's final decision to
    whoever waits for it (the webhook answers once accepted; the orders finish behind the answer)."""

    def __init__(self, pipeline: Pipeline, journal: Journal) -> None:
        super().__init__(pipeline, journal)
        self.final: dict[str, asyncio.Future[NewsDecision]] = {}

    def decided(self, news_id: str) -> asyncio.Future[NewsDecision]:
        return self.final.setdefault(news_id, asyncio.get_running_loop().create_future())

    async def accept_news(self, item: NewsItem) -> NewsDecision:
        decision: NewsDecision = await self.pipeline.accept(item)
        final = self.decided(item.id)
        if decision.execution is None:
            final.set_result(decision)
        else:
            decision.execution.add_done_callback(lambda done: final.set_result(done.result()))
        return decision


# The webhook's sender, in a process of its own as it would be in use: its request building and
# reply parsing do not share the bot's event loop. One JSON body per stdin line; per reply one line.
SENDER = """
import json, sys, time, httpx
with httpx.Client(base_url=sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]}) as client:
    for line in sys.stdin:
        sent = time.monotonic()  # CLOCK_MONOTONIC: the same clock as the bot's stamps
        reply = client.post("/api/news", content=line.encode(), headers={"Content-Type": "application/json"})
        print(json.dumps({"sent": sent, "status": reply.status_code, "text": reply.text[:200]}), flush=True)
"""


class Sender:
    """The sender process: `send` hands it a body; `reply` reads what the webhook answered."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, port: int, token: str, *, remote: bool) -> Sender:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            SENDER,
            f"http://127.0.0.1:{port}",
            token,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        if remote:  # the sender is another machine too (see VenueSims.as_remote_venues)
            as_batch_process(process.pid)
        return cls(process)

    async def send(self, body: dict[str, str]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(body).encode() + b"\n")
        await self.process.stdin.drain()

    async def reply(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the sender process ended (exit {await self.process.wait()})")
        reply: dict[str, Any] = json.loads(line)
        if reply["status"] not in (200, 202):
            raise RuntimeError(f"webhook said {reply['status']}: {reply['text']}")
        return reply

    async def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        await self.process.wait()


def summary_ms(samples: list[float]) -> dict[str, float]:
    """n / p50 / p99 / max of millisecond samples (nearest rank), rounded for the report."""
    if not samples:
        return {"n": 0}
    return {
        "n": len(samples),
        "p50": round(percentile(samples, 0.50), 2),
        "p99": round(percentile(samples, 0.99), 2),
        "max": round(max(samples), 2),
    }


def headline(i: int, coins: list[str]) -> str:
    """Alternates each coin between long and short, so every item needs an order everywhere."""
    coin = coins[i % len(coins)]
    tag = f"w{-i}" if i < 0 else f"n{i}"  # unique headlines: the dedupe filter lets each pass
    if (i // len(coins)) % 2 == 0:
        return f"Coinbase will list {coin} perpetual futures ({tag})"
    return f"Binance will delist {coin} spot pairs ({tag})"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from newstrader.web.app import create_app

    configure_logging(level="warning")
    prefer_short_handoffs()  # as the bot does at start
    coins = list(COINS[: args.coins])
    sims = venue_sims(args.sim_url, rate_limits=False)
    remote_like = bool(sims.as_remote_venues()) if args.venues_as_remote else False
    tmp = tempfile.TemporaryDirectory(prefix="bench-news-to-order-")
    journal = await Journal.open(f"sqlite:///{Path(tmp.name) / 'journal.db'}")
    calls = time_journal_calls(journal, ("news_gate", "cached_positions", "record_intent"))
    trader = new_trader(sims)
    wires = {name: Wire(transport.inner) for name, transport in trader.transports.items()}
    for name, transport in trader.transports.items():
        transport.inner = wires[name]  # type: ignore[assignment]
    settings = EngineSettings()
    # The account streams, dialled as the bot dials them: with `position_source = "stream"` the
    # engine decides from them and the REST read goes out alongside the order.
    streams = [venue.stream for venue in trader.venues.values() if isinstance(venue, Streaming)]
    for stream in streams:
        stream.state.max_silence_s = settings.stream_max_silence_ms / 1000
        stream.start()
    for stream in streams:
        if not await stream.wait_current(30):
            raise RuntimeError(f"account stream not current: {stream.state.status().describe()}")
    stream_status = [stream.state.status().describe() for stream in streams]
    executor = Executor(trader.venues, journal, settings, Sizer())
    acted: list[list[VenueOutcome]] = []

    async def act(signal: Signal) -> list[VenueOutcome]:
        outcomes = await executor.execute(signal)
        acted.append(outcomes)
        return outcomes

    pipeline = Pipeline(Parser(), journal, PipelineSettings(), act)
    desk = NewsDesk(pipeline, journal)
    server, serving, port = await parser_bench.serve(create_app(desk, token="bench-token"))
    rows: dict[str, list[float]] = {"receipt": [], "client": [], "own": [], "read_wait": []}
    stages: dict[str, list[float]] = {}
    outcomes: dict[str, int] = {}
    blocking: dict[str, int] = {}  # venue reads that ended before the first order's bytes, by kind
    sender = await Sender.start(port, "bench-token", remote=remote_like)
    try:

        async def post(i: int) -> tuple[float, NewsDecision]:
            """Send item i; once its decision is final: when it was sent, and the decision."""
            news_id = f"b{i}"
            await sender.send({"id": news_id, "title": headline(i, coins), "source": "bench"})
            decision = await asyncio.wait_for(desk.decided(news_id), 30)
            return (await sender.reply())["sent"], decision

        for i in range(-2 * len(coins), 0):  # warm-up: markets, leverage, keep-alive connections
            await post(i)
        freeze_startup_heap()  # as the bot does once started
        for samples in calls.values():
            samples.clear()
        for i in range(args.items):
            for wire in wires.values():
                wire.order_bytes.clear()
                wire.reads.clear()
                wire.read_kinds.clear()
            sent, decision = await post(i)
            outcomes[decision.outcome.value] = outcomes.get(decision.outcome.value, 0) + 1
            first = min((t for w in wires.values() for t in w.order_bytes), default=None)
            if decision.outcome is not NewsOutcome.TRADED or decision.signal is None or first is None:
                continue
            received = dict(decision.signal.stamps)["received"]
            reads = [r for w in wires.values() for r in w.reads if received <= r[0] and r[1] <= first]
            for w in wires.values():
                for (start, end), kind in zip(w.reads, w.read_kinds, strict=True):
                    if received <= start and end <= first:
                        blocking[kind] = blocking.get(kind, 0) + 1
            read_wait = max((end for _, end in reads), default=received) - min(
                (start for start, _ in reads), default=received
            )
            rows["receipt"].append((first - received) * 1000)
            rows["client"].append((first - sent) * 1000)
            rows["read_wait"].append(read_wait * 1000)
            rows["own"].append((first - received - read_wait) * 1000)
            # The ledger of the venue that sent first: where the time went.
            ledger = min(
                (o.latency.stamps for o in acted[-1] if "sent" in o.latency.stamps),
                key=lambda st: st["sent"],
            )
            for start, end in (("received", "parsed"), ("parsed", "decided"), ("decided", "sent")):
                stages.setdefault(f"{start}_to_{end}", []).append((ledger[end] - ledger[start]) * 1000)
            stages.setdefault("sent_to_order_bytes", []).append((first - ledger["sent"]) * 1000)
    finally:
        await sender.close()
        server.should_exit = True
        await serving
        await trader.close()
        await journal.close()
        sims.stop()
        tmp.cleanup()
    return {
        "bench": "news_to_order",
        "items": args.items,
        "outcomes": outcomes,
        "receipt_to_order_bytes_ms": summary_ms(rows["receipt"]),
        "client_send_to_order_bytes_ms": summary_ms(rows["client"]),
        "venue_read_wait_ms": summary_ms(rows["read_wait"]),
        "reads_before_first_order": blocking,
        "own_ms": summary_ms(rows["own"]),
        "stages_ms": {k: summary_ms(v) for k, v in stages.items()},
        "journal_calls_ms": {k: summary_ms(v) for k, v in calls.items()},
        "journal": "sqlite WAL, synchronous=FULL, temp dir",
        "engine": settings.model_dump(include={"position_source", "mode"}),
        "streams_at_start": stream_status,
        "venues_and_sender": "SCHED_BATCH (as remote machines)" if remote_like else "normal processes",
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--coins", type=int, default=6)
    parser.add_argument("--sim-url", default=None, help="attach to a running simulator instead")
    parser.add_argument(
        "--venues-as-local-processes",
        dest="venues_as_remote",
        action="store_false",
        help="leave the simulators and the sender at normal priority (their wake-ups may preempt the bot)",
    )
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(f"{'measure (ms)':<36}{'n':>6}{'p50':>10}{'p99':>10}{'max':>10}")
    for label, key in (
        ("webhook receipt → order bytes", "receipt_to_order_bytes_ms"),
        ("client send → order bytes", "client_send_to_order_bytes_ms"),
        ("  of which venue reads (waiting)", "venue_read_wait_ms"),
        ("  our own (receipt → bytes − reads)", "own_ms"),
        *((f"  stage {name}", name) for name in result["stages_ms"]),
        *((f"  journal {name} (each call)", name) for name in result["journal_calls_ms"]),
    ):
        row = result[key] if key in result else {**result["stages_ms"], **result["journal_calls_ms"]}[key]
        cells = "".join(f"{row.get(k, '-'):>10}" for k in ("p50", "p99", "max"))
        print(f"{label:<36}{row.get('n', 0):>6}{cells}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
