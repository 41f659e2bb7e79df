"""The bot's HTTP API and dashboard: `create_app(bot, token=...) -> FastAPI`.

Every route but `/healthz`, `/` (the login shell, no data) and its static assets needs
`Authorization: Bearer <token>`; see `auth.py` for the stream cookie. Amounts leave as
decimal strings, never floats. The routes live in `web/routes/`, one module per concern;
they see the bot only through the typed `BotApi` protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from newstrader.botapi import BotApi
from newstrader.web import metrics
from newstrader.web.auth import TokenGuard
from newstrader.web.errors import AllowHeader, install_error_handlers
from newstrader.web.guards import FramingGuard, HostGuard, allowed_host_names
from newstrader.web.models import ErrorOut
from newstrader.web.routes import control, news, positions, session, stream
from newstrader.web.routes import metrics as metrics_route
from newstrader.web.routes.news import MAX_NEWS_BYTES
from newstrader.web.routes.session import STATIC_DIR

__all__ = ["MAX_NEWS_BYTES", "STATIC_DIR", "create_app"]


def create_app(
    bot: BotApi, *, token: str, host: str = "127.0.0.1", allowed_hosts: Iterable[str] = ()
) -> FastAPI:
    """The API and dashboard of one running bot; `token` guards every data route.

    `Host` must name loopback, `host` (the bound address) or one of `allowed_hosts`."""
    if not token:
        raise ValueError("create_app needs a token: set [web] token / NEWSTRADER_WEB_TOKEN")
    guard = Depends(TokenGuard(token))
    # Every error has one shape, {"detail": "<reason>"} (see `errors.install_error_handlers`),
    # so the schema says so for every route.
    common_errors: dict[int | str, dict[str, Any]] = {
        400: {"model": ErrorOut, "description": "Body is not valid JSON"},
        401: {"model": ErrorOut, "description": "Missing or wrong token"},
        422: {"model": ErrorOut, "description": "Invalid request, with the reason"},
    }
    app = FastAPI(
        title="newstrader",
        version="0.1.0",
        description="The bot's API. The exchange's position is the truth; the local record is a cache.",
        responses=common_errors,
        # FastAPI would serve these without a token; the schema is served below, behind it.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.bot = bot
    app.state.closing = asyncio.Event()  # set by LoopbackServer.stop: ends open SSE streams
    # Started by LoopbackServer once the loop runs: the metrics count what the bus carries.
    app.state.on_serve = [lambda: metrics.feed_from_bus(bot.bus)]

    app.include_router(session.router(token))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(news.router(bot), dependencies=[guard])
    app.include_router(positions.router(bot), dependencies=[guard])
    app.include_router(
        stream.router(bot, app.state.closing),
        dependencies=[Depends(TokenGuard(token, allow_stream_cookie=True))],
    )
    app.include_router(control.router(bot), dependencies=[guard])
    app.include_router(metrics_route.router(bot), dependencies=[guard])

    @app.get("/openapi.json", dependencies=[guard], include_in_schema=False)
    async def openapi_schema() -> JSONResponse:
        """The OpenAPI schema of this API (token required like every data route)."""
        return JSONResponse(app.openapi())

    install_error_handlers(app)
    app.add_middleware(AllowHeader)
    app.add_middleware(FramingGuard)
    app.add_middleware(HostGuard, allowed_hosts=allowed_host_names(host, allowed_hosts))  # outermost
    original_openapi = app.openapi
    _, news_defs = news.news_schema()

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original_openapi()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(news_defs)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
