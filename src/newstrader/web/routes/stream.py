"""`GET /api/stream`: server-sent events of what the bot publishes on its bus."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from sse_starlette.sse import EventSourceResponse

from newstrader.botapi import BotApi
from newstrader.web.auth import STREAM_PATH
from newstrader.web.sse import HEARTBEAT_S, sse_events


def router(bot: BotApi, closing: asyncio.Event) -> APIRouter:
    """`closing` is set by `LoopbackServer.stop`: it ends every open stream."""
    routes = APIRouter()

    @routes.get(STREAM_PATH, response_class=EventSourceResponse)
    async def stream() -> EventSourceResponse:
        """Server-sent events: news, signal, order, fill, drift, position, control."""
        return EventSourceResponse(
            sse_events(bot.bus, closing, hello={"paused": await bot.paused()}),
            ping=int(HEARTBEAT_S),
        )

    return routes
