"""What the account holds and did: positions (fresh exchange reads), orders, drift events, PnL."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import structlog
from fastapi import APIRouter

from newstrader.botapi import BotApi
from newstrader.domain import OpenOrder, plain
from newstrader.web.models import EventsOut, OrdersOut, PnlPoint, PositionRow, PositionsOut, Row, StatsOut
from newstrader.web.routes import LimitQ, jsonable_rows
from newstrader.web.sse import to_jsonable

log = structlog.get_logger(__name__)


async def _add_triggers(bot: BotApi, rows: list[dict[str, Any]]) -> None:
    """Fill each open position's TP/SL from the triggers resting on its exchange (a fresh read)."""
    venues = bot.venues
    held = {r["venue"] for r in rows if r.get("exchange_size") not in (None, "0") and r["venue"] in venues}

    async def triggers(name: str) -> tuple[str, list[OpenOrder]]:
        try:
            return name, list(await venues[name].open_orders())
        except Exception as exc:  # the page still shows positions when this read fails
            log.warning("web_triggers_unreadable", venue=name, error=repr(exc))
            return name, []

    found: dict[tuple[str, str], dict[str, str]] = {}
    for name, orders in await asyncio.gather(*(triggers(n) for n in sorted(held))):
        for order in orders:
            kind = getattr(order, "trigger_kind", None)
            price = getattr(order, "trigger_price", None)
            if kind is not None and price is not None:
                key = "take_profit" if str(kind) == "tp" else "stop_loss"
                found.setdefault((name, order.coin), {})[key] = plain(Decimal(str(price)))
    for row in rows:
        row.update(found.get((row["venue"], row["coin"]), {}))


def router(bot: BotApi) -> APIRouter:
    routes = APIRouter()

    @routes.get("/api/positions", response_model=PositionsOut)
    async def get_positions() -> PositionsOut:
        """Per venue and coin: the exchange's position (fresh read), the cache, drift."""
        rows = jsonable_rows(await bot.positions_view())
        await _add_triggers(bot, rows)
        status = await bot.pause_status()
        return PositionsOut(
            paused=bool(status.get("paused")),
            paused_reason=status.get("reason"),
            paused_since=status.get("since"),
            positions=[PositionRow.model_validate(r) for r in rows],
        )

    @routes.get("/api/orders", response_model=OrdersOut)
    async def get_orders(limit: LimitQ = 50) -> OrdersOut:
        """Recent orders (intents with their results) and exchange fills."""
        orders = jsonable_rows(await bot.journal.recent_orders(limit))
        fills = jsonable_rows(await bot.journal.fills())
        fills.sort(key=lambda f: str(f.get("time", "")), reverse=True)
        return OrdersOut(
            orders=[Row.model_validate(o) for o in orders],
            fills=[Row.model_validate(f) for f in fills[:limit]],
        )

    @routes.get("/api/events", response_model=EventsOut)
    async def get_events(limit: LimitQ = 50) -> EventsOut:
        """Recent reconciliation events (drift between exchange and cache)."""
        return EventsOut(
            events=[Row.model_validate(r) for r in jsonable_rows(await bot.journal.recent_events(limit))]
        )

    @routes.get("/api/stats", response_model=StatsOut)
    async def get_stats() -> StatsOut:
        """Realized PnL and fees from exchange fills, with the cumulative curve for the chart."""
        from newstrader.autotrade.stats import compute_stats

        fills = sorted(await bot.journal.fills(), key=lambda f: f.time)
        cumulative = Decimal(0)
        fees = Decimal(0)
        curve: list[PnlPoint] = []
        for fill in fills:
            cumulative += fill.realized_pnl - fill.fee
            fees += fill.fee
            curve.append(PnlPoint(time=fill.time, venue=fill.venue, realized_pnl=cumulative))
        return StatsOut(
            paused=await bot.paused(),
            fills=len(fills),
            realized_pnl=cumulative,
            fees=fees,
            pnl_curve=curve,
            summary=to_jsonable(await compute_stats(bot.journal)),
        )

    return routes
