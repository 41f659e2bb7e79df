"""A bot as one node of several: it trades only the accounts it owns, each through its own lane.

When the journal is PostgreSQL, every configured account is claimed (see `ownership`). For each
account this node owns there is a lane: a news pipeline whose items are journaled under
``<news id>@<venue>`` and which acts on that one account. Items come from the account's durable
consumer on the news stream (`[bus] url`), and from the bot's own sources and webhook, which
feed every owned lane. Per-account ids are what make a takeover exact: the new owner's
redelivered or replayed items are deduped (or resumed) by the same ids the old owner journaled.

On acquiring an account, before its lane starts, the node settles what the previous owner may
have left: its pending orders are asked about by client id, its half-handled items become
`interrupted` (a redelivery resumes them), and the account is reconciled with the exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from newstrader.cluster.ownership import AccountOwnership, libpq_dsn, lock_key
from newstrader.cluster.stream import NewsStream
from newstrader.domain import NewsItem, Signal, VenueOutcome
from newstrader.engine.ports import NotOwner
from newstrader.engine.reconcile import Reconciler
from newstrader.journal import NEWS_INTERRUPTED, NEWS_UNFINISHED, Journal, NewsGate, normalize_title
from newstrader.news.pipeline import NewsDecision, NewsOutcome, Pipeline

if TYPE_CHECKING:
    from newstrader.bot import Bot

log = structlog.get_logger("newstrader.cluster")

LANE_DRAIN_S = 2.0


def default_instance() -> str:
    """This process's instance name when `[cluster] instance` is not set: host and pid."""
    return f"{socket.gethostname()[:24]}-{os.getpid()}"


def lane_news_id(news_id: str, venue: str) -> str:
    """The id one account's lane journals an item under."""
    return f"{news_id}@{venue}"


class AccountNewsJournal:
    """The journal as one account's pipeline sees it (a `NewsJournal`): headline dedupe within
    that account only (the other accounts' copies of a headline are not duplicates of it), and
    an item a previous owner of the account left unfinished is resumed, not taken for a copy."""

    def __init__(self, journal: Journal, venue: str) -> None:
        self.journal = journal
        self.venue = venue
        self.prefix = f"{venue}|"

    def queue_news(self, item: NewsItem, outcome: str, reason: str = "") -> asyncio.Future[bool]:
        return self.journal.queue_news(
            item, outcome, reason, norm_title=self.prefix + normalize_title(item.title)
        )

    async def news_gate(self, news_id: str, norm_title: str, since: datetime | None) -> NewsGate:
        """The journal's gate; an id still `received` was left by an owner that lost the account
        mid-item (only the owner writes the lane's ids, and the lane's own items in flight are
        caught by the pipeline's memory first), so it becomes `interrupted` and is resumed."""
        gate = await self.journal.news_gate(news_id, self.prefix + norm_title, since)
        if gate.outcome != NEWS_UNFINISHED:
            return gate
        left = await self.journal.interrupt_unfinished_news(
            "the previous owner of the account stopped while handling it", id_suffix=news_id
        )
        return replace(gate, outcome=NEWS_INTERRUPTED) if left else gate

    async def update_news(self, news_id: str, outcome: str, reason: str = "") -> None:
        await self.journal.update_news(news_id, outcome, reason)

    def queue_signal(self, signal: Signal, status: str, reason: str = "") -> asyncio.Future[bool]:
        return self.journal.queue_signal(signal, status, reason)

    async def record_signal(self, signal: Signal, status: str, reason: str = "") -> bool:
        return await self.journal.record_signal(signal, status, reason)

    async def update_signal(self, signal_id: str, status: str, reason: str = "") -> None:
        await self.journal.update_signal(signal_id, status, reason)

    async def recent_signals(self, limit: int = 50) -> list[dict[str, Any]]:
        return await self.journal.recent_signals(limit)

    async def unfinished_signals(self) -> list[Signal]:
        suffix = f"@{self.venue}"
        return [s for s in await self.journal.unfinished_signals() if s.news_id.endswith(suffix)]

    async def interrupt_unfinished_news(self, reason: str, *, keep: Collection[str] = ()) -> list[str]:
        return await self.journal.interrupt_unfinished_news(reason, keep=keep, id_suffix=f"@{self.venue}")


@dataclass(slots=True)
class Lane:
    """One owned account: its pipeline and, with a bus, its consumer."""

    venue: str
    pipeline: Pipeline
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def submit(self, item: NewsItem) -> NewsDecision:
        return await self.pipeline.submit(replace(item, id=lane_news_id(item.id, self.venue)))

    async def accept(self, item: NewsItem) -> NewsDecision:
        return await self.pipeline.accept(replace(item, id=lane_news_id(item.id, self.venue)))


def combine(news_id: str, lanes: list[Lane], decisions: Sequence[NewsDecision]) -> NewsDecision:
    """One decision for an item handled by several lanes: the first signal, every lane's reason."""
    signal = next((d.signal for d in decisions if d.signal is not None), None)
    reason = "; ".join(f"{lane.venue}: {d.reason}" for lane, d in zip(lanes, decisions, strict=True))
    outcome = next(
        (o for o in _OUTCOME_PRECEDENCE if any(d.outcome is o for d in decisions)),
        decisions[0].outcome if decisions else NewsOutcome.IGNORED,
    )
    return NewsDecision(news_id, signal, reason or "no account owned by this instance", outcome)


# The item's combined outcome: the most telling one any lane reached.
_OUTCOME_PRECEDENCE = (NewsOutcome.ACCEPTED, NewsOutcome.TRADED, NewsOutcome.FAILED, NewsOutcome.SKIPPED)


class ClusterNode:
    """Ownership, lanes and the news stream of one bot that shares its journal with others."""

    def __init__(self, bot: Bot, instance: str) -> None:
        self.bot = bot
        self.instance = instance
        cluster = bot.settings.cluster
        bus = bot.settings.bus
        accounts = {
            venue.name: lock_key(venue.kind, venue.account or venue.name) for venue in bot.settings.venues
        }
        self.ownership = AccountOwnership(
            libpq_dsn(bot.journal.url),
            instance,
            accounts,
            heartbeat_s=cluster.heartbeat_s,
            session_timeout_s=cluster.session_timeout_s,
            on_acquired=self._acquired,
            on_lost=self._lost,
        )
        self.stream: NewsStream | None = None
        if bus.url:
            self.stream = NewsStream(
                bus.url,
                stream=bus.stream,
                subject=bus.subject,
                ack_wait_s=bus.ack_wait_s,
                duplicate_window_s=bus.duplicate_window_s,
            )
        self.lanes: dict[str, Lane] = {}

    async def start(self) -> None:
        """Connect to the stream, then claim the accounts (standbys wait in the background)."""
        if self.stream is not None:
            await self.stream.connect()
        await self.ownership.start()
        log.info("cluster_node_started", instance=self.instance, bus=self.stream is not None)

    async def stop(self) -> None:
        """Stop the lanes, release the accounts, close the stream."""
        for venue in list(self.lanes):
            await self._stop_lane(venue)
        await self.ownership.stop()
        if self.stream is not None:
            await self.stream.close()

    async def submit(self, item: NewsItem) -> NewsDecision:
        """An item from the bot's own sources: handled by every owned lane; the combined decision."""
        lanes = list(self.lanes.values())
        decisions = await asyncio.gather(*(lane.submit(item) for lane in lanes))
        return combine(item.id, lanes, decisions)

    async def accept(self, item: NewsItem) -> NewsDecision:
        """An item from the webhook: journaled and decided in every owned lane; what executes
        goes on in the background (`execution` ends with the combined final decision)."""
        lanes = list(self.lanes.values())
        decided = await asyncio.gather(*(lane.accept(item) for lane in lanes))
        running = [d.execution for d in decided if d.execution is not None]
        if not running:
            return combine(item.id, lanes, decided)

        async def finish() -> NewsDecision:
            final = [d if d.execution is None else await asyncio.shield(d.execution) for d in decided]
            return combine(item.id, lanes, final)

        execution = asyncio.create_task(finish(), name=f"lanes-{item.id}")
        return replace(combine(item.id, lanes, decided), execution=execution)

    async def reconcile_owned(self) -> None:
        """The periodic reconcile, on the accounts this instance owns only."""
        for venue in self.ownership.owned():
            await self._reconciler(venue).run_once()

    def _reconciler(self, venue: str) -> Reconciler:
        bot = self.bot
        assert bot.executor is not None
        return Reconciler(
            {venue: bot.venues[venue]},
            bot.journal,
            state=bot.executor.state,
            quarantine=bot.executor.quarantine,
            publish=bot.bus.publish,
            config=bot.engine_config,  # the takeover waits out the executor's own in-flight window
        )

    async def bus_lag(self) -> dict[str, int]:
        """Per owned account: items on the stream not yet acked by its lane."""
        if self.stream is None:
            return {}
        lags = {venue: await self.stream.lag(venue) for venue in self.ownership.owned()}
        return {venue: lag for venue, lag in lags.items() if lag is not None}

    # ---- ownership callbacks

    async def _acquired(self, venue: str) -> None:
        bot = self.bot
        reconciler = self._reconciler(venue)
        try:
            resolved = await reconciler.resolve_pending()
            interrupted = await bot.journal.interrupt_unfinished_news(
                f"{venue} changed owner while the item was handled; resumed if delivered again",
                id_suffix=f"@{venue}",
            )
            await reconciler.run_once()
        except Exception as exc:  # the lane does not start on an unsettled account
            log.error("account_settle_failed", venue=venue, instance=self.instance, error=repr(exc))
            return
        if not self.ownership.owns(venue):
            return
        pipeline = Pipeline(
            bot.pipeline.parser,
            AccountNewsJournal(bot.journal, venue),
            bot.pipeline.settings,
            lambda signal: self._act(venue, signal),
            publish=bot.bus.publish,
        )
        lane = Lane(venue, pipeline)
        self.lanes[venue] = lane
        if self.stream is not None:
            lane.task = asyncio.create_task(self._consume(lane), name=f"lane-{venue}")
        log.info(
            "lane_started",
            venue=venue,
            instance=self.instance,
            pending_resolved=len(resolved),
            interrupted=len(interrupted),
        )

    async def _lost(self, venue: str) -> None:
        await self._stop_lane(venue)

    async def _stop_lane(self, venue: str) -> None:
        lane = self.lanes.pop(venue, None)
        if lane is None:
            return
        lane.stop.set()
        if lane.task is not None:
            lane.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await lane.task
        # An execution in flight is no longer ours: cancelled, its intents are the next owner's
        # to resolve (a late one would be fenced anyway, at its next send).
        await lane.pipeline.drain(LANE_DRAIN_S)
        log.info("lane_stopped", venue=venue, instance=self.instance)

    async def _act(self, venue: str, signal: Signal) -> list[VenueOutcome]:
        assert self.bot.executor is not None
        # A previous owner may have finished this item on the account before its news row said
        # so (killed between the two writes): its outcome is journaled, so it is done here.
        done = await self.bot.journal.venue_outcome(signal.id, venue)
        if done is not None:
            log.info("outcome_already_journaled", venue=venue, coin=signal.coin, signal_id=signal.id)
            return [done]
        return await self.bot.executor.execute(signal, venues=[venue])

    async def _consume(self, lane: Lane) -> None:
        assert self.stream is not None
        while not lane.stop.is_set():
            try:
                await self.stream.consume(lane.venue, lane.submit, lane.stop)
            except asyncio.CancelledError:
                raise
            except (Exception, NotOwner) as exc:  # on NotOwner the ownership task stops the lane
                log.warning("lane_consume_failed", venue=lane.venue, instance=self.instance, error=repr(exc))
                await asyncio.sleep(0.5)
