"""Kill switch: pause, resume, flatten, close one coin, and the daily loss limit.

The paused flag is the journal control key `paused` (the news pipeline reads it before acting),
so a pause survives a restart. Flatten cancels every trigger and closes every position on every
venue with reduce-only orders, then reads the exchanges again and reports what it found there.
The daily loss is computed from the exchanges' own fills (realized PnL minus fees since UTC
midnight), never from our estimates.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog

from newstrader.autotrade.closing import CloseReport, LockFor, OrderDone, close_position
from newstrader.autotrade.policy import (
    LOSS_RESUME_BASELINE_KEY,
    PAUSED_KEY,
    PAUSED_REASON_KEY,
    PAUSED_SINCE_KEY,
    ExitPolicy,
    hold_deadline_key,
)
from newstrader.autotrade.stats import FillIngester
from newstrader.domain import ZERO, Fill, utcnow
from newstrader.venues.base import Venue, VenueError

if TYPE_CHECKING:
    from newstrader.journal import Journal

log = structlog.get_logger("newstrader.autotrade")


_CLOSE_EVENT_KINDS = {"close": "close_position", "flat": "flatten_close", "texit": "time_exit"}


def utc_midnight(now: datetime | None = None) -> datetime:
    """The start of the current UTC day: the daily loss limit counts from here."""
    now = now or utcnow()
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def net_realized(fills: list[Fill]) -> Decimal:
    """Realized PnL minus fees over `fills`, as the exchange reported them."""
    return sum((f.realized_pnl - f.fee for f in fills), ZERO)


class KillSwitch:
    """Pause / resume / flatten / close, plus the automatic pause on the daily loss limit."""

    def __init__(
        self,
        venues: Mapping[str, Venue],
        journal: Journal,
        policy: ExitPolicy,
        *,
        lock_for: LockFor | None = None,
        order_done: OrderDone | None = None,
        ingester: FillIngester | None = None,
    ) -> None:
        self.venues = venues
        self.journal = journal
        self.policy = policy
        self.lock_for = lock_for
        self.order_done = order_done  # tells the engine our order changed the coin (read freshness)
        self._loss_lock = asyncio.Lock()
        self.ingester = ingester or FillIngester(venues, journal)

    # -- pause / resume ---------------------------------------------------------------

    async def is_paused(self) -> bool:
        return bool(await self.journal.get_control(PAUSED_KEY, False))

    async def pause(self, reason: str = "operator") -> dict[str, Any]:
        """Stop opening positions (existing ones and their triggers stay)."""
        await self.journal.set_control(PAUSED_KEY, True)
        await self.journal.set_control(PAUSED_REASON_KEY, reason)
        await self.journal.set_control(PAUSED_SINCE_KEY, utcnow().isoformat(timespec="seconds"))
        await self._event("paused", detail=reason)
        log.warning("autotrade_paused", reason=reason)
        return {"paused": True, "reason": reason}

    async def resume(self) -> dict[str, Any]:
        """Trade again. After today's loss limit paused it, the limit counts again from here."""
        if self.policy.daily_loss_limit_usd is not None:
            with contextlib.suppress(VenueError):
                # The operator accepted today's loss so far; pause again only if it grows.
                today = await self.daily_net_pnl()
                await self.journal.set_control(
                    LOSS_RESUME_BASELINE_KEY,
                    {"day": utc_midnight().date().isoformat(), "net_pnl": str(today)},
                )
        await self.journal.set_control(PAUSED_KEY, False)
        await self.journal.set_control(PAUSED_REASON_KEY, None)
        await self.journal.set_control(PAUSED_SINCE_KEY, None)
        await self._event("resumed", detail="operator")
        log.warning("autotrade_resumed")
        return {"paused": False, "reason": None}

    async def status(self) -> dict[str, Any]:
        return {
            "paused": await self.is_paused(),
            "reason": await self.journal.get_control(PAUSED_REASON_KEY, None),
            "since": await self.journal.get_control(PAUSED_SINCE_KEY, None),
        }

    # -- daily loss limit -------------------------------------------------------------

    async def daily_net_pnl(self) -> Decimal:
        """Realized PnL minus fees since UTC midnight over every venue, from the exchanges' fills.

        The venues' new fills are ingested into the journal first (one read per venue from the
        last cursor), then summed there: the same exchange-reported figures, read once.
        """
        since = utc_midnight()
        added = await self.ingester.ingest(force=True) or {}
        missing = [name for name in self.venues if name not in added]
        if missing:
            raise VenueError(f"fills unreadable on {', '.join(missing)}", venue=missing[0])
        fills = [f for f in await self.journal.fills(since=since) if f.venue in self.venues]
        return net_realized(fills)

    async def check_daily_loss(self) -> bool:
        """Pause (and journal why) when today's net realized PnL is below −limit; True if it paused."""
        limit = self.policy.daily_loss_limit_usd
        if limit is None:
            return False
        async with self._loss_lock:  # the monitor and a trade may ask at once: one pause, one record
            return await self._check_daily_loss(limit)

    async def _check_daily_loss(self, limit: Decimal) -> bool:
        try:
            today = await self.daily_net_pnl()
        except VenueError as exc:
            log.warning("autotrade_daily_loss_unreadable", venue=exc.venue, error=str(exc))
            return False
        floor = -limit
        baseline = await self.journal.get_control(LOSS_RESUME_BASELINE_KEY, None)
        if isinstance(baseline, dict) and baseline.get("day") == utc_midnight().date().isoformat():
            # The operator resumed after the limit and accepted the loss so far: the limit
            # applies again from there, so another `limit` of loss today pauses again.
            floor = min(floor, Decimal(str(baseline.get("net_pnl", "0"))) - limit)
        if today > floor:
            return False
        if await self.is_paused():
            return False
        reason = (
            f"daily loss limit: net realized {today} USD since UTC midnight"
            f" (pauses at {floor} USD; limit {limit} USD)"
        )
        log.error("autotrade_daily_loss_limit", net_realized=str(today), limit=str(limit))
        await self._event("daily_loss_limit", detail=reason)
        await self.pause(reason)
        return True

    # -- closing ----------------------------------------------------------------------

    async def close(self, coin: str, venue: str | None = None, *, reason: str = "operator") -> dict[str, Any]:
        """Close `coin` on one venue (or all), cancelling its triggers; reports what each venue holds."""
        names = [venue] if venue is not None else list(self.venues)
        unknown = [n for n in names if n not in self.venues]
        if unknown:
            raise ValueError(f"unknown venue {unknown[0]!r}; configured: {', '.join(self.venues)}")
        reports = await asyncio.gather(
            *(self.close_one(self.venues[n], coin, tag="close", reason=reason) for n in names)
        )
        return {"coin": coin, "venues": {r.venue: r.as_dict() for r in reports}}

    async def close_one(self, venue: Venue, coin: str, *, tag: str, reason: str) -> CloseReport:
        """Cancel `coin`'s triggers and close it on one venue, under the engine's (venue, coin) lock."""
        async with self.lock(venue.name, coin):
            cancel_error = await self._cancel_triggers(venue, coin)
            report = await close_position(venue, coin, journal=self.journal, tag=tag, reason=reason)
            if report.orders and self.order_done is not None:
                self.order_done(venue.name, coin)
            if cancel_error:
                report.errors.insert(0, cancel_error)
            if report.flat:
                await self.journal.set_control(hold_deadline_key(venue.name, coin), None)
            await self._event(
                _CLOSE_EVENT_KINDS.get(tag, f"{tag}_close"),
                venue=venue.name,
                coin=coin,
                exchange_size=report.remaining,
                detail=f"{reason}; size before {report.size_before}",
            )
            return report

    async def flatten(self, *, pause: bool = True, reason: str = "flatten") -> dict[str, Any]:
        """Cancel every trigger and close every position on every venue, then read to confirm.

        Pauses first by default: a kill switch that let the next headline reopen would not be one.
        """
        if pause:
            await self.pause(reason)
        results = await asyncio.gather(*(self._flatten_venue(v, reason) for v in self.venues.values()))
        by_venue = dict(zip(self.venues, results, strict=True))
        flat = all(r["flat"] and r["open_orders"] == 0 for r in by_venue.values())
        log.warning("autotrade_flatten_done", flat=flat, reason=reason)
        return {"flat": flat, "paused": await self.is_paused(), "venues": by_venue}

    async def _flatten_venue(self, venue: Venue, reason: str) -> dict[str, Any]:
        errors: list[str] = []
        closed: list[dict[str, Any]] = []
        for _round in range(2):
            try:
                positions = await venue.positions()
                orders = await venue.open_orders()
            except VenueError as exc:
                errors.append(f"read: {exc}")
                break
            coins = {c for c, p in positions.items() if not p.is_flat} | {o.coin for o in orders}
            if not coins:
                break
            reports = await asyncio.gather(
                *(self.close_one(venue, coin, tag="flat", reason=reason) for coin in sorted(coins))
            )
            for report in reports:
                closed.append(report.as_dict())
                errors.extend(f"{report.coin}: {e}" for e in report.errors)
            await self._cancel_all_orders(venue, errors)
        # The confirmation: what the exchange says now, not what we sent.
        remaining: dict[str, str] = {}
        open_orders = -1
        try:
            positions = await venue.positions()
            remaining = {c: str(p.size) for c, p in positions.items() if not p.is_flat}
            open_orders = len(await venue.open_orders())
        except VenueError as exc:
            errors.append(f"confirm read: {exc}")
        return {
            "flat": not remaining and open_orders == 0,
            "positions": remaining,
            "open_orders": open_orders,
            "closed": closed,
            "errors": errors,
        }

    async def _cancel_all_orders(self, venue: Venue, errors: list[str]) -> None:
        """Cancel whatever still rests (triggers and plain orders) coin by coin."""
        try:
            orders = await venue.open_orders()
        except VenueError as exc:
            errors.append(f"open orders: {exc}")
            return
        for coin in sorted({o.coin for o in orders}):
            error = await self._cancel_triggers(venue, coin)
            if error:
                errors.append(error)

    async def _cancel_triggers(self, venue: Venue, coin: str) -> str | None:
        try:
            await venue.cancel_triggers(coin)
        except VenueError as exc:
            log.error("autotrade_cancel_triggers_failed", venue=venue.name, coin=coin, error=str(exc))
            return f"cancel triggers: {exc}"
        return None

    def lock(self, venue: str, coin: str) -> contextlib.AbstractAsyncContextManager[Any]:
        return self.lock_for(venue, coin) if self.lock_for is not None else contextlib.nullcontext()

    async def _event(
        self,
        kind: str,
        *,
        venue: str = "",
        coin: str = "",
        exchange_size: Decimal | None = None,
        detail: str = "",
    ) -> None:
        try:
            await self.journal.record_event(kind, venue, coin, exchange_size, None, detail)
        except Exception as exc:  # the record must not stop a kill switch
            log.error("autotrade_journal_event_failed", kind=kind, error=str(exc))
