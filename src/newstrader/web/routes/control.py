"""The operator's controls: pause, resume, close one coin, flatten, reconcile."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, Literal

import structlog
from fastapi import APIRouter, HTTPException
from pydantic import create_model

from newstrader.botapi import BotApi
from newstrader.web import metrics
from newstrader.web.models import CloseIn, ControlOut, ErrorOut
from newstrader.web.sse import to_jsonable

log = structlog.get_logger(__name__)


async def _listed_somewhere(bot: BotApi, coin: str, venue: str | None) -> bool:
    """True when one of the venues lists `coin`, or when none could be asked (never block a close)."""
    venues = bot.venues
    names = [venue] if venue is not None else sorted(venues)

    async def listing(name: str) -> set[str] | None:
        try:
            return {c.upper() for c in await venues[name].markets()}
        except Exception as exc:
            log.warning("web_markets_unreadable", venue=name, error=repr(exc))
            return None

    found = await asyncio.gather(*(listing(n) for n in names if n in venues))
    if not found or any(markets is None for markets in found):
        return True
    return any(coin in markets for markets in found if markets is not None)


def router(bot: BotApi) -> APIRouter:
    routes = APIRouter()

    async def control(action: str, call: Awaitable[object]) -> ControlOut:
        result = await call
        paused = await bot.paused()
        metrics.set_paused(paused)
        log.info("web_control", action=action, paused=paused)
        return ControlOut(ok=True, action=action, paused=paused, detail=to_jsonable(result))

    @routes.post("/api/control/pause", response_model=ControlOut)
    async def control_pause() -> ControlOut:
        """Stop opening positions (exits and triggers stay)."""
        return await control("pause", bot.pause())

    @routes.post("/api/control/resume", response_model=ControlOut)
    async def control_resume() -> ControlOut:
        """Resume trading."""
        return await control("resume", bot.resume())

    @routes.post("/api/control/flatten", response_model=ControlOut)
    async def control_flatten() -> ControlOut:
        """Close every position on every venue and cancel every trigger."""
        return await control("flatten", bot.flatten())

    venue_names = tuple(sorted(bot.venues))
    # The schema names the configured venues, so a client (or a fuzzer) knows which are valid.
    close_body: Any = (
        create_model("CloseIn", __base__=CloseIn, venue=(Literal[venue_names] | None, None))  # type: ignore[arg-type]
        if venue_names
        else CloseIn
    )

    async def control_close(body: CloseIn) -> ControlOut:
        """Close one coin, on one venue or on all of them; a coin no venue lists is refused (a typo)."""
        coin = body.coin.upper()
        if not await _listed_somewhere(bot, coin, body.venue):
            where = body.venue or ", ".join(venue_names) or "any venue"
            raise HTTPException(
                status_code=404, detail=f"coin {coin!r} is not listed on {where}: nothing to close"
            )
        return await control("close", bot.close(coin, venue=body.venue))

    # The body type is only known now (the venue names); FastAPI reads it from the annotation.
    control_close.__annotations__["body"] = close_body
    routes.post(
        "/api/control/close",
        response_model=ControlOut,
        responses={404: {"model": ErrorOut, "description": "No venue lists the coin"}},
    )(control_close)

    @routes.post("/api/control/reconcile", response_model=ControlOut)
    async def control_reconcile() -> ControlOut:
        """Read every venue now and record drift, without trading."""
        return await control("reconcile", bot.reconcile())

    return routes
