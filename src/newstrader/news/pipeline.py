"""News item → journal → parse → filters → act: every item is recorded before anything happens.

Filters run in a fixed order: dedupe (same id; same normalised headline from another
source within `dedupe_window_s`, looked up in the journal so it survives restarts),
staleness (`max_age_s` by `published_at`), minimum confidence, per-coin cooldown, the
opposite-signal conflict rule (`conflict_window_s`: the newer wins, the older is journaled
as superseded and, if it has not started yet, never acts), and the pause switch (journal
control key `paused`). Whatever happens, the item's final outcome and reason are journaled.

The item's record is *queued* on arrival and the decision goes on at once: the journal
commits in queue order, so the first order intent (awaited before anything is sent) cannot
be durable without the item and its signal. Duplicates are caught before acting from one
journal read (`news_gate`) plus this process's own memory of ids and headlines in flight.

Test-only hook: with `NEWSTRADER_TEST_CRASH_AFTER_QUEUE=<news id>` in the environment the
process exits (`os._exit(137)`) right after that item's record and signal are queued, before
their commit and before any order: the soak's kill inside the group-commit window.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from newstrader.domain import NewsItem, OutcomeStatus, Signal, VenueOutcome, utcnow
from newstrader.news.parser import Parser, ParseResult, load_rules

if TYPE_CHECKING:
    from newstrader.config import Settings
    from newstrader.journal import Journal
    from newstrader.news.sources.base import Source

log = structlog.get_logger("newstrader.news")

CRASH_AFTER_QUEUE_ENV = "NEWSTRADER_TEST_CRASH_AFTER_QUEUE"


class NewsOutcome(enum.StrEnum):
    """What became of a news item (also its journal `outcome`, but for ACCEPTED)."""

    RECEIVED = "received"  # still being handled
    TRADED = "traded"
    IGNORED = "ignored"  # no signal in it
    SKIPPED = "skipped"  # a signal, stopped by a filter (stale, confidence, cooldown, paused, superseded)
    DUPLICATE = "duplicate"
    FAILED = "failed"
    # A decision only, never journaled as the item's outcome: its signal is executing in the
    # background (the item stays `received` until the execution journals how it ended).
    ACCEPTED = "accepted"


# The journal's strings, kept for callers that still compare them.
OUTCOME_RECEIVED = NewsOutcome.RECEIVED
OUTCOME_TRADED = NewsOutcome.TRADED
OUTCOME_IGNORED = NewsOutcome.IGNORED
OUTCOME_SKIPPED = NewsOutcome.SKIPPED
OUTCOME_DUPLICATE = NewsOutcome.DUPLICATE
OUTCOME_FAILED = NewsOutcome.FAILED
OUTCOME_ACCEPTED = NewsOutcome.ACCEPTED
ACCEPTED_REASON = "accepted: executing on the venues"

Act = Callable[[Signal], Awaitable[Any]]


class Gate(Protocol):
    """The journal's answer before an item is acted on (`journal.NewsGate`); read-only, as that
    frozen dataclass is: a protocol with plain attributes would demand settable ones."""

    @property
    def outcome(self) -> str | None: ...
    @property
    def headline_seen(self) -> bool: ...
    @property
    def paused(self) -> bool: ...


class NewsJournal(Protocol):
    """The part of `journal.Journal` the pipeline uses."""

    def queue_news(self, item: NewsItem, outcome: str, reason: str = "") -> asyncio.Future[bool]: ...
    async def news_gate(self, news_id: str, norm_title: str, since: datetime | None) -> Gate: ...
    async def update_news(self, news_id: str, outcome: str, reason: str = "") -> None: ...
    def queue_signal(self, signal: Signal, status: str, reason: str = "") -> asyncio.Future[bool]: ...
    async def record_signal(self, signal: Signal, status: str, reason: str = "") -> bool: ...
    async def update_signal(self, signal_id: str, status: str, reason: str = "") -> None: ...
    async def recent_signals(self, limit: int = 50) -> list[dict[str, Any]]: ...
    async def unfinished_signals(self) -> list[Signal]: ...
    async def interrupt_unfinished_news(self, reason: str, *, keep: Collection[str] = ()) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class NewsDecision:
    """What became of one news item: its signal (or None), the outcome and why.

    Travels unchanged from the pipeline to every caller (bot, web, CLI): callers branch on
    `outcome`, never on the wording of `reason`. With outcome `accepted` the signal is still
    executing: `execution` ends with the final decision (`Pipeline.accept`); every other
    decision is final."""

    news_id: str
    signal: Signal | None
    reason: str
    outcome: NewsOutcome = NewsOutcome.RECEIVED
    parse: ParseResult | None = None
    execution: asyncio.Task[NewsDecision] | None = field(default=None, compare=False, repr=False)

    @property
    def traded(self) -> bool:
        return self.outcome is NewsOutcome.TRADED


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    """The filter knobs: `[news]` keys plus `[engine] conflict_window_s`."""

    dedupe_window_s: float = 3600.0
    max_age_s: float = 300.0
    min_confidence: float = 0.5
    cooldown_s: float = 0.0
    conflict_window_s: float = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> PipelineSettings:
        """The `[news]` filter keys and `[engine] conflict_window_s` of a bot's settings."""
        news = settings.news
        return cls(
            dedupe_window_s=news.dedupe_window_s,
            max_age_s=news.max_age_s,
            min_confidence=news.min_confidence,
            cooldown_s=news.cooldown_s,
            conflict_window_s=settings.engine.conflict_window_s,
        )


@dataclass(slots=True)
class _Tracked:
    """The latest accepted signal of one coin, for the conflict rule."""

    signal: Signal
    at: datetime
    seq: int  # arrival order at `submit`, whatever order the journal calls finish in
    started: bool = False
    superseded_by: str | None = None


DUPLICATE_ID = "duplicate: this news id was already handled"
DUPLICATE_HEADLINE = "duplicate: same headline seen within dedupe window"
NEWS_INTERRUPTED = "interrupted"  # journal outcome of an item a crash cut short (resumable)
_TITLE_MEMORY = 10_000  # headlines remembered before the old ones are pruned


def _log_failed_write(write: asyncio.Future[bool]) -> None:
    if not write.cancelled() and write.exception() is not None:
        log.error("journal_write_failed", error=repr(write.exception()))


def _log_unexpected_end(task: asyncio.Task[Any]) -> None:
    """An execution that raised past `_act`'s own handling (a journal failure): say so."""
    if not task.cancelled() and task.exception() is not None:
        log.error("signal_execution_crashed", task=task.get_name(), error=repr(task.exception()))


def summarize(result: Any) -> tuple[str, bool]:
    """A one-line reason from what `act` returned, and whether every venue was fine."""
    if isinstance(result, list) and all(isinstance(o, VenueOutcome) for o in result):
        if not result:
            return "no venue to act on", True
        parts = [f"{o.venue}: {o.status.value}" + (f" ({o.reason})" if o.reason else "") for o in result]
        return "; ".join(parts), all(o.status is not OutcomeStatus.FAILED for o in result)
    return ("acted" if result is None else str(result)[:500]), True


@dataclass(slots=True)
class Pipeline:
    """Turns news items into acted-on signals, once each, recording why anything was not traded."""

    parser: Parser
    journal: NewsJournal
    settings: PipelineSettings
    act: Act
    clock: Callable[[], datetime] = utcnow
    publish: Callable[[dict[str, Any]], None] | None = None
    sources: list[Source] = field(default_factory=list)
    _title_locks: dict[str, tuple[asyncio.Lock, int]] = field(default_factory=dict)
    _coin_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _last_accepted: dict[str, datetime] = field(default_factory=dict)
    _tracked: dict[str, _Tracked] = field(default_factory=dict)
    _seeded: bool = False
    _arrivals: int = 0
    _in_flight: dict[str, dict[int, asyncio.Future[None]]] = field(default_factory=dict)
    _executions: set[asyncio.Task[NewsDecision]] = field(default_factory=set)
    _normalize: Callable[[str], str] = str
    _claimed: set[str] = field(default_factory=set)  # ids in flight here, until their record commits
    _titles: dict[str, datetime] = field(default_factory=dict)  # headlines handled here, when
    _crash_after_queue: str = field(default_factory=lambda: os.environ.get(CRASH_AFTER_QUEUE_ENV, ""))

    def __post_init__(self) -> None:
        # The journal's own normaliser, so our look-ups match what it stored (imported here:
        # SQLAlchemy is slow to import and the parser-only CLI paths never need it).
        from newstrader.journal import normalize_title

        self._normalize = normalize_title

    # -- the one way in ----------------------------------------------------------------

    async def submit(self, item: NewsItem) -> NewsDecision:
        """`accept`, then wait for the execution: the final decision (sources, the CLI)."""
        decision = await self.accept(item)
        if decision.execution is None:
            return decision
        # Shielded: a caller that stops waiting never cancels the orders (`drain` does, at stop).
        return await asyncio.shield(decision.execution)

    async def accept(self, item: NewsItem) -> NewsDecision:
        """Journal `item`, run the filters and decide; an accepted signal executes in the background.

        The answer comes once the item and its decision are journaled; the execution is
        `decision.execution`, and journals the final outcome either way. Signals on one coin
        act in the order their items arrived here, even when their journal calls finish in
        another order: the parse (pure, microseconds) comes first so the coin is known, and an
        item waits for every earlier item on its coin to finish before it acts.
        """
        started = time.perf_counter()
        self._arrivals += 1
        seq = self._arrivals
        now = self.clock()
        parsed = self.parser.parse(item)  # its signal carries the ledger's first stamps
        coin = parsed.signal.coin if parsed.signal is not None else None
        if coin is None:
            return await self._submit(item, seq, now, parsed, started)
        done = self._enter_flight(coin, seq)
        try:
            decision = await self._submit(item, seq, now, parsed, started)
        except BaseException:
            self._leave_flight(coin, seq, done)
            raise
        if decision.execution is None:
            self._leave_flight(coin, seq, done)
        else:
            decision.execution.add_done_callback(functools.partial(self._leave_flight, coin, seq, done))
        return decision

    def _enter_flight(self, coin: str, seq: int) -> asyncio.Future[None]:
        """Register arrival `seq` on `coin`: later arrivals on the coin act after it is done."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._in_flight.setdefault(coin, {})[seq] = done
        return done

    def _leave_flight(self, coin: str, seq: int, done: asyncio.Future[None], _: object = None) -> None:
        flights = self._in_flight.get(coin, {})
        flights.pop(seq, None)
        if not flights:
            self._in_flight.pop(coin, None)
        if not done.done():
            done.set_result(None)

    def _start_execution(
        self, news_id: str, signal: Signal, tracked: _Tracked, parsed: ParseResult | None
    ) -> NewsDecision:
        """Act on `signal` in a task the pipeline keeps (see `drain`); the `accepted` decision."""
        task = asyncio.create_task(self._act(news_id, signal, tracked, parsed), name=f"act-{signal.id}")
        self._executions.add(task)
        task.add_done_callback(self._executions.discard)
        task.add_done_callback(_log_unexpected_end)
        return NewsDecision(news_id, signal, ACCEPTED_REASON, OUTCOME_ACCEPTED, parsed, task)

    async def drain(self, timeout_s: float) -> int:
        """At stop: wait up to `timeout_s` for executions in flight, then cancel the rest.

        A cancelled execution leaves its item `received` and its signal `accepted`; its orders
        are journaled intents. The next start-up resolves those and resumes the signal
        (`resume_unfinished`). Returns how many were cancelled."""
        pending = set(self._executions)
        if not pending:
            return 0
        _, late = await asyncio.wait(pending, timeout=timeout_s)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        if late:
            log.warning("executions_cancelled_at_stop", count=len(late), timeout_s=timeout_s)
        return len(late)

    async def resume_unfinished(self, interrupted_reason: str) -> tuple[list[str], list[str]]:
        """At start-up: resume what a crash cut short; the ids (resumed, interrupted).

        A signal accepted (so its sender got a 202) whose item never finished executes again,
        in the background and in its original order per coin; orders it already sent are found
        by their client ids, never sent twice. One older than `max_age_s` is not: like an item
        that never reached a decision, it is marked `interrupted` (a redelivery resumes it)."""
        now = self.clock()
        max_age = self.settings.max_age_s
        resumed: list[str] = []
        for signal in await self.journal.unfinished_signals():
            age = (now - signal.created_at).total_seconds()
            if max_age > 0 and age > max_age:
                log.warning(
                    "signal_too_old_to_resume", signal_id=signal.id, news_id=signal.news_id, age_s=age
                )
                continue
            self._arrivals += 1
            seq = self._arrivals
            done = self._enter_flight(signal.coin, seq)
            tracked = _Tracked(signal, signal.created_at, seq)
            self._tracked[signal.coin] = tracked
            self._last_accepted[signal.coin] = max(
                signal.created_at, self._last_accepted.get(signal.coin, signal.created_at)
            )
            decision = self._start_execution(signal.news_id, signal, tracked, None)
            assert decision.execution is not None
            decision.execution.add_done_callback(
                functools.partial(self._leave_flight, signal.coin, seq, done)
            )
            log.warning("signal_resumed", signal_id=signal.id, news_id=signal.news_id, coin=signal.coin)
            resumed.append(signal.news_id)
        interrupted = await self.journal.interrupt_unfinished_news(interrupted_reason, keep=resumed)
        for news_id in interrupted:
            log.warning("news_interrupted", news_id=news_id, message="resumed if delivered again")
        return resumed, interrupted

    async def _submit(
        self, item: NewsItem, seq: int, now: datetime, parsed: ParseResult, started: float
    ) -> NewsDecision:
        cfg = self.settings
        check_headline = cfg.dedupe_window_s > 0 and bool(item.title.strip())
        norm_title = self._normalize(item.title)
        async with self._title_lock(norm_title):
            # Copies of one headline pass the dedupe check one at a time, so of two arriving
            # together exactly one passes. One journal read answers the id, the headline (other
            # ids) and the pause switch; ids and headlines still in flight here are in memory,
            # since their records may not be committed yet.
            if item.id in self._claimed:
                log.info("news_duplicate", news_id=item.id, source=item.source)
                return NewsDecision(item.id, None, DUPLICATE_ID, OUTCOME_DUPLICATE)
            since = now - timedelta(seconds=cfg.dedupe_window_s) if check_headline else None
            gate = await self.journal.news_gate(item.id, norm_title, since)
            if gate.outcome is not None and gate.outcome != NEWS_INTERRUPTED:
                log.info("news_duplicate", news_id=item.id, source=item.source)
                return NewsDecision(item.id, None, DUPLICATE_ID, OUTCOME_DUPLICATE)
            self._claimed.add(item.id)
            # Queued, not awaited: durable before the first order intent (see the module doc).
            record = self.journal.queue_news(item, OUTCOME_RECEIVED)
            record.add_done_callback(lambda _: self._claimed.discard(item.id))
            record.add_done_callback(_log_failed_write)
            seen = gate.headline_seen or self._seen_title(norm_title, now, cfg.dedupe_window_s)
            if check_headline:
                self._titles[norm_title] = now
            paused = gate.paused
            self._emit({"type": "news", "id": item.id, "title": item.title, "source": item.source})
            if seen:
                return await self._finish(item, None, OUTCOME_DUPLICATE, DUPLICATE_HEADLINE)

        if item.published_at is not None and cfg.max_age_s > 0:
            published = (
                item.published_at if item.published_at.tzinfo else item.published_at.replace(tzinfo=UTC)
            )
            age = (now - published).total_seconds()
            if age > cfg.max_age_s:
                return await self._finish(
                    item,
                    None,
                    OUTCOME_SKIPPED,
                    f"stale: published {age:.0f}s ago (max_age_s {cfg.max_age_s:g})",
                )

        signal = parsed.signal
        if signal is None:
            return await self._finish(item, None, OUTCOME_IGNORED, parsed.reason, parsed)
        log.info(
            "news_parsed",
            news_id=item.id,
            signal_id=signal.id,
            coin=signal.coin,
            side=signal.side.value,
            confidence=signal.confidence,
            since_submit_us=round((time.perf_counter() - started) * 1e6),
        )

        if signal.confidence < cfg.min_confidence:
            reason = f"low confidence: {signal.confidence:.2f} < min_confidence {cfg.min_confidence:g}"
            return await self._skip_signal(item, signal, reason, parsed)

        await self._seed_from_journal()
        last = self._last_accepted.get(signal.coin)
        if cfg.cooldown_s > 0 and last is not None and (now - last).total_seconds() < cfg.cooldown_s:
            waited = (now - last).total_seconds()
            reason = f"cooldown: last {signal.coin} signal {waited:.0f}s ago (cooldown_s {cfg.cooldown_s:g})"
            return await self._skip_signal(item, signal, reason, parsed)

        if paused:
            return await self._skip_signal(item, signal, "paused", parsed)

        tracked = _Tracked(signal, now, seq)
        await self._apply_conflict_rule(tracked)
        self._last_accepted[signal.coin] = now
        accepted = self.journal.queue_signal(signal, "accepted")  # durable before any order intent
        if self._crash_after_queue == item.id:  # test-only (module docstring)
            os._exit(137)
        self._emit(
            {
                "type": "signal",
                "id": signal.id,
                "news_id": item.id,
                "coin": signal.coin,
                "side": signal.side.value,
                "confidence": signal.confidence,
                "source": signal.source,
            }
        )
        decision = self._start_execution(item.id, signal, tracked, parsed)
        # The orders are on their way; the answer waits until the item and its accepted signal
        # are durable, so a crash after it is resumed at start-up (`resume_unfinished`).
        await asyncio.gather(record, accepted)
        return decision

    def _seen_title(self, norm_title: str, now: datetime, window_s: float) -> bool:
        """Whether this process handled the headline within the window (its row may be in flight)."""
        if len(self._titles) > _TITLE_MEMORY:
            cutoff = now - timedelta(seconds=window_s)
            self._titles = {t: at for t, at in self._titles.items() if at >= cutoff}
        at = self._titles.get(norm_title)
        return at is not None and (now - at).total_seconds() <= window_s

    # -- steps ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _title_lock(self, norm_title: str) -> AsyncIterator[None]:
        """Serialise items with the same headline only; different headlines go in parallel."""
        lock, users = self._title_locks.get(norm_title, (asyncio.Lock(), 0))
        self._title_locks[norm_title] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._title_locks[norm_title]
            if users <= 1:
                del self._title_locks[norm_title]
            else:
                self._title_locks[norm_title] = (lock, users - 1)

    async def _apply_conflict_rule(self, tracked: _Tracked) -> None:
        """Newer wins: an opposite signal on the same coin within the window is superseded."""
        window = self.settings.conflict_window_s
        coin = tracked.signal.coin
        previous = self._tracked.get(coin)
        older: _Tracked | None
        if previous is not None and previous.seq > tracked.seq:
            # This one arrived first but its journal calls finished later: it is the older.
            older, newer = tracked, previous
        else:
            self._tracked[coin] = tracked
            older, newer = previous, tracked
        if window <= 0 or older is None or older.superseded_by is not None:
            return
        if older.signal.side is newer.signal.side or (newer.at - older.at).total_seconds() > window:
            return
        older.superseded_by = newer.signal.id
        state = "after it acted" if older.started else "before it acted"
        await self.journal.update_signal(
            older.signal.id, "superseded", f"superseded by newer opposite signal {newer.signal.id} ({state})"
        )
        log.info(
            "signal_superseded",
            coin=coin,
            signal_id=older.signal.id,
            by=newer.signal.id,
            started=older.started,
        )

    async def _act(
        self, news_id: str, signal: Signal, tracked: _Tracked, parsed: ParseResult | None
    ) -> NewsDecision:
        earlier = [f for s, f in self._in_flight.get(signal.coin, {}).items() if s < tracked.seq]
        if earlier:  # arrival order per coin; shielded so our cancellation never ends theirs
            await asyncio.gather(*(asyncio.shield(f) for f in earlier))
        lock = self._coin_locks.setdefault(signal.coin, asyncio.Lock())
        async with lock:
            if tracked.superseded_by is not None:
                reason = f"superseded by newer opposite signal {tracked.superseded_by}"
                # Also here: the signal row may have been written after the supersede was recorded.
                await asyncio.gather(
                    self.journal.update_news(news_id, OUTCOME_SKIPPED, reason),
                    self.journal.update_signal(signal.id, "superseded", f"{reason} (before it acted)"),
                )
                return NewsDecision(news_id, signal, reason, OUTCOME_SKIPPED, parsed)
            tracked.started = True
            try:
                result = await self.act(signal)
            except Exception as exc:  # the item is journaled as failed; the pipeline lives on
                reason = f"failed: {type(exc).__name__}: {exc}"[:500]
                log.error(
                    "signal_act_failed", news_id=news_id, signal_id=signal.id, coin=signal.coin, error=reason
                )
                await self.journal.update_signal(signal.id, "failed", reason)
                await self.journal.update_news(news_id, OUTCOME_FAILED, reason)
                return NewsDecision(news_id, signal, reason, OUTCOME_FAILED, parsed)
        reason, ok = summarize(result)
        outcome = OUTCOME_SKIPPED if result == [] else OUTCOME_TRADED  # no venue to act on
        writes = [self.journal.update_news(news_id, outcome, reason)]
        if tracked.superseded_by is None:
            writes.append(self.journal.update_signal(signal.id, "executed" if ok else "partial", reason))
        await asyncio.gather(*writes)  # one group commit
        log.info("news_acted", news_id=news_id, signal_id=signal.id, coin=signal.coin, reason=reason)
        self._emit(
            {
                "type": "decision",
                "news_id": news_id,
                "signal_id": signal.id,
                "outcome": outcome,
                "reason": reason,
            }
        )
        return NewsDecision(news_id, signal, reason, outcome, parsed)

    async def _skip_signal(
        self, item: NewsItem, signal: Signal, reason: str, parsed: ParseResult
    ) -> NewsDecision:
        recorded = self.journal.record_signal(signal, "skipped", reason)
        decision, _ = await asyncio.gather(
            self._finish(item, signal, OUTCOME_SKIPPED, reason, parsed), recorded
        )
        return decision

    async def _finish(
        self,
        item: NewsItem,
        signal: Signal | None,
        outcome: NewsOutcome,
        reason: str,
        parsed: ParseResult | None = None,
    ) -> NewsDecision:
        await self.journal.update_news(item.id, outcome, reason)
        log.info("news_decided", news_id=item.id, source=item.source, outcome=outcome, reason=reason)
        self._emit({"type": "decision", "news_id": item.id, "outcome": outcome, "reason": reason})
        return NewsDecision(item.id, signal, reason, outcome, parsed)

    async def _seed_from_journal(self) -> None:
        """After a restart, the cooldown still counts from the last signal acted on before it."""
        if self._seeded:
            return
        self._seeded = True
        if self.settings.cooldown_s <= 0:
            return
        try:
            rows = await self.journal.recent_signals(500)
        except Exception as exc:
            log.warning("cooldown_seed_failed", error=repr(exc))
            return
        for row in rows:
            if row.get("status") in ("skipped",):
                continue
            created = row.get("created_at")
            if isinstance(created, str):
                created = datetime.fromisoformat(created)
            if isinstance(created, datetime):
                coin = str(row.get("coin"))
                if coin not in self._last_accepted or created > self._last_accepted[coin]:
                    self._last_accepted[coin] = created

    def _emit(self, event: dict[str, Any]) -> None:
        if self.publish is not None:
            try:
                self.publish(event)
            except Exception as exc:  # a broken subscriber never stops the news
                log.warning("publish_failed", error=repr(exc))

    # -- sources -------------------------------------------------------------------------

    async def start_sources(self) -> None:
        """Start every configured source (RSS, WebSocket, replay), each feeding `submit`."""
        for source in self.sources:
            await source.start()

    async def stop_sources(self) -> None:
        for source in self.sources:
            try:
                await source.stop()
            except Exception as exc:
                log.warning("source_stop_failed", source=source.name, error=repr(exc))


def build_pipeline(
    settings: Settings,
    journal: Journal,
    act: Act,
    *,
    tradable: Iterable[str] | None = None,
    publish: Callable[[dict[str, Any]], None] | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Pipeline:
    """The pipeline a bot runs: rules from `[news] rules`, filters from settings, sources from `[news]`."""
    from newstrader.news.sources import build_sources

    news = settings.news
    parser = Parser(load_rules(news.rules), tradable)
    pipeline = Pipeline(
        parser, journal, PipelineSettings.from_settings(settings), act, clock=clock, publish=publish
    )
    pipeline.sources = build_sources(news, pipeline.submit, journal)
    return pipeline


__all__ = [
    "OUTCOME_ACCEPTED",
    "NewsDecision",
    "Pipeline",
    "PipelineSettings",
    "build_pipeline",
    "summarize",
]
