"""`TelegramService`: alerts out (bus + journal → outboxes) and commands in (long polling).

Nothing here runs on the trading path. The bus hands this service its own bounded queue
(drop-oldest), the journal is read every `JOURNAL_POLL_S` for pause / loss-limit / TP-SL
events, and each chat's outbox sends from its own task. Connecting to the Bot API (`getMe`)
is retried in the background, so a Telegram outage at start-up does not hold up the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import warnings
from datetime import datetime, timedelta
from typing import Any

import structlog
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application, ApplicationBuilder
from telegram.request import HTTPXRequest

from newstrader.botapi import BotApi
from newstrader.config import TelegramSettings
from newstrader.domain import Fill, utcnow
from newstrader.telegram import alerts
from newstrader.telegram.commands import Commands
from newstrader.telegram.outbox import ChatOutbox, RetryLater, SendFailed, SendRejected

log = structlog.get_logger("newstrader.telegram")

JOURNAL_POLL_S = 2.0
JOURNAL_BATCH = 200
POLL_TIMEOUT_S = 10  # getUpdates long-poll
CONNECT_BACKOFF_MAX_S = 60.0
SHUTDOWN_FLUSH_S = 3.0
TRADE_WAIT_S = 10.0  # a venue's outcome later than this goes out on a line of its own
FILL_OVERLAP = timedelta(minutes=5)
OWN_ORDERS_WINDOW = 2000  # the bot's newest orders, to tell its own fills from exits


def _retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 deprecates the int form; both forms are read here
        warnings.simplefilter("ignore")
        value: Any = exc.retry_after
    return float(value.total_seconds() if isinstance(value, timedelta) else value)


class TelegramService:
    """The Telegram room of one running bot."""

    def __init__(
        self,
        settings: TelegramSettings,
        api: BotApi,
        *,
        started_text: str = "newstrader started",
    ) -> None:
        if settings.token is None:
            raise ValueError("[telegram] needs a token (env NEWSTRADER_TELEGRAM_TOKEN)")
        self.settings = settings
        self.categories = frozenset(settings.events)
        self.bus = api.bus
        self.venue_names = sorted(api.venues)
        self.journal = api.journal
        self.commands = Commands(api, settings.chat_ids)
        timeout = settings.request_timeout_s
        self.app: Application[Any, Any, Any, Any, Any, Any] = (
            ApplicationBuilder()
            .token(settings.token.get_secret_value())
            .base_url(settings.api_url)
            .request(HTTPXRequest(connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout))
            .get_updates_request(HTTPXRequest(connect_timeout=timeout, read_timeout=timeout + POLL_TIMEOUT_S))
            .job_queue(None)
            .build()
        )
        self.commands.install(self.app)
        self.outboxes = [
            ChatOutbox(
                chat_id,
                self._send,
                min_interval_s=settings.min_interval_s,
                coalesce_s=settings.coalesce_s,
                max_items=settings.queue_size,
            )
            for chat_id in settings.chat_ids
        ]
        self._connected = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._queue: asyncio.Queue[dict[str, Any]] | None = None
        self._started_text = started_text
        self._poll_error_logged: set[str] = set()

    # ---------------------------------------------------------------- life cycle

    async def start(self) -> None:
        """Subscribe, start the outboxes and the journal tail; connect in the background."""
        self._queue = self.bus.subscribe()
        self.notify(alerts.lifecycle(self._started_text))
        self._tasks = [
            asyncio.create_task(self._connect(), name="telegram-connect"),
            asyncio.create_task(self._follow_bus(self._queue), name="telegram-bus"),
            asyncio.create_task(self._follow_journal(), name="telegram-journal"),
            *(asyncio.create_task(o.run(), name=f"telegram-chat-{o.chat_id}") for o in self.outboxes),
        ]
        log.info("telegram_started", chats=len(self.outboxes), events=sorted(self.categories))

    async def stop(self) -> None:
        """Say goodbye (waiting at most `SHUTDOWN_FLUSH_S`), stop polling, close the client."""
        self.notify(alerts.lifecycle("newstrader stopping"))
        if self._connected.is_set():
            await asyncio.gather(*(o.drain(SHUTDOWN_FLUSH_S) for o in self.outboxes))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._queue is not None:
            self.bus.unsubscribe(self._queue)
        with contextlib.suppress(Exception):
            if self.app.updater is not None and self.app.updater.running:
                await self.app.updater.stop()
            if self.app.running:
                await self.app.stop()
            await self.app.shutdown()
        log.info("telegram_stopped", sent=sum(o.sent for o in self.outboxes))

    async def _connect(self) -> None:
        """getMe until it answers, then long-poll for commands (PTB retries the polling itself)."""
        backoff = 1.0
        while True:
            try:
                await self.app.initialize()
                break
            except RetryAfter as exc:
                delay = _retry_seconds(exc)
            except TelegramError as exc:
                delay = backoff
                backoff = min(backoff * 2, CONNECT_BACKOFF_MAX_S)
                log.warning("telegram_connect_failed", error=f"{type(exc).__name__}: {exc}", retry_in_s=delay)
            await asyncio.sleep(delay)  # back-off before the next getMe
        await self.app.start()
        assert self.app.updater is not None
        await self.app.updater.start_polling(
            timeout=POLL_TIMEOUT_S,
            allowed_updates=["message", "callback_query"],
            drop_pending_updates=True,  # a command typed while the bot was down is not acted on later
            error_callback=self._poll_error,
        )
        self._connected.set()
        log.info("telegram_connected", username=self.app.bot.username)

    def _poll_error(self, exc: TelegramError) -> None:
        kind = type(exc).__name__
        if kind not in self._poll_error_logged:  # PTB retries on its own; one line per kind
            self._poll_error_logged.add(kind)
            log.warning("telegram_poll_failed", error=f"{kind}: {exc}", message="retrying; logged once")

    # ---------------------------------------------------------------- alerts

    def notify(self, alert: alerts.Alert | None) -> None:
        """File an alert for every chat, when its category is enabled."""
        if alert is None or alert.category not in self.categories:
            return
        for outbox in self.outboxes:
            outbox.put(alert)

    async def _send(self, chat_id: int, text: str) -> None:
        """One sendMessage, its failures mapped onto the outbox's retry classes."""
        await self._connected.wait()
        try:
            await self.app.bot.send_message(chat_id, text)
        except RetryAfter as exc:
            raise RetryLater(_retry_seconds(exc)) from exc
        except (BadRequest, Forbidden) as exc:
            raise SendRejected(f"{type(exc).__name__}: {exc}") from exc
        except (NetworkError, TelegramError) as exc:  # TimedOut is a NetworkError
            raise SendFailed(f"{type(exc).__name__}: {exc}") from exc

    async def _follow_bus(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Bus events → alerts; a trade waits (at most `TRADE_WAIT_S`) for every venue's outcome."""
        trades = alerts.TradeAssembler(self.venue_names, wait_s=TRADE_WAIT_S)
        while True:
            deadline = trades.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                event: dict[str, Any] | None = await asyncio.wait_for(queue.get(), timeout)
            except TimeoutError:
                event = None
            for late in trades.expired(time.monotonic()):
                self.notify(late)
            if event is None:
                continue
            try:
                alert = alerts.from_event(event)
                if alert is not None and alert.category == "trade":
                    for ready in trades.add(alert, str(event.get("venue")), time.monotonic()):
                        self.notify(ready)
                else:
                    self.notify(alert)
            except Exception as exc:  # one odd event must not end the feed
                log.warning("telegram_event_unreadable", event_type=event.get("type"), error=repr(exc))

    async def _exchange_exits(self, fills: list[Fill]) -> list[tuple[Fill, str]]:
        """The fills that realized PnL on an exit the exchange filled by itself (a TP or SL
        trigger, or a trade made by hand), each with its kind; the bot's own trades are left out.

        A fill is matched to the journaled order it filled (by client id, else by the venue's
        order id: Aster's fills carry no client id); every order is journaled before it is sent."""
        exits = [f for f in fills if f.realized_pnl != 0]
        if not exits:
            return []
        orders = await self.journal.recent_orders(OWN_ORDERS_WINDOW)
        by_client = {str(o["client_id"]): str(o["leg"]) for o in orders}
        by_order = {
            (str(o["venue"]), str(o["venue_order_id"])): str(o["leg"])
            for o in orders
            if o.get("venue_order_id")
        }
        found = []
        for fill in exits:
            leg = by_client.get(fill.client_id or "") or by_order.get((fill.venue, str(fill.venue_order_id)))
            kind = alerts.exit_kind(leg)
            if kind is not None:
                found.append((fill, kind))
        return found

    async def _follow_journal(self) -> None:
        """Tail the journal: control events (pause, loss limit, protection) and exchange exits."""
        since = utcnow()
        newest = await self.journal.recent_events(1)
        last_id = int(newest[0]["id"]) if newest else 0
        seen_fills: dict[tuple[str, str], datetime] = {}
        while True:
            await asyncio.sleep(JOURNAL_POLL_S)  # the tail's polling interval
            try:
                rows = [r for r in await self.journal.recent_events(JOURNAL_BATCH) if int(r["id"]) > last_id]
                for row in sorted(rows, key=lambda r: int(r["id"])):
                    last_id = int(row["id"])
                    self.notify(alerts.from_journal_event(row))
                fills = await self.journal.fills(since=since)
                fresh = [f for f in fills if (f.venue, f.fill_id) not in seen_fills]
                for fill, kind in await self._exchange_exits(fresh):
                    self.notify(alerts.from_fill(fill, kind))
                seen_fills.update({(f.venue, f.fill_id): f.time for f in fresh})
                if fills:  # read from a little before the newest fill: a venue may report late
                    since = max(since, max(f.time for f in fills) - FILL_OVERLAP)
                    seen_fills = {k: t for k, t in seen_fills.items() if t >= since}
            except Exception as exc:  # the journal may be busy; the next turn reads again
                log.warning("telegram_journal_unreadable", error=repr(exc))
