"""Optional dead-man switch: while the bot is healthy it keeps pushing a scheduled cancel-all ahead.

Hyperliquid's `scheduleCancel` cancels every open order of the account at a given time. Refreshed
every third of `dead_man_switch_s`, it never fires while we run; if the bot dies or hangs, the
venue cancels everything resting — which includes our TP/SL triggers, so this trades "no stray
orders after a crash" against "protection survives a crash". That is why it is off by default.
Hyperliquid allows at most 10 fired schedules per day and needs the time ≥ 5 s ahead.

A venue takes part when it declares the `SchedulesCancel` capability (venues/base.py); others are
skipped with one log line.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import structlog

from newstrader.domain import utcnow
from newstrader.venues.base import SchedulesCancel, Venue, VenueError

log = structlog.get_logger("newstrader.autotrade")

MIN_AHEAD_S = 5.0  # Hyperliquid refuses a scheduled cancel nearer than this
SEND_ALLOWANCE_S = 1.0


def supports_dead_man(venue: Venue) -> bool:
    return isinstance(venue, SchedulesCancel)


class DeadManSwitch:
    """Refreshes a venue-side scheduled cancel for as long as the bot's event loop runs."""

    def __init__(self, venues: Mapping[str, Venue], window_s: float) -> None:
        self.venues: dict[str, SchedulesCancel] = {
            n: v for n, v in venues.items() if isinstance(v, SchedulesCancel)
        }
        self.window_s = window_s
        self.last_armed: dict[str, str] = {}
        for name in venues:
            if name not in self.venues:
                log.info("autotrade_dead_man_unsupported", venue=name)

    async def refresh(self) -> dict[str, str]:
        """Move every venue's scheduled cancel to now + window; returns venue → deadline (ISO)."""
        # The venue wants the time ≥ 5 s ahead *when it receives it*: leave room for the trip.
        at = utcnow() + timedelta(seconds=max(self.window_s, MIN_AHEAD_S + SEND_ALLOWANCE_S))
        for name, venue in self.venues.items():
            try:
                await venue.schedule_cancel(at)
            except VenueError as exc:
                log.warning("autotrade_dead_man_refresh_failed", venue=name, error=str(exc))
                continue
            self.last_armed[name] = at.isoformat()
        return dict(self.last_armed)

    async def disarm(self) -> None:
        """Remove the scheduled cancel (a clean shutdown keeps its resting TP/SL)."""
        for name, venue in self.venues.items():
            try:
                await venue.schedule_cancel(None)
            except VenueError as exc:
                log.warning("autotrade_dead_man_disarm_failed", venue=name, error=str(exc))
            self.last_armed.pop(name, None)

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh every window/3 seconds until `stop` is set."""
        if not self.venues:
            return
        period = max(self.window_s / 3, 1.0)
        while not stop.is_set():
            await self.refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=period)

    def status(self) -> dict[str, Any]:
        return {"window_s": self.window_s, "armed_until": dict(self.last_armed)}
