"""One error shape for every route, `{"detail": "<reason>"}`, and a 405 that names every method."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def errors_reason(errors: Iterable[Any]) -> str:
    """Pydantic's error list as one sentence: `body.venue: Input should be ... (got 'x')`."""
    parts = []
    for err in errors:
        where = ".".join(str(p) for p in err.get("loc", ())) or "body"
        given = err.get("input")
        shown = f" (got {given!r:.60})" if isinstance(given, str | int | float) else ""
        parts.append(f"{where}: {err.get('msg', 'invalid')}{shown}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    """FastAPI's own 422 list becomes a sentence; every HTTPException keeps `{"detail": ...}`."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": errors_reason(exc.errors())}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def flat_routes(routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    """Every route of an app, those of included routers too (FastAPI keeps those one level down)."""
    return [context.original_route for context in iter_route_contexts(routes)]


class AllowHeader:
    """A 405 names every method of the path (GET and POST /api/news are two routes, one `Allow`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                methods = sorted(
                    {
                        method
                        for route in flat_routes(scope["app"].routes)
                        if isinstance(route, APIRoute) and route.path_regex.match(scope["path"])
                        for method in route.methods or ()
                    }
                )
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                headers.append((b"allow", ", ".join(methods).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_allow)
