"""The webhook (`POST /api/news`) and the news and signal history."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from newstrader.botapi import BotApi
from newstrader.journal import SIGNAL_ACCEPTED
from newstrader.news.webhook_model import WebhookNews
from newstrader.web.errors import errors_reason
from newstrader.web.models import ErrorOut, NewsAccepted, NewsListOut, Row, SignalOut, SignalsOut, SignalView
from newstrader.web.routes import LimitQ, jsonable_rows

log = structlog.get_logger(__name__)

MAX_NEWS_BYTES = 64 * 1024
MAX_WAIT_S = 30.0
# Position size comes from the config's [sizing], never from a message: refused by name, so a
# sender who thinks it sizes the trade learns it does not.
SIZING_KEYS = frozenset({"size", "notional_usd", "notional", "leverage", "qty", "quantity"})


def news_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """`WebhookNews`'s JSON schema with the rules it checks in code, and its `$defs` (for components)."""
    schema = WebhookNews.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
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
    return schema, defs


async def _read_body(request: Request) -> bytes:
    """The body, refused with 413 once it passes the limit (a huge body is never buffered)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_NEWS_BYTES:
        raise HTTPException(status_code=413, detail=f"body over {MAX_NEWS_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_NEWS_BYTES:
                raise HTTPException(status_code=413, detail=f"body over {MAX_NEWS_BYTES} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        # Nobody is left to answer and nothing was journaled: one line, not an ASGI traceback.
        log.info("web_news_client_left", bytes_read=size)
        raise HTTPException(status_code=400, detail="the client left before sending the body") from None
    return b"".join(chunks)


def router(bot: BotApi) -> APIRouter:
    routes = APIRouter()
    schema, _ = news_schema()

    @routes.post(
        "/api/news",
        status_code=202,
        response_model=NewsAccepted,
        responses={
            200: {"model": NewsAccepted, "description": "With ?wait: the outcomes came in time"},
            413: {"model": ErrorOut, "description": "Body over 64 KiB"},
            422: {"model": ErrorOut, "description": "Invalid body, with the reason"},
        },
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}
        },
    )
    async def post_news(
        request: Request,
        wait: Annotated[
            float | None,
            Query(
                ge=0,
                le=MAX_WAIT_S,
                description="Wait up to this many seconds for the outcomes (200 when they came in time).",
            ),
        ] = None,
    ) -> Response:
        """Submit one headline: `coin`+`side` given → used as is, else parsed.

        Answers 202 once the item is journaled and decided; a signal executes behind the
        answer, its outcomes on `GET /api/signals/{id}` and the stream."""
        received = time.monotonic()  # the edge: the latency ledger starts before the body is read
        raw = await _read_body(request)
        try:
            payload = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPException(status_code=422, detail=f"body is not JSON: {exc}") from exc
        except RecursionError:
            raise HTTPException(status_code=422, detail="body is nested too deeply") from None
        if not isinstance(payload, dict):
            raise HTTPException(status_code=422, detail="body must be a JSON object")
        sizing = sorted(SIZING_KEYS & payload.keys())
        if sizing:
            raise HTTPException(
                status_code=422,
                detail=f"sizing keys are not accepted in news: {', '.join(sizing)} "
                "(the size comes from [sizing] in the bot's config)",
            )
        try:
            item = WebhookNews.model_validate(payload).to_news_item(received_mono=received)
        except ValidationError as exc:
            raise HTTPException(status_code=422, detail=errors_reason(exc.errors())) from exc
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        started = time.perf_counter()
        decision = await bot.accept_news(item)
        log.info(
            "web_news",
            news_id=decision.news_id,
            signal_id=decision.signal.id if decision.signal is not None else None,
            reason=decision.reason,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )
        execution = decision.execution
        if execution is not None and wait:
            try:  # shielded: a client that stops waiting never cancels the orders
                decision = await asyncio.wait_for(asyncio.shield(execution), wait)
                execution = None
            except TimeoutError:
                pass
        answer = NewsAccepted(
            news_id=decision.news_id,
            signal=SignalOut.of(decision.signal),
            reason=decision.reason,
            outcome=str(decision.outcome),
            done=execution is None,
        )
        status = 202
        if wait is not None and answer.done:
            status = 200
            if decision.signal is not None:
                view = await bot.journal.signal_view(decision.signal.id)
                answer.outcomes = [Row.model_validate(o) for o in (view or {}).get("outcomes", [])]
        # Serialized here, once: the model is already valid, and FastAPI's second validation and
        # encoding of a response_model ran on the event loop while the signal's orders were
        # being written (the schema still comes from `response_model`).
        return Response(answer.model_dump_json(), status_code=status, media_type="application/json")

    @routes.get("/api/news", response_model=NewsListOut)
    async def get_news(limit: LimitQ = 50) -> NewsListOut:
        """Recent news items with the pipeline's decision."""
        return NewsListOut(
            news=[Row.model_validate(r) for r in jsonable_rows(await bot.journal.recent_news(limit))]
        )

    @routes.get("/api/signals", response_model=SignalsOut)
    async def get_signals(limit: LimitQ = 50) -> SignalsOut:
        """Recent signals, each with its per-venue outcomes and latencies."""
        signals = jsonable_rows(await bot.journal.recent_signals(limit))
        outcomes = jsonable_rows(await bot.journal.recent_outcomes(limit * 4))
        by_signal: dict[str, list[dict[str, Any]]] = {}
        for outcome in outcomes:
            by_signal.setdefault(str(outcome.get("signal_id")), []).append(outcome)
        for sig in signals:
            sig_id = str(sig.get("id") or sig.get("signal_id"))
            sig.setdefault("outcomes", by_signal.get(sig_id, []))
        return SignalsOut(signals=[Row.model_validate(s) for s in signals])

    @routes.get(
        "/api/signals/{signal_id}",
        response_model=SignalView,
        responses={404: {"model": ErrorOut, "description": "No such signal"}},
    )
    async def get_signal(signal_id: Annotated[str, Path(min_length=1, max_length=200)]) -> SignalView:
        """One signal with its per-venue outcomes (`done` once its execution has ended)."""
        view = await bot.journal.signal_view(signal_id)
        if view is None:
            raise HTTPException(status_code=404, detail=f"no signal {signal_id!r}")
        view["done"] = view.get("status") != SIGNAL_ACCEPTED
        return SignalView.model_validate(view)

    return routes
