"""The composition root: config → journal, venues, engine, news pipeline, web app.

`Bot(settings)` wires the rooms together; `start()` resolves what a crash left pending,
reconciles every venue against the cache, then starts the reconcile loop and the web
server; `stop()` undoes it in reverse order. Everything the operator can do (news in,
positions, pause, close, flatten, reconcile) goes through the methods here.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import os
import secrets
import sys
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog

from newstrader.autotrade.trader import AutoTrader, exit_policy
from newstrader.botapi import ClusterState, Decision
from newstrader.domain import NewsItem, OutcomeStatus, Position, Signal, TriggerKind, VenueOutcome
from newstrader.engine.executor import Executor
from newstrader.engine.locks import VenueCoinState
from newstrader.engine.quarantine import Quarantine
from newstrader.engine.reconcile import Reconciler
from newstrader.engine.risk import Sizer
from newstrader.engine.settings import EngineSettings
from newstrader.news.pipeline import DUPLICATE_ID, NewsDecision, NewsOutcome, Pipeline, build_pipeline
from newstrader.venues.account import AccountState, AccountView, PositionListener, PositionSource
from newstrader.venues.base import Streaming, Venue, VenueError

if TYPE_CHECKING:
    from pathlib import Path

    from fastapi import FastAPI

    from newstrader.cluster.node import ClusterNode
    from newstrader.config import Settings
    from newstrader.journal import Journal
    from newstrader.telegram.service import TelegramService
    from newstrader.web.server import LoopbackServer

log = structlog.get_logger("newstrader.bot")

# At stop, how long executions already accepted may take to finish before they are cancelled
# (a cancelled one is resumed at the next start-up).
DRAIN_TIMEOUT_S = 15.0


class Bus:
    """In-process fan-out of dict events (news, signal, order, fill, drift) to subscribers.

    Each subscriber has its own bounded queue; a slow one loses its oldest events, never
    slows the bot.
    """

    def __init__(self, maxsize: int = 1000) -> None:
        self.maxsize = maxsize
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self.maxsize)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._queues.discard(queue)

    def publish(self, event: dict[str, Any]) -> None:
        for queue in list(self._queues):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)


def summarize(outcomes: list[VenueOutcome]) -> str:
    """`hl: ok (opened); aster: failed (auth error …)` for a news item's final reason."""
    parts = []
    for o in outcomes:
        detail = f" ({o.reason})" if o.reason else ""
        parts.append(f"{o.venue}: {o.status.value}{detail}")
    return "; ".join(parts)


class Bot:
    """One running newstrader: the journal, the venues, the engine and the ways in.

    By default the bot serves its own API and dashboard on `[web] host:port` (`run`, the
    demo); with `serve_web=False` a caller may serve `create_app(bot)` itself. A mainnet venue
    (by label or url) needs `live=True`: the guard is here so no entry point can skip it.
    """

    def __init__(self, settings: Settings, *, serve_web: bool = True, live: bool = False) -> None:
        from newstrader.config import require_live

        require_live(settings, live)  # raises MainnetRefused before anything is opened
        self.settings = settings
        self.serve_web = serve_web
        self.bus = Bus()
        self._journal: Journal | None = None  # opened by `start()`
        self.venues: dict[str, Venue] = {}
        self.views: dict[str, AccountView] = {}  # what observers read: the stream, or bounded REST
        self.executor: Executor | None = None
        self.reconciler: Reconciler | None = None
        self.pipeline: Pipeline | None = None
        self.autotrader: AutoTrader | None = None
        self.cluster: ClusterNode | None = None  # when the journal is PostgreSQL (shared by bots)
        self.web_app: FastAPI | None = None
        self.web_url: str | None = None
        self.web_token: str | None = None
        self.engine_config: EngineSettings = settings.engine
        self.sizer = Sizer.from_settings(settings.sizing)
        self._tasks: list[asyncio.Task[Any]] = []
        self._server: LoopbackServer | None = None
        self.telegram: TelegramService | None = None
        self._started = False

    @property
    def journal(self) -> Journal:
        """The journal `start()` opened; asking before that is a wiring bug, said as such."""
        if self._journal is None:
            raise RuntimeError("the bot's journal is not open yet: call start() first")
        return self._journal

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Open the journal, build venues and engine, settle what a crash left, then serve."""
        from newstrader.journal import Journal

        stamps = {"begin": time.monotonic()}
        prefer_short_handoffs()
        if self.serve_web:
            self._bind_web()  # a taken port fails here, before the journal or a venue is touched
        url = self.settings.journal.url
        instance = _cluster_instance(self.settings, url)
        self._journal = await Journal.open(url, instance=instance)
        try:
            await self._build()
            stamps["built"] = time.monotonic()
            assert self.reconciler is not None
            resolved, drift, resumed = [], [], []
            if instance is not None:  # shared journal: each account is settled when it is acquired
                await self._start_cluster(instance)
            else:
                resolved = await self.reconciler.resolve_pending()
                assert self.executor is not None
                resumed = await self.executor.resume_operations()
                drift = await self.reconciler.run_once()
            stamps["reconciled"] = time.monotonic()
            if self.autotrader is not None:
                await self.autotrader.start()
            stamps["autotrader"] = time.monotonic()
            if self.cluster is None:  # a node resumes an account's items when it acquires it
                await self._resume_unfinished_news()
            self._tasks.append(asyncio.create_task(self._reconcile_loop(), name="reconcile-loop"))
            await self._start_sources()
            if self.serve_web:
                await self._start_web()
            await self._start_telegram(len(resolved), len(drift))
            if self.cluster is not None:  # last: the claim's heartbeat must not wait on start-up work
                await self.cluster.start()
            stamps["serving"] = time.monotonic()
            self._started = True
            await self._warn_if_paused()
            freeze_startup_heap()
            names = list(stamps)
            log.info(
                "bot_started",
                venues=sorted(self.venues),
                pending_resolved=len(resolved),
                operations_resumed=len(resumed),
                drift=len(drift),
                mode=self.engine_config.mode,
                **{f"{b}_ms": round((stamps[b] - stamps[a]) * 1000) for a, b in itertools.pairwise(names)},
            )
        except BaseException:
            await self.stop()
            raise

    async def _start_cluster(self, instance: str) -> None:
        """Trade only owned accounts: fence the executor, feed own sources to the owned lanes
        (nothing is owned until `cluster.start()` claims the accounts)."""
        from newstrader.cluster.node import ClusterNode
        from newstrader.news.sources import build_sources

        assert self.executor is not None
        self.cluster = ClusterNode(self, instance)
        self.executor.fence = self.cluster.ownership
        if self.autotrader is not None:
            self.autotrader.owns = self.cluster.ownership.owns
        if self.pipeline is not None:
            self.pipeline.sources = build_sources(self.settings.news, self._submit_own, self.journal)

    async def _submit_own(self, item: NewsItem) -> Any:
        return await self.submit_news(item)

    async def _warn_if_paused(self) -> None:
        """A bot that starts paused says so once, with why and since when (it will not open trades)."""
        if not await self.paused():
            return
        status = await self.pause_status()
        log.warning(
            "bot_paused_at_start",
            reason=status.get("reason") or "unknown",
            since=status.get("since") or "unknown",
            message="no new positions until `newstrader resume`",
        )

    async def pause_status(self) -> dict[str, Any]:
        """`{paused, reason, since}`: why the bot does not open positions, for the log and the page."""
        if self.autotrader is not None:
            result: dict[str, Any] = await self.autotrader.pause_status()
            return result
        return {"paused": await self.paused(), "reason": None, "since": None}

    async def _resume_unfinished_news(self) -> None:
        """What a crash left half-handled: accepted signals execute again (in the background,
        before any new item), the rest get a final outcome now and resume on redelivery."""
        reason = "the bot stopped while handling it; its orders were resolved at start-up"
        if self.pipeline is not None:
            await self.pipeline.resume_unfinished(reason)
            return
        for news_id in await self.journal.interrupt_unfinished_news(reason):
            log.warning("news_interrupted", news_id=news_id, message="resumed if delivered again")

    async def _build(self) -> None:
        from newstrader.venues.factory import build_venue

        for cfg in self.settings.venues:
            self.venues[cfg.name] = build_venue(cfg, timeout_s=self.engine_config.order_timeout_s)
        self._start_streams()
        state = VenueCoinState()
        quarantine = Quarantine(
            rate_limit_count=self.engine_config.rate_limit_quarantine_count,
            rate_limit_window_s=self.engine_config.rate_limit_window_s,
            probe_interval_s=self.engine_config.quarantine_probe_s,
        )
        self.executor = Executor(
            self.venues,
            self.journal,
            self.engine_config,
            self.sizer,
            state=state,
            quarantine=quarantine,
            publish=self.bus.publish,
        )
        # The auto trader sends every order through the executor, and is the executor's hook
        # (TP/SL after every position change).
        self.autotrader = AutoTrader(
            self.venues, self.journal, exit_policy(self.settings.exits), self.executor
        )
        self.executor.hooks = self.autotrader
        self.reconciler = Reconciler(
            self.venues,
            self.journal,
            state=state,
            quarantine=quarantine,
            publish=self.bus.publish,
            config=self.engine_config,
        )
        self.pipeline = self._build_pipeline(await self._tradable_coins())

    async def _tradable_coins(self) -> set[str] | None:
        """Coins listed on at least one venue (None when no venue could be read)."""
        listed = await asyncio.gather(*(v.markets() for v in self.venues.values()), return_exceptions=True)
        coins: set[str] = set()
        for name, item in zip(self.venues, listed, strict=True):
            if isinstance(item, BaseException):
                log.warning("markets_unreadable", venue=name, error=repr(item))
            else:
                coins.update(item)
        return coins or None

    def _build_pipeline(self, tradable: set[str] | None) -> Pipeline:
        """The news pipeline: parser, filters and sources from the settings; it acts through `_act`."""
        return build_pipeline(
            self.settings, self.journal, self._act, tradable=tradable, publish=self.bus.publish
        )

    async def _start_sources(self) -> None:
        if self.pipeline is not None:
            await self.pipeline.start_sources()

    def _bind_web(self) -> None:
        from newstrader.web.server import LoopbackServer

        web = self.settings.web
        self._server = LoopbackServer(None, web.host, web.port)

    async def _start_web(self) -> None:
        from newstrader.web.app import create_app

        web = self.settings.web
        token = (web.token.get_secret_value() if web.token else None) or os.environ.get(
            "NEWSTRADER_WEB_TOKEN"
        )
        if not token:
            token = secrets.token_urlsafe(24)
            print(f"web token (generated; set NEWSTRADER_WEB_TOKEN to fix it): {token}", flush=True)
        self.web_token = token
        assert self._server is not None
        self.web_app = create_app(
            self,
            token=token,
            host=self._server.host,
            allowed_hosts=list(web.allowed_hosts),
        )
        state = self.web_app.state  # what create_app asks of the server that serves it
        await self._server.start(self.web_app, closing=state.closing, on_serve=state.on_serve)
        print(f"newstrader listening on {self._server.url}", flush=True)
        self.web_url = self._server.url
        log.info("web_listening", url=self.web_url)

    async def _start_telegram(self, resolved: int, drift: int) -> None:
        """Alerts and commands on Telegram when `[telegram]` is configured (never blocks on it)."""
        settings = self.settings.telegram
        if settings is None:
            return
        from newstrader.telegram.service import TelegramService

        text = (
            f"newstrader started: venues {', '.join(sorted(self.venues))}; mode {self.engine_config.mode};"
            f" {resolved} pending resolved, {drift} drift; {'PAUSED' if await self.paused() else 'trading'}"
        )
        self.telegram = TelegramService(settings, self, started_text=text)
        await self.telegram.start()

    def _start_streams(self) -> None:
        """Dial every venue's account stream (a declared capability); observers read the views."""
        silence_s = self.engine_config.stream_max_silence_ms / 1000
        for name, venue in self.venues.items():
            if isinstance(venue, Streaming):
                state = venue.stream.state
                state.max_silence_s = silence_s
                venue.stream.ping_interval_s = max(0.5, silence_s / 3)
                state.on_position(self._on_pushed_position(name, state))
                venue.stream.start()
            self.views[name] = AccountView(venue)

    def _on_pushed_position(self, name: str, state: AccountState) -> PositionListener:
        """A pushed position change (a liquidation, an outside trade, our own fill) is reconciled
        against the cache at once, from the pushed state: drift shows within a second. One run at a
        time per venue; a change during a run schedules one more."""
        running: list[asyncio.Task[Any]] = []
        again = [False]

        async def run() -> None:
            while True:
                again[0] = False
                if self.reconciler is not None and state.is_current():
                    try:
                        await self.reconciler.reconcile_pushed(name, dict(state.positions))
                    except Exception as exc:  # the periodic reconcile still runs
                        log.warning("push_reconcile_failed", venue=name, error=repr(exc))
                if not again[0]:
                    return

        def listener(
            coin: str, before: Position | None, after: Position | None, source: PositionSource
        ) -> None:
            if source != "push":
                return
            if running and not running[0].done():
                again[0] = True
                return
            task = asyncio.create_task(run(), name=f"push-reconcile-{name}")
            running[:] = [task]
            self._tasks.append(task)
            task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

        return listener

    async def stop(self) -> None:
        """Stop serving, finish the loops, close venues and the journal (in that order)."""
        if self.telegram is not None:
            with contextlib.suppress(Exception):
                await self.telegram.stop()
            self.telegram = None
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.stop()
            self._server = None
        if self.pipeline is not None:
            with contextlib.suppress(Exception):
                await self.pipeline.stop_sources()
        if self.pipeline is not None:  # executions accepted by the webhook finish (or resume later)
            await self.pipeline.drain(DRAIN_TIMEOUT_S)
        if self.autotrader is not None:
            try:
                await self.autotrader.stop()
            except Exception as exc:
                log.warning("autotrader_stop_failed", error=repr(exc))
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                await self.cluster.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=10)
        self._tasks.clear()
        if self.executor is not None:
            await self.executor.aclose()
        if self.reconciler is not None:
            await self.reconciler.aclose()
        for view in self.views.values():
            await view.close()
        for name, venue in self.venues.items():
            try:
                await venue.close()
            except Exception as exc:
                log.warning("venue_close_failed", venue=name, error=repr(exc))
        if self._journal is not None:
            await self._journal.close()
        self._started = False
        log.info("bot_stopped")

    async def _reconcile_loop(self) -> None:
        interval = self.engine_config.reconcile_interval_s
        if interval <= 0:
            return
        while True:
            await asyncio.sleep(interval)
            try:
                assert self.reconciler is not None
                if self.cluster is not None:
                    await self.cluster.reconcile_owned()
                else:
                    await self.reconciler.run_once()
            except Exception as exc:
                log.warning("reconcile_failed", error=repr(exc))

    # ------------------------------------------------------------------ ways in

    async def _act(self, signal: Signal) -> list[VenueOutcome]:
        """The pipeline's action: execute on every venue (the pipeline publishes the signal)."""
        assert self.executor is not None
        return await self.executor.execute(signal)

    async def accept_news(self, item: NewsItem) -> Decision:
        """Journal the item and decide it; an accepted signal executes in the background."""
        if self.cluster is not None:  # each owned account decides it in its own lane
            combined: Decision = await self.cluster.accept(item)
            return combined
        assert self.pipeline is not None, "start() builds the pipeline"
        decision: Decision = await self.pipeline.accept(item)
        return decision

    async def submit_news(self, item: NewsItem) -> NewsDecision:
        """Journal the item first, then act on it; a redelivered id is acted on once."""
        received = time.monotonic()
        if self.cluster is not None:  # each owned account handles it in its own lane
            return await self.cluster.submit(item)
        if self.pipeline is not None:
            decision: NewsDecision = await self.pipeline.submit(item)
            return decision  # unchanged: callers branch on its outcome
        self.bus.publish({"type": "news", "id": item.id, "title": item.title, "source": item.source})
        if not await self.journal.record_news(item, "received"):
            log.info("news_duplicate", news_id=item.id)
            return NewsDecision(item.id, None, DUPLICATE_ID, NewsOutcome.DUPLICATE)
        if item.coin is None or item.side is None:
            await self.journal.update_news(item.id, "ignored", "no parser yet: coin and side must be given")
            return NewsDecision(
                item.id, None, "no parser yet: coin and side must be given", NewsOutcome.IGNORED
            )
        if await self.paused():
            await self.journal.update_news(item.id, "skipped", "paused")
            return NewsDecision(item.id, None, "paused", NewsOutcome.SKIPPED)
        signal = Signal(
            id=f"s-{item.id}",
            news_id=item.id,
            coin=item.coin.upper(),
            side=item.side,
            source=item.source,
        )
        await self.journal.record_signal(signal, "accepted")
        assert self.executor is not None
        self.bus.publish(
            {
                "type": "signal",
                "id": signal.id,
                "news_id": item.id,
                "coin": signal.coin,
                "side": signal.side.value,
                "source": signal.source,
            }
        )
        outcomes = await self.executor.execute(signal, received_at=received)
        reason = summarize(outcomes)
        status = "executed" if all(o.status is not OutcomeStatus.FAILED for o in outcomes) else "partial"
        await self.journal.update_signal(signal.id, status, reason)
        await self.journal.update_news(item.id, "traded", reason)
        return NewsDecision(item.id, signal, reason, NewsOutcome.TRADED)

    async def cluster_state(self) -> ClusterState | None:
        """This instance, its owned accounts and its bus lag when it shares the journal."""
        if self.cluster is None:
            return None
        return ClusterState(
            instance=self.cluster.instance,
            configured=tuple(self.venues),
            owned=tuple(self.cluster.ownership.owned()),
            bus_lag=await self.cluster.bus_lag(),
        )

    async def paused(self) -> bool:
        return bool(await self.journal.get_control("paused", False))

    async def stats(self) -> dict[str, Any]:
        """Realized PnL, fees and latency from exchange fills (the auto trader's summary)."""
        if self.autotrader is not None:
            result: dict[str, Any] = await self.autotrader.stats()
            return result
        return {}

    async def pause(self, reason: str = "operator") -> dict[str, Any]:
        if self.autotrader is not None:
            result: dict[str, Any] = await self.autotrader.pause(reason)
            self.bus.publish({"type": "control", "paused": True})
            return result
        await self.journal.set_control("paused", True)
        self.bus.publish({"type": "control", "paused": True})
        log.warning("paused")
        return {"paused": True}

    async def resume(self) -> dict[str, Any]:
        if self.autotrader is not None:
            result: dict[str, Any] = await self.autotrader.resume()
            self.bus.publish({"type": "control", "paused": False})
            return result
        await self.journal.set_control("paused", False)
        self.bus.publish({"type": "control", "paused": False})
        log.warning("resumed")
        return {"paused": False}

    async def close(self, coin: str, venue: str | None = None) -> dict[str, Any]:
        """Close one coin (on one venue or all) from what the exchange holds; its triggers go too."""
        assert self.executor is not None and self.autotrader is not None
        coin = await self.executor.resolve_coin(coin) or coin.upper()
        return await self.autotrader.close(coin, venue)

    async def flatten(self) -> dict[str, Any]:
        """Close every position on every venue and cancel every trigger (the kill switch)."""
        assert self.autotrader is not None
        return await self.autotrader.flatten()

    async def reconcile(self) -> list[dict[str, Any]]:
        """Read every venue now, record drift, update the cache; no trading."""
        assert self.reconciler is not None
        return [
            {
                "kind": e.kind,
                "venue": e.venue,
                "coin": e.coin,
                "exchange_size": e.exchange_size,
                "cached_size": e.cached_size,
            }
            for e in await self.reconciler.run_once()
        ]

    async def positions_view(self) -> list[dict[str, Any]]:
        """Per venue and coin: exchange size, cached size, drift, entry, mark, uPnL, TP/SL.

        Read from the venue's account stream while it is current (no request per page view), else
        from a REST snapshot refreshed at a bounded rate; `source` and `stream` say which.
        """
        cache = await self.journal.cached_positions()

        async def one(name: str, view: AccountView) -> list[dict[str, Any]]:
            try:
                seen = await view.read()
            except VenueError as exc:
                return [{"venue": name, "coin": "*", "error": str(exc), "drift": False}]
            held = seen.positions
            triggers: dict[str, dict[str, Decimal]] = {}
            for order in seen.open_orders:
                if order.trigger_kind is not None and order.trigger_price is not None:
                    key = "take_profit" if order.trigger_kind is TriggerKind.TAKE_PROFIT else "stop_loss"
                    triggers.setdefault(order.coin, {})[key] = order.trigger_price
            coins = sorted(set(held) | {c for (v, c) in cache if v == name})
            rows = []
            for coin in coins:
                pos = held.get(coin)
                cached = cache.get((name, coin))
                exchange_size = pos.size if pos is not None else Decimal(0)
                cached_size = Decimal(str(cached.size)) if cached is not None else None
                rows.append(
                    {
                        "venue": name,
                        "coin": coin,
                        "exchange_size": exchange_size,
                        "cached_size": cached_size,
                        "drift": exchange_size != (cached_size or Decimal(0)),
                        "entry_price": pos.entry_price if pos is not None else None,
                        "mark_price": pos.mark_price if pos is not None else None,
                        "unrealized_pnl": pos.unrealized_pnl if pos is not None else None,
                        "source": seen.source,
                        "stream": seen.note,
                        **triggers.get(coin, {}),
                    }
                )
            return rows

        groups = await asyncio.gather(*(one(n, v) for n, v in self.views.items()))
        return [row for group in groups for row in group]


def _cluster_instance(settings: Settings, journal_url: str) -> str | None:
    """This bot's instance name when it shares a PostgreSQL journal with others, else None."""
    if not journal_url.startswith("postgresql"):
        return None
    from newstrader.cluster.node import default_instance

    return settings.cluster.instance or default_instance()


async def serve_until_signalled(settings: Settings, *, live: bool = False) -> None:
    """Start a bot, run until SIGINT/SIGTERM, then stop it gracefully."""
    import signal as signals

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signals.SIGINT, signals.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    bot = Bot(settings, live=live)
    await bot.start()
    try:
        await stop.wait()
    finally:
        await bot.stop()


# An order intent's journal write finishes on the writer thread and hands its result back to
# the event loop (so does every `asyncio.to_thread` journal read). CPython lets a running thread
# keep the GIL for the switch interval, 5 ms by default, before a waiting one may take it: on a
# busy loop that adds up to 5 ms to an order's path. bench/news_to_order.py, same load: receipt →
# order bytes p99 58 / 42 ms at 5 ms, 30 / 26 ms at 0.5 ms (p50 unchanged).
HANDOFF_SWITCH_INTERVAL_S = 0.0005


def prefer_short_handoffs() -> None:
    """Let threads hand the GIL over within 0.5 ms (see HANDOFF_SWITCH_INTERVAL_S)."""
    sys.setswitchinterval(HANDOFF_SWITCH_INTERVAL_S)


def freeze_startup_heap() -> None:
    """Keep what start-up built (modules, app, venues, journal) out of every later collection.

    The cyclic collector's older generations otherwise walk all of it: on a running bot a full
    collection stopped the event loop for ~200 ms and the middle one for up to ~10 ms, landing
    on whatever order was in flight (bench/news_to_order.py). Start-up garbage is kept, not freed.
    """
    gc.freeze()


def run_bot(config_path: Path, live: bool) -> int:
    """`newstrader run`: load the config (mainnet needs `live`), run the bot; the exit code.

    What an operator can fix is one line on stderr, never a traceback: a config problem or a
    missing key exits 2, a taken web port 1. Logging is the CLI's (`--log-json`, `--log-level`).
    """
    from newstrader.config import ConfigError, load_settings, require_live, require_secrets
    from newstrader.web.server import PortUnavailable

    try:
        settings = load_settings(config_path)  # also protects every loaded secret in the logs
        require_live(settings, live)  # `Bot` checks again; first here so it is the first complaint
        require_secrets(settings)
        return _serve(settings, live)
    except ConfigError as exc:
        print(f"newstrader run: {exc}", file=sys.stderr)
        return 2
    except PortUnavailable as exc:
        print(f"newstrader run: {exc}", file=sys.stderr)
        return 1


def _serve(settings: Settings, live: bool) -> int:
    from newstrader.sim.funding import fund_sim_accounts

    for line in asyncio.run(fund_sim_accounts(settings)):  # `init --sim` configs only
        print(f"newstrader run: {line}", file=sys.stderr, flush=True)
    asyncio.run(serve_until_signalled(settings, live=live))
    return 0
