"""Exchange-side take-profit / stop-loss: reduce-only triggers that live on the venue.

Protection on the exchange survives our crash. Prices come from the actual fill price and are
rounded with the venue's `Market.round_price`. On every change of a position the old triggers
are cancelled first, then new ones placed for the new size and direction; when the position
closes they are cancelled. If protection cannot be placed, `on_protection_failure` decides:
`close` (default) closes the unprotected position, `keep` keeps it and raises an alert.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog

from newstrader.autotrade.killswitch import close_report
from newstrader.autotrade.policy import ExitPolicy
from newstrader.domain import Market, OpenOrder, Position, TriggerKind
from newstrader.engine.executor import GiveUp
from newstrader.venues.account import read_triggers
from newstrader.venues.base import AuthError, Venue, VenueError

if TYPE_CHECKING:
    from newstrader.autotrade.exits import TimeExits
    from newstrader.engine.executor import Executor
    from newstrader.journal import Journal

log = structlog.get_logger("newstrader.autotrade")

HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class TriggerPrices:
    """Where the TP and SL of one position sit; None for a leg that is not configured."""

    take_profit: Decimal | None
    stop_loss: Decimal | None


def trigger_prices(policy: ExitPolicy, market: Market, size: Decimal, fill_price: Decimal) -> TriggerPrices:
    """TP/SL prices for a position of signed `size` filled at `fill_price`, on the venue's grid.

    A long's TP is above the fill, its SL below; a short's the reverse. Rounding goes up for a
    long and down for a short: the TP is never nearer than configured, the SL never farther.
    """
    if size == 0:
        return TriggerPrices(None, None)
    long = size > 0
    sign = Decimal(1) if long else Decimal(-1)
    tp = sl = None
    if policy.take_profit_pct is not None:
        tp = market.round_price(fill_price * (1 + sign * policy.take_profit_pct / HUNDRED), up=long)
    if policy.stop_loss_pct is not None:
        sl = market.round_price(fill_price * (1 - sign * policy.stop_loss_pct / HUNDRED), up=long)
    # A distance of 100 % or more on the price's way down (a short's TP, a long's SL) is no price:
    # that leg is left out rather than sent to be refused.
    return TriggerPrices(tp if tp is None or tp > 0 else None, sl if sl is None or sl > 0 else None)


def wanted_triggers(policy: ExitPolicy, size: Decimal) -> Counter[TriggerKind]:
    """The triggers a position of signed `size` carries when protected exactly once: one of each
    configured leg that has a price (`trigger_prices` leaves out a 100 %+ distance downwards)."""
    wanted: Counter[TriggerKind] = Counter()
    if size == 0:
        return wanted
    long = size > 0
    if policy.take_profit_pct is not None and (long or policy.take_profit_pct < HUNDRED):
        wanted[TriggerKind.TAKE_PROFIT] = 1
    if policy.stop_loss_pct is not None and (not long or policy.stop_loss_pct < HUNDRED):
        wanted[TriggerKind.STOP_LOSS] = 1
    return wanted


def resting_triggers(position: Position, orders: Iterable[OpenOrder]) -> Counter[TriggerKind | str]:
    """The triggers resting on `position`'s coin by kind; one on the wrong side (it would grow
    the position, not close it) counts as `foreign`."""
    closing_is_buy = position.size < 0
    found: Counter[TriggerKind | str] = Counter()
    for order in orders:
        if order.coin != position.coin or order.trigger_price is None:
            continue
        kind = order.trigger_kind if order.trigger_kind is not None else "unknown"
        found[kind if order.is_buy == closing_is_buy else "foreign"] += 1
    return found


class Protection:
    """Places, replaces and cancels the TP/SL triggers of each (venue, coin)."""

    def __init__(
        self,
        venues: Mapping[str, Venue],
        journal: Journal | None,
        policy: ExitPolicy,
        gateway: Executor,
    ) -> None:
        self.venues = venues
        self.journal = journal
        self.policy = policy
        self.gateway = gateway  # places and cancels triggers as engine operations
        self._markets: dict[str, dict[str, Market]] = {}

    async def market(self, venue: Venue, coin: str) -> Market:
        markets = self._markets.get(venue.name)
        if markets is None or coin not in markets:
            markets = await venue.markets()
            self._markets[venue.name] = markets
        return markets[coin]

    async def replace(
        self, venue_name: str, coin: str, position: Position, fill_price: Decimal | None, op_id: str
    ) -> dict[str, Any]:
        """Cancel the old triggers of `coin`, then protect `position` (nothing more when flat).

        `op_id` names the operation: the triggers' client ids derive from it."""
        venue = self.venues[venue_name]
        await self._cancel(venue, coin, op_id)
        if position.is_flat or not self.policy.protects:
            return {"venue": venue_name, "coin": coin, "triggers": []}
        price = fill_price or position.entry_price or None
        if price is None or price <= 0:
            price = await venue.mark_price(coin)
        try:
            market = await self.market(venue, coin)
            prices = trigger_prices(self.policy, market, position.size, price)
            if prices.take_profit is None and prices.stop_loss is None:
                log.warning("autotrade_no_trigger_price", venue=venue_name, coin=coin, fill_price=str(price))
                return {"venue": venue_name, "coin": coin, "triggers": []}
            results = await self.gateway.place_triggers(
                venue_name, coin, position.size, prices.take_profit, prices.stop_loss, op_id=op_id
            )
        except GiveUp as exc:
            return await self._on_failure(venue, coin, position, str(exc), op_id)
        except (VenueError, KeyError) as exc:
            return await self._on_failure(venue, coin, position, f"{type(exc).__name__}: {exc}", op_id)
        log.info(
            "autotrade_protection_placed",
            venue=venue_name,
            coin=coin,
            size=str(position.size),
            fill_price=str(price),
            take_profit=None if prices.take_profit is None else str(prices.take_profit),
            stop_loss=None if prices.stop_loss is None else str(prices.stop_loss),
        )
        return {
            "venue": venue_name,
            "coin": coin,
            "fill_price": str(price),
            "take_profit": None if prices.take_profit is None else str(prices.take_profit),
            "stop_loss": None if prices.stop_loss is None else str(prices.stop_loss),
            "triggers": [r.client_id for r in results],
        }

    async def _cancel(self, venue: Venue, coin: str, op_id: str) -> int:
        try:
            return await self.gateway.cancel_triggers(venue.name, coin, op_id=op_id)
        except AuthError:
            raise
        except VenueError as exc:
            log.error("autotrade_cancel_triggers_failed", venue=venue.name, coin=coin, error=str(exc))
            return 0

    async def _on_failure(
        self, venue: Venue, coin: str, position: Position, why: str, op_id: str
    ) -> dict[str, Any]:
        policy = self.policy.on_protection_failure
        log.error(
            "autotrade_protection_failed",
            venue=venue.name,
            coin=coin,
            size=str(position.size),
            policy=policy,
            error=why,
        )
        await self.event("protection_failed", venue.name, coin, position.size, f"{why}; policy={policy}")
        result: dict[str, Any] = {"venue": venue.name, "coin": coin, "triggers": [], "error": why}
        if policy == "close":
            (outcome,) = await self.gateway.close(
                coin, venue.name, op_id=f"{op_id}:prot", reason=f"protection failed: {why}"
            )
            await self.event(
                "protection_close",
                venue.name,
                coin,
                outcome.exchange_size_after,
                f"closed unprotected position ({why}); size before {outcome.exchange_size_before}",
            )
            result["closed"] = close_report(outcome)
        return result

    async def event(
        self, kind: str, venue: str, coin: str, exchange_size: Decimal | None, detail: str
    ) -> None:
        if self.journal is None:
            return
        try:
            await self.journal.record_event(kind, venue, coin, exchange_size, None, detail)
        except Exception as exc:
            log.error("autotrade_journal_event_failed", kind=kind, error=str(exc))

    async def sweep(self, venue: Venue, positions: Mapping[str, Position]) -> tuple[list[str], list[str]]:
        """Cancel triggers orphaned on coins the venue no longer holds (a TP or SL fired), and
        name the held coins not protected exactly once: no trigger or half a pair (a crash
        between the fill and the protection, or between a venue's TP and SL requests), or
        doubled triggers.

        Returns (orphaned coins cleaned, coins to protect again). The triggers come from the
        account stream when it can vouch for them, else from one open-orders read.
        """
        try:
            triggers = await read_triggers(venue)
        except VenueError as exc:
            log.warning("autotrade_sweep_unreadable", venue=venue.name, error=str(exc))
            return [], []
        held = {c: p for c, p in positions.items() if not p.is_flat}
        protected = {o.coin for o in triggers}
        orphaned = sorted(protected - set(held))
        for coin in orphaned:
            cancelled = await self._cancel(venue, coin, f"orphans:{venue.name}:{coin}")
            log.info("autotrade_orphan_triggers_cancelled", venue=venue.name, coin=coin, count=cancelled)
        if not self.policy.protects:
            return orphaned, []
        unprotected = sorted(c for c, p in held.items() if not self.protected_once(p, triggers))
        return orphaned, unprotected

    def protected_once(self, position: Position, orders: Iterable[OpenOrder]) -> bool:
        """True when `position` carries exactly the triggers the policy wants, each once."""
        return resting_triggers(position, orders) == wanted_triggers(self.policy, position.size)

    async def protection_of(self, venue: Venue, position: Position) -> Counter[TriggerKind | str]:
        """The triggers resting on `position`'s coin by kind (the stream's, or a fresh read)."""
        return resting_triggers(position, await read_triggers(venue, position.coin))


class AutoTradeHooks:
    """The engine's `TradeHooks`: after every position change, replace TP/SL and keep the hold clock.

    Called by the executor under its (venue, coin) lock, so it never takes that lock itself.
    """

    def __init__(
        self,
        protection: Protection,
        exits: TimeExits | None = None,
        after: Callable[[str, str, Position], None] | None = None,
    ) -> None:
        self.protection = protection
        self.exits = exits
        self.after = after

    async def after_position_change(
        self, venue: str, coin: str, position: Position, fill_price: Decimal | None, *, op_id: str = ""
    ) -> None:
        result = await self.protection.replace(
            venue, coin, position, fill_price, op_id or f"protect:{venue}:{coin}:{position.size}"
        )
        closed = result.get("closed")
        if closed is not None and closed.get("flat"):
            # The failure policy closed the unprotected position: the venue now holds nothing.
            position = Position(venue=venue, coin=coin, size=Decimal(0))
        if self.exits is not None:
            await self.exits.on_position_change(venue, coin, position)
        if self.after is not None:
            self.after(venue, coin, position)


__all__ = [
    "AutoTradeHooks",
    "Protection",
    "TriggerPrices",
    "resting_triggers",
    "trigger_prices",
    "wanted_triggers",
]
