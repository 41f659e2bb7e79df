"""Trading statistics from the exchanges' own fills: realized PnL, fees, win rate, hold, latency.

Every money figure is summed from the fills the venues reported (their realized PnL and fee),
never from our estimates. Fills are first ingested into the journal (idempotent by venue and
fill id), then grouped per venue, coin and news source. A fill's source is the source of the
signal whose order opened the position it belongs to — so a TP, SL or time exit that closes a
position counts for the news that opened it. A *trade* is one position from flat (or a flip)
back to flat (or the next flip); it is a win when its realized PnL net of fees is positive.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from newstrader.autotrade.policy import fills_cursor_key
from newstrader.domain import ZERO, Fill, plain, utcnow
from newstrader.venues.account import pushed_state
from newstrader.venues.base import Venue, VenueError

if TYPE_CHECKING:
    from newstrader.journal import Journal

log = structlog.get_logger("newstrader.autotrade")

UNKNOWN_SOURCE = "unknown"
CURSOR_OVERLAP = timedelta(minutes=5)  # re-read a little: a fill may be reported late
FIRST_LOOKBACK = timedelta(days=7)
ROW_LIMIT = 1_000_000  # the journal's recent_* views take a limit; we want every row


async def ingest_fills(
    venues: Mapping[str, Venue], journal: Journal, pushed: Mapping[str, list[Fill]] | None = None
) -> dict[str, int]:
    """Copy new exchange fills into the journal; returns venue → fills newly recorded.

    A venue in `pushed` takes its fills from there (its account stream) instead of a read."""
    added: dict[str, int] = {}
    for name, venue in venues.items():
        cursor = await journal.get_control(fills_cursor_key(name), None)
        since = datetime.fromisoformat(cursor) - CURSOR_OVERLAP if cursor else utcnow() - FIRST_LOOKBACK
        if pushed is not None and name in pushed:
            fills = [f for f in pushed[name] if f.time >= since]
        else:
            try:
                fills = await venue.fills(since)
            except VenueError as exc:
                log.warning("autotrade_fills_unreadable", venue=name, error=str(exc))
                continue
        count = 0
        for fill in fills:
            if await journal.record_fill(fill):
                count += 1
        if fills:
            newest = max(f.time for f in fills)
            if not cursor or newest > datetime.fromisoformat(cursor):
                await journal.set_control(fills_cursor_key(name), newest.isoformat())
        added[name] = count
        if count:
            log.info("autotrade_fills_ingested", venue=name, new=count)
    return added


class FillIngester:
    """`ingest_fills` with a floor between reads: a dashboard refreshing its stats on every event
    must not spend the venues' request budget (a Hyperliquid fills read weighs 20 of 1200/min).

    A read is skipped when the last one is younger than `min_interval_s` and nothing was marked
    stale since; `force=True` (the loss limit, a monitor turn that saw a change) always reads.
    Between REST reads (at least every `rest_every_s` per venue) the fills come from the venue's
    account stream when it has been connected without a gap since the last read: no request.
    The REST read overlaps its cursor (`CURSOR_OVERLAP`), so a push lost to a fault is found then.
    """

    def __init__(
        self,
        venues: Mapping[str, Venue],
        journal: Journal,
        min_interval_s: float = 2.0,
        rest_every_s: float = 60.0,
    ) -> None:
        self.venues = venues
        self.journal = journal
        self.min_interval_s = min_interval_s
        self.rest_every_s = rest_every_s
        self._last_at: float | None = None
        self._stale = True
        self._rest: dict[str, tuple[float, int]] = {}  # venue → (its last REST read began, fills_seen then)

    def mark_stale(self) -> None:
        """A position changed: the next read must not be skipped."""
        self._stale = True

    async def ingest(self, *, force: bool = False) -> dict[str, int] | None:
        """Ingest new fills (venue → count), or None when skipped as recent enough."""
        now = time.monotonic()
        recent = self._last_at is not None and now - self._last_at < self.min_interval_s
        if not force and not self._stale and recent:
            return None
        self._stale = False
        pushed: dict[str, list[Fill]] = {}
        read: dict[str, tuple[float, int]] = {}  # venues read over REST: (began, fills_seen then)
        for name, venue in self.venues.items():
            state = pushed_state(venue)
            if state is None:
                continue
            last = self._rest.get(name)
            fills = None
            if last is not None and state.now() - last[0] < self.rest_every_s:
                fills = state.fills_since_read(*last)
            if fills is None:
                read[name] = (state.now(), state.fills_seen)
            else:
                pushed[name] = fills
        added = await ingest_fills(self.venues, self.journal, pushed)
        self._rest.update((name, began) for name, began in read.items() if name in added)
        self._last_at = now
        if len(added) < len(self.venues):
            self._stale = True  # a venue could not be read: try again next time
        return added


@dataclass(slots=True)
class Trade:
    """One position's life on one venue: opened by a fill, closed (or flipped) by a later one."""

    venue: str
    coin: str
    source: str
    side: str
    opened_at: datetime
    closed_at: datetime | None = None
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO

    @property
    def net(self) -> Decimal:
        return self.realized_pnl - self.fees

    @property
    def hold_s(self) -> float | None:
        return None if self.closed_at is None else (self.closed_at - self.opened_at).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "coin": self.coin,
            "source": self.source,
            "side": self.side,
            "opened_at": self.opened_at.isoformat(),
            "closed_at": None if self.closed_at is None else self.closed_at.isoformat(),
            "realized_pnl": plain(self.realized_pnl),
            "fees": plain(self.fees),
            "net_pnl": plain(self.net),
            "hold_s": self.hold_s,
        }


@dataclass(slots=True)
class Bucket:
    """Sums over the fills and closed trades of one group (a venue, a coin, a source, or all)."""

    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    volume_usd: Decimal = ZERO
    fills: int = 0
    trades: int = 0
    wins: int = 0
    hold_s_total: float = 0.0

    def add_trade(self, trade: Trade) -> None:
        self.trades += 1
        self.wins += 1 if trade.net > 0 else 0
        self.hold_s_total += trade.hold_s or 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "realized_pnl": plain(self.realized_pnl),
            "fees": plain(self.fees),
            "net_pnl": plain(self.realized_pnl - self.fees),
            "volume_usd": plain(self.volume_usd),
            "fills": self.fills,
            "trades": self.trades,
            "wins": self.wins,
            "win_rate": round(self.wins / self.trades, 4) if self.trades else None,
            "avg_hold_s": round(self.hold_s_total / self.trades, 3) if self.trades else None,
        }


@dataclass(slots=True)
class _Book:
    """Running position of one (venue, coin) while replaying its fills."""

    size: Decimal = ZERO
    trade: Trade | None = None


@dataclass(slots=True)
class Ledger:
    """Fills replayed into trades and grouped sums."""

    total: Bucket = field(default_factory=Bucket)
    by_venue: dict[str, Bucket] = field(default_factory=dict)
    by_coin: dict[str, Bucket] = field(default_factory=dict)
    by_source: dict[str, Bucket] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    open_trades: list[Trade] = field(default_factory=list)


@dataclass(slots=True)
class SourceIndex:
    """Which news source an order came from, by our client id or by the venue's order id.

    Venues do not always echo the client id on a fill (Hyperliquid's fills carry only the oid),
    so the venue's order id, journaled with each order's result, is the second key.
    """

    by_client_id: dict[str, str] = field(default_factory=dict)
    by_order_id: dict[tuple[str, str], str] = field(default_factory=dict)

    def source_of(self, fill: Fill) -> str | None:
        if fill.client_id and fill.client_id in self.by_client_id:
            return self.by_client_id[fill.client_id]
        if fill.venue_order_id:
            return self.by_order_id.get((fill.venue, fill.venue_order_id))
        return None


def build_ledger(fills: Iterable[Fill], sources: SourceIndex | Mapping[str, str]) -> Ledger:
    """Replay fills in time order into trades and per venue / coin / source sums."""
    if not isinstance(sources, SourceIndex):
        sources = SourceIndex(by_client_id=dict(sources))
    ledger = Ledger()
    books: dict[tuple[str, str], _Book] = {}
    for fill in sorted(fills, key=lambda f: (f.time, f.fill_id)):
        book = books.setdefault((fill.venue, fill.coin), _Book())
        signed = fill.size if fill.is_buy else -fill.size
        before, after = book.size, book.size + signed
        reducing = before != 0 and (signed > 0) != (before > 0)
        closed_size = min(abs(before), fill.size) if reducing else ZERO
        opened_size = fill.size - closed_size
        # A flip's fee is shared by its closing and opening parts, pro rata of size.
        close_fee = fill.fee * closed_size / fill.size if fill.size else ZERO
        fill_source = sources.source_of(fill) or UNKNOWN_SOURCE

        if before != 0 and book.trade is None:
            # History starts mid-position: its opener is unknown.
            book.trade = Trade(fill.venue, fill.coin, UNKNOWN_SOURCE, _side(before), fill.time)
        owner = book.trade
        if closed_size > 0 and owner is not None:
            fee = close_fee
            owner.realized_pnl += fill.realized_pnl
            owner.fees += fee
            _add_money(ledger, fill, owner.source, fill.realized_pnl, fee)
            if after == 0 or (after > 0) != (before > 0):
                owner.closed_at = fill.time
                ledger.trades.append(owner)
                for bucket in _buckets(ledger, owner.venue, owner.coin, owner.source):
                    bucket.add_trade(owner)
                book.trade = None
        if opened_size > 0:
            if book.trade is None:
                book.trade = Trade(fill.venue, fill.coin, fill_source, _side(after), fill.time)
            fee = fill.fee - close_fee
            realized = fill.realized_pnl if closed_size == 0 else ZERO
            book.trade.realized_pnl += realized
            book.trade.fees += fee
            _add_money(ledger, fill, book.trade.source, realized, fee)
        counted_for = book.trade or owner
        _count_fill(ledger, fill, counted_for.source if counted_for is not None else fill_source)
        book.size = after
    ledger.open_trades = [b.trade for b in books.values() if b.trade is not None]
    return ledger


def _side(size: Decimal) -> str:
    return "long" if size > 0 else "short"


def _buckets(ledger: Ledger, venue: str, coin: str, source: str) -> tuple[Bucket, ...]:
    return (
        ledger.total,
        ledger.by_venue.setdefault(venue, Bucket()),
        ledger.by_coin.setdefault(coin, Bucket()),
        ledger.by_source.setdefault(source, Bucket()),
    )


def _add_money(ledger: Ledger, fill: Fill, source: str, realized: Decimal, fee: Decimal) -> None:
    for bucket in _buckets(ledger, fill.venue, fill.coin, source):
        bucket.realized_pnl += realized
        bucket.fees += fee


def _count_fill(ledger: Ledger, fill: Fill, source: str) -> None:
    """Count a fill and its notional once per group (a flip's two parts are one fill)."""
    for bucket in _buckets(ledger, fill.venue, fill.coin, source):
        bucket.fills += 1
        bucket.volume_usd += fill.size * fill.price


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (no interpolation): a latency that was actually observed."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return round(ordered[rank - 1], 3)


def signal_to_fill_ms(outcomes: Iterable[Mapping[str, Any]], start: str = "received") -> list[float]:
    """`start` → filled, in ms, from each outcome's latency ledger (monotonic stamps).

    "received" is when the edge (webhook handler, feed reader) got the item; "published" is
    the source's own publication time, on outcomes whose source gave one."""
    values: list[float] = []
    for row in outcomes:
        stamps = row.get("latency") or {}
        if start in stamps and "filled" in stamps:
            values.append((float(stamps["filled"]) - float(stamps[start])) * 1000.0)
    return values


async def source_index(journal: Journal) -> SourceIndex:
    """Orders → signals → news source (the news item's when the signal lacks one)."""
    orders = await journal.recent_orders(ROW_LIMIT)
    signals = {s["id"]: s for s in await journal.recent_signals(ROW_LIMIT)}
    news_sources: dict[str, str] | None = None
    index = SourceIndex()
    for order in orders:
        signal = signals.get(order["signal_id"])
        if signal is None:
            continue
        source = signal.get("source") or ""
        if not source or source == UNKNOWN_SOURCE:
            if news_sources is None:
                news_sources = {n["id"]: n["source"] for n in await journal.recent_news(ROW_LIMIT)}
            source = news_sources.get(signal.get("news_id", ""), "") or UNKNOWN_SOURCE
        index.by_client_id[order["client_id"]] = source
        if order.get("venue_order_id"):
            index.by_order_id[(order["venue"], str(order["venue_order_id"]))] = source
    return index


async def compute_stats(journal: Journal, since: datetime | None = None) -> dict[str, Any]:
    """A JSON-friendly summary for `/api/stats`, `newstrader stats` and the CSV export."""
    fills = await journal.fills(since=since)
    ledger = build_ledger(fills, await source_index(journal))
    outcomes = await journal.recent_outcomes(ROW_LIMIT)
    latencies = signal_to_fill_ms(outcomes)
    from_published = signal_to_fill_ms(outcomes, "published")
    total = ledger.total.as_dict()
    return {
        "generated_at": utcnow().isoformat(),
        "since": None if since is None else since.isoformat(),
        **total,
        "open_trades": len(ledger.open_trades),
        "signal_to_fill_ms_p50": percentile(latencies, 50),
        "signal_to_fill_ms_p95": percentile(latencies, 95),
        "signal_to_fill_samples": len(latencies),
        # News to fill: from our receipt of the item, and from the source's publication.
        "news_to_fill_ms_p50": percentile(latencies, 50),
        "news_to_fill_ms_p95": percentile(latencies, 95),
        "published_to_fill_ms_p50": percentile(from_published, 50),
        "published_to_fill_ms_p95": percentile(from_published, 95),
        "published_to_fill_samples": len(from_published),
        "by_venue": {k: v.as_dict() for k, v in sorted(ledger.by_venue.items())},
        "by_coin": {k: v.as_dict() for k, v in sorted(ledger.by_coin.items())},
        "by_source": {k: v.as_dict() for k, v in sorted(ledger.by_source.items())},
        "recent_trades": [t.as_dict() for t in ledger.trades[-50:]][::-1],
    }


CSV_COLUMNS = (
    "group",
    "key",
    "realized_pnl",
    "fees",
    "net_pnl",
    "volume_usd",
    "fills",
    "trades",
    "wins",
    "win_rate",
    "avg_hold_s",
)


def stats_csv(stats: Mapping[str, Any]) -> str:
    """The summary as CSV: one row for the total, then one per venue, coin and source."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerow({"group": "total", "key": "all", **stats})
    for group in ("by_venue", "by_coin", "by_source"):
        for key, row in (stats.get(group) or {}).items():
            writer.writerow({"group": group.removeprefix("by_"), "key": key, **row})
    return out.getvalue()


def fills_csv(fills: Iterable[Fill]) -> str:
    """Every journaled exchange fill as CSV, for a spreadsheet or an accountant."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["time", "venue", "coin", "side", "size", "price", "fee", "realized_pnl", "fill_id", "client_id"]
    )
    for f in sorted(fills, key=lambda f: (f.time, f.fill_id)):
        writer.writerow(
            [
                f.time.isoformat(),
                f.venue,
                f.coin,
                "buy" if f.is_buy else "sell",
                f.size,
                f.price,
                f.fee,
                f.realized_pnl,
                f.fill_id,
                f.client_id or "",
            ]
        )
    return out.getvalue()


async def export_csv(journal: Journal, path: Path, since: datetime | None = None) -> Path:
    """Write the summary CSV to `path` and the fills next to it (`<stem>-fills.csv`)."""
    stats = await compute_stats(journal, since=since)
    path.write_text(stats_csv(stats))
    path.with_name(f"{path.stem}-fills.csv").write_text(fills_csv(await journal.fills(since=since)))
    return path
