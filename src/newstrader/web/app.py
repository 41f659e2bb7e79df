"""The bot's HTTP API and dashboard: `create_app(bot) -> FastAPI`.

Every route but `/healthz`, `/` (the login shell, no data) and its static assets needs
`Authorization: Bearer <token>`; see `auth.py` for the stream cookie. Amounts leave as
decimal strings, never floats.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import structlog
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from sse_starlette.sse import EventSourceResponse

from newstrader.domain import utcnow
from newstrader.news.webhook_model import WebhookNews
from newstrader.web import metrics
from newstrader.web.auth import STREAM_COOKIE, STREAM_PATH, TokenGuard, stream_cookie_value, tokens_match
from newstrader.web.sse import HEARTBEAT_S, sse_events, to_jsonable

log = structlog.get_logger(__name__)

MAX_NEWS_BYTES = 64 * 1024
STATIC_DIR = Path(__file__).parent / "static"
LimitQ = Annotated[int, Query(ge=1, le=1000, description="How many rows, newest first.")]


# ---------------------------------------------------------------- request and response models


class Row(BaseModel):
    """One journal row; the known fields are typed, the rest pass through."""

    model_config = ConfigDict(extra="allow")


class SignalOut(BaseModel):
    id: str
    news_id: str
    coin: str
    side: str
    confidence: float = 1.0
    terms: list[str] = []
    source: str = "unknown"
    created_at: datetime | None = None


class NewsAccepted(BaseModel):
    news_id: str
    signal: SignalOut | None
    reason: str


class PositionRow(BaseModel):
    """One coin on one venue: what the exchange holds next to what we cached."""

    model_config = ConfigDict(extra="allow")
    venue: str
    coin: str
    exchange_size: Decimal | None = None
    cached_size: Decimal | None = None
    drift: bool = False
    entry_price: Decimal | None = None
    mark_price: Decimal | None = None
    unrealized_pnl: Decimal | None = None
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None


class PositionsOut(BaseModel):
    paused: bool
    positions: list[PositionRow]


class SignalsOut(BaseModel):
    signals: list[Row]


class NewsListOut(BaseModel):
    news: list[Row]


class OrdersOut(BaseModel):
    orders: list[Row]
    fills: list[Row]


class EventsOut(BaseModel):
    events: list[Row]


class PnlPoint(BaseModel):
    time: datetime
    venue: str
    realized_pnl: Decimal = Field(description="Cumulative realized PnL net of fees, all venues.")


class StatsOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    paused: bool
    fills: int
    realized_pnl: Decimal
    fees: Decimal
    pnl_curve: list[PnlPoint]
    summary: dict[str, Any] = {}


class ControlOut(BaseModel):
    ok: bool
    action: str
    paused: bool
    detail: Any = None


class CloseIn(BaseModel):
    coin: str = Field(min_length=1, max_length=32)
    venue: str | None = None


class LoginIn(BaseModel):
    token: str = Field(min_length=1, max_length=512)


class Health(BaseModel):
    status: str
    time: datetime


class ErrorOut(BaseModel):
    detail: Any


# ---------------------------------------------------------------- helpers


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _rows(rows: Any) -> list[dict[str, Any]]:
    return [to_jsonable(r) for r in (rows or [])]


async def _paused(bot: Any) -> bool:
    value = getattr(bot, "paused", None)
    if callable(value):
        value = await _maybe_await(value())
    if value is None:
        value = await bot.journal.get_control("paused", False)
    return bool(value)


def _token_of(bot: Any, token: str | None) -> str:
    if token:
        return token
    web = getattr(getattr(bot, "settings", None), "web", None)
    value = getattr(web, "token", None)
    secret = getattr(value, "get_secret_value", None)
    value = secret() if callable(secret) else value
    if not value:
        raise ValueError("create_app needs a token: pass token= or set [web] token / NEWSTRADER_WEB_TOKEN")
    return str(value)


def _signal_out(signal: Any) -> SignalOut | None:
    if signal is None:
        return None
    return SignalOut(
        id=signal.id,
        news_id=signal.news_id,
        coin=signal.coin,
        side=str(signal.side),
        confidence=float(signal.confidence),
        terms=list(signal.terms),
        source=signal.source,
        created_at=signal.created_at,
    )


async def _listed_somewhere(bot: Any, coin: str, venue: str | None) -> bool:
    """True when one of the venues lists `coin`, or when none could be asked (never block a close)."""
    venues = getattr(bot, "venues", {}) or {}
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


async def _add_triggers(bot: Any, rows: list[dict[str, Any]]) -> None:
    """Fill each open position's TP/SL from the triggers resting on its exchange (a fresh read)."""
    venues = getattr(bot, "venues", {}) or {}
    held = {r["venue"] for r in rows if r.get("exchange_size") not in (None, "0") and r["venue"] in venues}

    async def triggers(name: str) -> tuple[str, list[Any]]:
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
                found.setdefault((name, order.coin), {})[key] = str(price)
    for row in rows:
        row.update(found.get((row["venue"], row["coin"]), {}))


def _document_news_rules(schema: dict[str, Any]) -> None:
    """Say in the schema what `WebhookNews` checks in code: a title with text; coin and side together."""
    properties = schema.get("properties", {})
    if "title" in properties:
        properties["title"]["pattern"] = r"[^\s\x00]"
    for branch in properties.get("published_at", {}).get("anyOf", []):
        if branch.get("type") == "string":  # nothing was published before 2009 (or after tomorrow)
            branch["pattern"] = r"^20(09|[1-9][0-9])-"
    schema["anyOf"] = [
        {"properties": {"coin": {"type": "null"}, "side": {"type": "null"}}},
        {
            "required": ["coin", "side"],
            "properties": {"coin": {"type": "string", "pattern": r"[^\s\x00]"}, "side": {"type": "string"}},
        },
    ]


def _validation_reason(exc: ValidationError) -> str:
    return _errors_reason(exc.errors())


def _errors_reason(errors: Any) -> str:
    """Pydantic's error list as one sentence: `body.venue: Input should be ... (got 'x')`."""
    parts = []
    for err in errors:
        where = ".".join(str(p) for p in err.get("loc", ())) or "body"
        given = err.get("input")
        shown = f" (got {given!r:.60})" if isinstance(given, str | int | float) else ""
        parts.append(f"{where}: {err.get('msg', 'invalid')}{shown}")
    return "; ".join(parts)


class AllowHeader:
    """A 405 names every method of the path (GET and POST /api/news are two routes, one `Allow`)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_allow(message: Any) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                methods = sorted(
                    {
                        method
                        for route in scope["app"].routes
                        if isinstance(route, APIRoute) and route.path_regex.match(scope["path"])
                        for method in route.methods or ()
                    }
                )
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                headers.append((b"allow", ", ".join(methods).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_allow)


# ---------------------------------------------------------------- the app


def create_app(bot: Any, *, token: str | None = None) -> FastAPI:
    """The API and dashboard of one running bot. `token` defaults to the bot's `[web] token`."""
    secret = _token_of(bot, token)
    guard = Depends(TokenGuard(secret))
    stream_guard = Depends(TokenGuard(secret, allow_stream_cookie=True))
    # Every error has one shape, {"detail": "<reason>"}: FastAPI's own 422 list is turned into
    # a sentence by `invalid_request` below, so the schema says so for every route.
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
    latency_sync = metrics.LatencySync()

    @app.get("/healthz", response_model=Health, responses={})
    async def healthz() -> Health:
        return Health(status="ok", time=utcnow())

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        # The login shell only: it holds no data until the page has the token.
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.post("/api/login", status_code=204, response_class=Response)
    async def login(body: LoginIn) -> Response:
        """Check a token and set the SSE stream cookie (the page sends the header for the rest)."""
        if not tokens_match(body.token, secret):
            raise HTTPException(status_code=401, detail="wrong token")
        response = Response(status_code=204)
        response.set_cookie(
            STREAM_COOKIE,
            stream_cookie_value(secret),
            httponly=True,
            samesite="strict",
            path=STREAM_PATH,
        )
        return response

    news_schema = WebhookNews.model_json_schema(ref_template="#/components/schemas/{model}")
    news_defs = news_schema.pop("$defs", {})
    _document_news_rules(news_schema)

    @app.post(
        "/api/news",
        status_code=202,
        response_model=NewsAccepted,
        dependencies=[guard],
        responses={
            413: {"model": ErrorOut, "description": "Body over 64 KiB"},
            422: {"model": ErrorOut, "description": "Invalid body, with the reason"},
        },
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": news_schema}}}
        },
    )
    async def post_news(request: Request) -> NewsAccepted:
        """Submit one headline: `coin`+`side` given → used as is, else parsed."""
        received = time.monotonic()  # the edge: the latency ledger starts before the body is read
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_NEWS_BYTES:
            raise HTTPException(status_code=413, detail=f"body over {MAX_NEWS_BYTES} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_NEWS_BYTES:  # stop reading at the limit: never buffer a huge body
                raise HTTPException(status_code=413, detail=f"body over {MAX_NEWS_BYTES} bytes")
            chunks.append(chunk)
        raw = b"".join(chunks)
        try:
            payload = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPException(status_code=422, detail=f"body is not JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise HTTPException(status_code=422, detail="body must be a JSON object")
        try:
            item = WebhookNews.model_validate(payload).to_news_item(received_mono=received)
        except ValidationError as exc:
            raise HTTPException(status_code=422, detail=_validation_reason(exc)) from exc
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        started = time.perf_counter()
        decision = await bot.submit_news(item)
        log.info(
            "web_news",
            news_id=decision.news_id,
            signal_id=getattr(decision.signal, "id", None),
            reason=decision.reason,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return NewsAccepted(
            news_id=decision.news_id, signal=_signal_out(decision.signal), reason=decision.reason
        )

    @app.get("/api/positions", response_model=PositionsOut, dependencies=[guard])
    async def get_positions() -> PositionsOut:
        """Per venue and coin: the exchange's position (fresh read), the cache, drift."""
        rows = _rows(await bot.positions_view())
        await _add_triggers(bot, rows)
        return PositionsOut(
            paused=await _paused(bot), positions=[PositionRow.model_validate(r) for r in rows]
        )

    @app.get("/api/news", response_model=NewsListOut, dependencies=[guard])
    async def get_news(limit: LimitQ = 50) -> NewsListOut:
        """Recent news items with the pipeline's decision."""
        return NewsListOut(news=[Row.model_validate(r) for r in _rows(await bot.journal.recent_news(limit))])

    @app.get("/api/signals", response_model=SignalsOut, dependencies=[guard])
    async def get_signals(limit: LimitQ = 50) -> SignalsOut:
        """Recent signals, each with its per-venue outcomes and latencies."""
        signals = _rows(await bot.journal.recent_signals(limit))
        outcomes = _rows(await bot.journal.recent_outcomes(limit * 4))
        by_signal: dict[str, list[dict[str, Any]]] = {}
        for outcome in outcomes:
            by_signal.setdefault(str(outcome.get("signal_id")), []).append(outcome)
        for sig in signals:
            sig_id = str(sig.get("id") or sig.get("signal_id"))
            sig.setdefault("outcomes", by_signal.get(sig_id, []))
        return SignalsOut(signals=[Row.model_validate(s) for s in signals])

    @app.get("/api/orders", response_model=OrdersOut, dependencies=[guard])
    async def get_orders(limit: LimitQ = 50) -> OrdersOut:
        """Recent orders (intents with their results) and exchange fills."""
        orders = _rows(await bot.journal.recent_orders(limit))
        fills = _rows(await bot.journal.fills())
        fills.sort(key=lambda f: str(f.get("time", "")), reverse=True)
        return OrdersOut(
            orders=[Row.model_validate(o) for o in orders],
            fills=[Row.model_validate(f) for f in fills[:limit]],
        )

    @app.get("/api/events", response_model=EventsOut, dependencies=[guard])
    async def get_events(limit: LimitQ = 50) -> EventsOut:
        """Recent reconciliation events (drift between exchange and cache)."""
        return EventsOut(
            events=[Row.model_validate(r) for r in _rows(await bot.journal.recent_events(limit))]
        )

    @app.get("/api/stats", response_model=StatsOut, dependencies=[guard])
    async def get_stats() -> StatsOut:
        """Realized PnL and fees from exchange fills, with the cumulative curve for the chart."""
        fills = sorted(await bot.journal.fills(), key=lambda f: f.time)
        cumulative = Decimal(0)
        fees = Decimal(0)
        curve: list[PnlPoint] = []
        for fill in fills:
            cumulative += fill.realized_pnl - fill.fee
            fees += fill.fee
            curve.append(PnlPoint(time=fill.time, venue=fill.venue, realized_pnl=cumulative))
        from newstrader.autotrade.stats import compute_stats

        summary = to_jsonable(await compute_stats(bot.journal))
        return StatsOut(
            paused=await _paused(bot),
            fills=len(fills),
            realized_pnl=cumulative,
            fees=fees,
            pnl_curve=curve,
            summary=summary,
        )

    @app.get(STREAM_PATH, dependencies=[stream_guard], response_class=EventSourceResponse)
    async def stream(request: Request) -> EventSourceResponse:
        """Server-sent events: news, signal, order, fill, drift, position, control."""
        return EventSourceResponse(
            sse_events(bot.bus, app.state.closing, hello={"paused": await _paused(bot)}),
            ping=int(HEARTBEAT_S),
        )

    async def _control(action: str, call: Any) -> ControlOut:
        result = await _maybe_await(call)
        paused = await _paused(bot)
        metrics.set_paused(paused)
        log.info("web_control", action=action, paused=paused)
        return ControlOut(ok=True, action=action, paused=paused, detail=to_jsonable(result))

    @app.post("/api/control/pause", response_model=ControlOut, dependencies=[guard])
    async def control_pause() -> ControlOut:
        """Stop opening positions (exits and triggers stay)."""
        return await _control("pause", bot.pause())

    @app.post("/api/control/resume", response_model=ControlOut, dependencies=[guard])
    async def control_resume() -> ControlOut:
        """Resume trading."""
        return await _control("resume", bot.resume())

    @app.post("/api/control/flatten", response_model=ControlOut, dependencies=[guard])
    async def control_flatten() -> ControlOut:
        """Close every position on every venue and cancel every trigger."""
        return await _control("flatten", bot.flatten())

    venue_names = tuple(sorted(getattr(bot, "venues", {}) or {}))
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
            raise HTTPException(status_code=422, detail=f"coin {coin!r} is not listed on {where}")
        return await _control("close", bot.close(coin, venue=body.venue))

    # The body type is only known now (the venue names); FastAPI reads it from the annotation.
    control_close.__annotations__["body"] = close_body
    app.post("/api/control/close", response_model=ControlOut, dependencies=[guard])(control_close)

    @app.post("/api/control/reconcile", response_model=ControlOut, dependencies=[guard])
    async def control_reconcile() -> ControlOut:
        """Read every venue now and record drift, without trading."""
        return await _control("reconcile", bot.reconcile())

    @app.get("/metrics", dependencies=[guard], response_class=Response)
    async def prometheus() -> Response:
        """Prometheus exposition (token required like every data route)."""
        try:
            await latency_sync.sync(bot.journal)
        except Exception as exc:  # the other metrics are still worth serving
            log.warning("metrics_latency_sync_failed", error=repr(exc))
        metrics.set_paused(await _paused(bot))
        body, content_type = metrics.render()
        return Response(content=body, media_type=content_type)

    @app.get("/openapi.json", dependencies=[guard], include_in_schema=False)
    async def openapi_schema() -> JSONResponse:
        """The OpenAPI schema of this API (token required like every data route)."""
        return JSONResponse(app.openapi())

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _errors_reason(exc.errors())}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    app.add_middleware(AllowHeader)
    original_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original_openapi()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(news_defs)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
