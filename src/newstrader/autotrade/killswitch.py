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

from newstrader.autotrade.policy import (
    LOSS_RESUME_BASELINE_KEY,
    PAUSED_KEY,
    PAUSED_REASON_KEY,
    PAUSED_SINCE_KEY,
    ExitPolicy,
    hold_deadline_key,
)
from newstrader.autotrade.stats import FillIngester
from newstrader.domain import ZERO, Fill, OutcomeStatus, VenueOutcome, utcnow
from newstrader.venues.base import Venue, VenueError

if TYPE_CHECKING:
    from newstrader.engine.executor import Executor
    from newstrader.journal import Journal

log = structlog.get_logger("newstrader.autotrade")


def close_report(outcome: VenueOutcome) -> dict[str, Any]:
    """What one close did on one venue: the size found, the orders sent, what it holds after."""
    remaining = outcome.exchange_size_after
    failed = outcome.status is OutcomeStatus.FAILED
    return {
        "venue": outcome.venue,
        "coin": outcome.coin,
        "size_before": None if outcome.exchange_size_before is None else str(outcome.exchange_size_before),
        "remaining": None if remaining is None else str(remaining),
        "flat": remaining == ZERO and not failed,
        "status": outcome.status.value,
        "orders": [
            {
                "client_id": o.client_id,
                "status": str(o.status),
                "filled_size": str(o.filled_size),
                "avg_price": None if o.avg_price is None else str(o.avg_price),
                "error": o.error,
            }
            for o in outcome.orders
        ],
        "errors": [outcome.reason] if failed and outcome.reason else [],
    }


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
        gateway: Executor,
        *,
        ingester: FillIngester | None = None,
    ) -> None:
        self.venues = venues
        self.journal = journal
        self.policy = policy
        self.gateway = gateway  # every order goes through the engine
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

    async def close(
        self,
        coin: str,
        venue: str | None = None,
        *,
        reason: str = "operator",
        op_id: str | None = None,
        event_kind: str = "close_position",
    ) -> dict[str, Any]:
        """Close `coin` on one venue (or all) through the engine, its triggers cancelled too."""
        outcomes = await self.gateway.close(coin, venue, op_id=op_id, reason=reason)
        for outcome in outcomes:
            await self._closed(outcome, event_kind, reason)
        return {"coin": coin, "venues": {o.venue: close_report(o) for o in outcomes}}

    async def _closed(self, outcome: VenueOutcome, kind: str, reason: str) -> None:
        """Journal one venue's close; a flat position's hold clock stops."""
        if outcome.exchange_size_after == ZERO:
            await self.journal.set_control(hold_deadline_key(outcome.venue, outcome.coin), None)
        await self._event(
            kind,
            venue=outcome.venue,
            coin=outcome.coin,
            exchange_size=outcome.exchange_size_after,
            detail=f"{reason}; size before {outcome.exchange_size_before}",
        )

    async def flatten(self, *, pause: bool = True, reason: str = "flatten") -> dict[str, Any]:
        """Close every position and cancel every trigger on every venue, then read to confirm.

        Pauses first by default: a kill switch that let the next headline reopen would not be one.
        """
        if pause:
            await self.pause(reason)
        outcomes = await self.gateway.flatten(reason=reason)
        for outcome in outcomes:
            if outcome.coin != "*":
                await self._closed(outcome, "flatten_close", reason)
        confirmed = await asyncio.gather(*(self._confirm(v) for v in self.venues.values()))
        by_venue: dict[str, dict[str, Any]] = {}
        for name, confirmation in zip(self.venues, confirmed, strict=True):
            mine = [o for o in outcomes if o.venue == name]
            errors = [f"{o.coin}: {o.reason}" for o in mine if o.status is OutcomeStatus.FAILED]
            by_venue[name] = {
                **confirmation,
                "closed": [close_report(o) for o in mine if o.coin != "*"],
                "errors": errors + confirmation["errors"],
            }
        flat = all(r["flat"] for r in by_venue.values())
        log.warning("autotrade_flatten_done", flat=flat, reason=reason)
        return {"flat": flat, "paused": await self.is_paused(), "venues": by_venue}

    @staticmethod
    async def _confirm(venue: Venue) -> dict[str, Any]:
        """The confirmation: what the exchange says now, not what we sent."""
        try:
            positions, orders = await asyncio.gather(venue.positions(), venue.open_orders())
        except VenueError as exc:
            return {"flat": False, "positions": {}, "open_orders": -1, "errors": [f"confirm read: {exc}"]}
        remaining = {c: str(p.size) for c, p in positions.items() if not p.is_flat}
        return {
            "flat": not remaining and not orders,
            "positions": remaining,
            "open_orders": len(orders),
            "errors": [],
        }

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
