"""Time exit: close a position once it has been held for `max_hold_s`, across restarts.

The deadline lives in the journal (control key `hold_deadline:<venue>:<coin>`), written when a
position opens or flips, so a restarted bot still knows it. The check reads the exchange first:
only what the venue really holds is closed, and deadlines of positions that are gone (a TP or SL
fired, a manual close) are dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from newstrader.autotrade.policy import ExitPolicy, hold_deadline_key
from newstrader.domain import Position, utcnow
from newstrader.venues.base import Venue, VenueError

if TYPE_CHECKING:
    from newstrader.autotrade.killswitch import KillSwitch
    from newstrader.journal import Journal

log = structlog.get_logger("newstrader.autotrade")


class TimeExits:
    """Keeps one hold deadline per open position and closes positions past it."""

    def __init__(
        self,
        venues: Mapping[str, Venue],
        journal: Journal,
        policy: ExitPolicy,
        kill_switch: KillSwitch,
    ) -> None:
        self.venues = venues
        self.journal = journal
        self.policy = policy
        self.kill_switch = kill_switch  # closes through the engine, triggers cancelled too

    async def deadline(self, venue: str, coin: str) -> dict[str, Any] | None:
        record = await self.journal.get_control(hold_deadline_key(venue, coin), None)
        return record if isinstance(record, dict) else None

    async def on_position_change(self, venue: str, coin: str, position: Position) -> None:
        """Start the clock when a position opens or flips; a top-up or trim keeps the old deadline."""
        key = hold_deadline_key(venue, coin)
        if position.is_flat:
            await self.journal.set_control(key, None)
            return
        if self.policy.max_hold_s is None:
            return
        side = position.side
        assert side is not None
        record = await self.deadline(venue, coin)
        if record is not None and record.get("side") == side.value:
            return
        opened = utcnow()
        deadline = opened + timedelta(seconds=self.policy.max_hold_s)
        await self.journal.set_control(
            key, {"side": side.value, "opened_at": opened.isoformat(), "deadline": deadline.isoformat()}
        )
        log.info("autotrade_hold_deadline_set", venue=venue, coin=coin, deadline=deadline.isoformat())

    async def run_once(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Close every position past its deadline, reading each venue first."""
        results = await asyncio.gather(
            *(self.check_venue(v, now=now) for v in self.venues.values()), return_exceptions=True
        )
        reports: list[dict[str, Any]] = []
        for name, result in zip(self.venues, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("autotrade_time_exit_check_failed", venue=name, error=str(result))
            else:
                reports.extend(result)
        return reports

    async def check_venue(
        self,
        venue: Venue,
        positions: Mapping[str, Position] | None = None,
        *,
        now: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Close `venue`'s positions past their deadline; `positions` is a fresh read, or None to read."""
        if positions is None:
            try:
                positions = await venue.positions()
            except VenueError as exc:
                log.warning("autotrade_time_exit_unreadable", venue=venue.name, error=str(exc))
                return []
        cached = await self.journal.cached_positions(venue.name)
        coins = set(positions) | {coin for (_v, coin) in cached}
        reports: list[dict[str, Any]] = []
        for coin in sorted(coins):
            record = await self.deadline(venue.name, coin)
            if record is None:
                continue
            position = positions.get(coin)
            if position is None or position.is_flat:
                # Closed outside the time exit (TP/SL, manual, liquidation): the clock stops.
                await self.journal.set_control(hold_deadline_key(venue.name, coin), None)
                continue
            if record.get("side") != (position.side.value if position.side else None):
                # Flipped without us seeing it: the new position starts its own clock.
                await self.journal.set_control(hold_deadline_key(venue.name, coin), None)
                await self.on_position_change(venue.name, coin, position)
                continue
            deadline = datetime.fromisoformat(str(record["deadline"]))
            if (now or utcnow()) < deadline:
                continue
            log.warning(
                "autotrade_time_exit",
                venue=venue.name,
                coin=coin,
                size=str(position.size),
                deadline=deadline.isoformat(),
            )
            # The operation id comes from the deadline: a restart that finds the same overdue
            # position runs the same operation, so a close sent before a crash is not resent.
            closed = await self.kill_switch.close(
                coin,
                venue.name,
                reason=f"max hold reached (deadline {deadline.isoformat()})",
                op_id=f"texit:{venue.name}:{coin}:{deadline.isoformat()}",
                event_kind="time_exit",
            )
            reports.extend(closed["venues"].values())
        return reports
