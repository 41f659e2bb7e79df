"""The auto trader: exchange-side TP/SL, time exits, kill switch, dead-man switch and statistics.

`AutoTrader` is what the Bot builds once and hands to the Executor as its `TradeHooks`. Its
monitor loop reads every venue (the exchange first), cancels triggers orphaned by a fired TP or
SL, closes positions past their hold deadline, ingests fills and checks the daily loss limit.
It runs once immediately at start-up, so a position whose deadline passed while the bot was
down is closed right after the restart, and a position left without TP/SL is protected again.

The monitor turns every 5 s (`NEWSTRADER_AUTOTRADE_CHECK_INTERVAL_S` overrides it; tests use it).
Journal events it writes: protection_failed, protection_close, protection_restored, time_exit,
close_position, flatten_close, paused, resumed, daily_loss_limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from newstrader.autotrade.deadman import DeadManSwitch
from newstrader.autotrade.exits import TimeExits
from newstrader.autotrade.killswitch import KillSwitch
from newstrader.autotrade.policy import ExitPolicy
from newstrader.autotrade.stats import FillIngester, compute_stats, export_csv
from newstrader.autotrade.tpsl import AutoTradeHooks, Protection, wanted_triggers
from newstrader.config import ExitsSettings
from newstrader.domain import Position
from newstrader.engine.operations import new_operation_id
from newstrader.venues.account import read_positions
from newstrader.venues.base import Venue, VenueError

if TYPE_CHECKING:
    from newstrader.engine.executor import Executor
    from newstrader.journal import Journal

log = structlog.get_logger("newstrader.autotrade")

FULL_EVERY_S = 60.0  # the monitor's full turn (open orders, fills) at least this often


class AutoTrader:
    """Owns every auto-trading part; is itself the engine's `TradeHooks`."""

    def __init__(
        self,
        venues: Mapping[str, Venue],
        journal: Journal,
        policy: ExitPolicy,
        gateway: Executor,
    ) -> None:
        self.venues = venues
        self.journal = journal
        self.policy = policy
        self.gateway = gateway  # the engine: every order the auto trader wants goes through it
        self.protection = Protection(venues, journal, self.policy, gateway)
        self.fills = FillIngester(venues, journal)
        self.kill_switch = KillSwitch(venues, journal, self.policy, gateway, ingester=self.fills)
        self.exits = TimeExits(venues, journal, self.policy, self.kill_switch)
        self.hooks = AutoTradeHooks(self.protection, self.exits, after=self._position_changed)
        self.dead_man = (
            DeadManSwitch(venues, self.policy.dead_man_switch_s)
            if self.policy.dead_man_switch_s is not None
            else None
        )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._loss_check: asyncio.Task[bool] | None = None
        self.last_run: dict[str, Any] = {}
        self._last_sizes: dict[str, dict[str, Decimal]] = {}
        self._dirty: set[str] = set()  # venues the engine changed since the last monitor turn
        self._last_full = 0.0
        # Several bots on one journal (cluster/): the monitor acts only on accounts this one owns.
        self.owns: Callable[[str], bool] = lambda _venue: True

    # -- TradeHooks -------------------------------------------------------------------

    async def after_position_change(
        self, venue: str, coin: str, position: Position, fill_price: Decimal | None, *, op_id: str = ""
    ) -> None:
        await self.hooks.after_position_change(venue, coin, position, fill_price, op_id=op_id)

    def _position_changed(self, venue: str, coin: str, position: Position) -> None:
        self._dirty.add(venue)
        self.fills.mark_stale()
        # A change may have realized a loss: check the limit soon, without holding up the engine.
        if self.policy.daily_loss_limit_usd is None:
            return
        if self._loss_check is None or self._loss_check.done():
            self._loss_check = asyncio.get_running_loop().create_task(self.kill_switch.check_daily_loss())

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Run one check at once (start-up time exits), then keep monitoring in the background."""
        self._stop.clear()
        try:
            await self.run_once(full=True)
        except Exception as exc:  # the bot still starts; the monitor's next turn tries again
            log.error("autotrade_startup_check_failed", error=repr(exc))
        self._tasks.append(asyncio.create_task(self._monitor(), name="autotrade-monitor"))
        if self.dead_man is not None:
            self._tasks.append(asyncio.create_task(self.dead_man.run(self._stop), name="autotrade-deadman"))

    async def stop(self) -> None:
        """Stop the loops; a clean stop disarms the dead-man switch so resting TP/SL stay."""
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._loss_check is not None and not self._loss_check.done():
            self._loss_check.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._loss_check
        if self.dead_man is not None:
            await self.dead_man.disarm()

    async def _monitor(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.policy.check_interval_s)
            if self._stop.is_set():
                return
            try:
                await self.run_once()
            except Exception as exc:  # the monitor must outlive any one bad turn
                log.error("autotrade_monitor_failed", error=repr(exc))

    async def run_once(self, now: datetime | None = None, *, full: bool = False) -> dict[str, Any]:
        """One monitor turn over every venue; returns what it did (for tests and the status page).

        Every turn reads each venue's positions (cheap) and applies time exits. The costly reads
        (open orders for orphaned triggers, fills for the loss limit) run only when a position
        changed since the last turn, when the engine reported a change, or every `FULL_EVERY_S`:
        on Hyperliquid they weigh 20 each against a budget of 1200 a minute.
        """
        full = full or time.monotonic() - self._last_full >= FULL_EVERY_S
        dirty, self._dirty = self._dirty, set()
        names = [name for name in self.venues if self.owns(name)]
        turns = await asyncio.gather(
            *(self._venue_turn(self.venues[n], now, full=full or n in dirty) for n in names),
            return_exceptions=True,
        )
        result: dict[str, Any] = {"venues": {}, "full": full}
        changed = bool(dirty)
        for name, turn in zip(names, turns, strict=True):
            if isinstance(turn, BaseException):
                result["venues"][name] = {"error": repr(turn)}
                self._dirty.add(name)  # look properly next time
            else:
                result["venues"][name] = turn
                changed = changed or turn.get("changed", False)
        if full or changed:
            if self.policy.daily_loss_limit_usd is not None:
                result["loss_limit_paused"] = await self.kill_switch.check_daily_loss()
            else:
                result["fills_ingested"] = await self.fills.ingest(force=True)
        if full:
            self._last_full = time.monotonic()
        self.last_run = result
        return result

    async def _venue_turn(self, venue: Venue, now: datetime | None, *, full: bool) -> dict[str, Any]:
        try:
            positions = await read_positions(venue)  # the stream's while current: no request
        except VenueError as exc:
            log.warning("autotrade_monitor_unreadable", venue=venue.name, error=str(exc))
            raise
        sizes = {coin: p.size for coin, p in positions.items() if not p.is_flat}
        changed = self._last_sizes.get(venue.name) != sizes
        self._last_sizes[venue.name] = sizes
        orphans: list[str] = []
        restored: list[str] = []
        if full or changed:
            orphans, unprotected = await self.protection.sweep(venue, positions)
            for coin in unprotected:
                if self.gateway.state.in_flight(venue.name, coin):
                    # An order sent before a restart may still land (a TP/SL pair among them):
                    # start-up does not wait for it; the next turn looks again.
                    self._dirty.add(venue.name)
                    continue
                if await self._restore_protection(venue, coin):
                    restored.append(coin)
        exits = await self.exits.check_venue(venue, positions, now=now)
        return {
            "changed": changed or bool(exits),
            "orphan_triggers_cancelled": orphans,
            "protection_restored": restored,
            "time_exits": exits,
        }

    async def _restore_protection(self, venue: Venue, coin: str) -> bool:
        """Protect a held position exactly once (priced from its entry, under the coin's lock):
        its triggers are replaced by one pair when it has none, half a pair or more than one."""
        async with self.gateway.state.hold(venue.name, coin):
            # Re-read under the lock: the engine may just have traded and protected it, or an
            # order sent before a restart may just have been resolved.
            position = (await read_positions(venue)).get(coin)
            if position is None or position.is_flat:
                return False
            found = await self.protection.protection_of(venue, position)
            if found == wanted_triggers(self.policy, position.size):
                return False
            resting = ", ".join(f"{kind}={n}" for kind, n in sorted(found.items())) or "none"
            log.warning(
                "autotrade_protection_missing",
                venue=venue.name,
                coin=coin,
                size=str(position.size),
                entry=str(position.entry_price),
                resting=resting,
            )
            await self.protection.event(
                "protection_restored",
                venue.name,
                coin,
                position.size,
                f"position held without exactly one TP/SL (resting: {resting}; entry"
                f" {position.entry_price}); protection replaced",
            )
            await self.protection.replace(
                venue.name,
                coin,
                position,
                position.entry_price or None,
                # A fresh id each time: a position restored twice (a second crash) must not
                # find its earlier restore's client ids taken and count them as failed pairs.
                new_operation_id("restore"),
            )
            await self.exits.on_position_change(venue.name, coin, position)
            return True

    # -- kill switch and stats, as the Bot calls them ---------------------------------

    async def pause(self, reason: str = "operator") -> dict[str, Any]:
        return await self.kill_switch.pause(reason)

    async def resume(self) -> dict[str, Any]:
        return await self.kill_switch.resume()

    async def flatten(self, *, pause: bool = True) -> dict[str, Any]:
        return await self.kill_switch.flatten(pause=pause)

    async def close(self, coin: str, venue: str | None = None) -> dict[str, Any]:
        return await self.kill_switch.close(coin, venue)

    async def is_paused(self) -> bool:
        return await self.kill_switch.is_paused()

    async def pause_status(self) -> dict[str, Any]:
        """`{paused, reason, since}` (since: ISO UTC time of the pause)."""
        return await self.kill_switch.status()

    async def stats(self, since: datetime | None = None) -> dict[str, Any]:
        """Ingest the newest exchange fills (at most every 2 s), then summarise (`stats.compute_stats`)."""
        await self.fills.ingest()
        summary = await compute_stats(self.journal, since=since)
        status = await self.kill_switch.status()
        summary["paused"] = status["paused"]
        summary["paused_reason"] = status["reason"]
        if self.dead_man is not None:
            summary["dead_man_switch"] = self.dead_man.status()
        return summary

    async def export_csv(self, path: Path, since: datetime | None = None) -> Path:
        await self.fills.ingest(force=True)
        return await export_csv(self.journal, path, since=since)


# How often the monitor reads the exchanges (default 5 s); an env knob, not a config key,
# because only tests and unusual deployments need to change it.
CHECK_INTERVAL_ENV = "NEWSTRADER_AUTOTRADE_CHECK_INTERVAL_S"


def exit_policy(exits: ExitsSettings | None) -> ExitPolicy:
    """The `[exits]` section as an `ExitPolicy`, with the monitor interval from the environment."""
    overrides: dict[str, Any] = {}
    interval = os.environ.get(CHECK_INTERVAL_ENV, "").strip()
    if interval:
        try:
            seconds = float(interval)
        except ValueError:
            seconds = 0.0
        if seconds > 0:
            overrides["check_interval_s"] = seconds
        else:
            log.warning("autotrade_bad_check_interval", env=CHECK_INTERVAL_ENV, value=interval, used=5.0)
    return ExitPolicy.from_settings(exits or ExitsSettings(), **overrides)
