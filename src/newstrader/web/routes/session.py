"""The public routes: health, the login shell (no data) and the stream cookie."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import FileResponse

from newstrader.domain import utcnow
from newstrader.web.auth import STREAM_COOKIE, STREAM_PATH, stream_cookie_value, tokens_match
from newstrader.web.models import Health, LoginIn

STATIC_DIR = Path(__file__).parent.parent / "static"


def router(secret: str) -> APIRouter:
    routes = APIRouter()

    @routes.get("/healthz", response_model=Health, responses={})
    async def healthz() -> Health:
        return Health(status="ok", time=utcnow())

    @routes.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        # The login shell only: it holds no data until the page has the token.
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})

    @routes.post("/api/login", status_code=204, response_class=Response)
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

    return routes
