"""The public routes: health, the login shell (no data) and the stream cookie."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import FileResponse

from newstrader.domain import utcnow
from newstrader.web.auth import (
    STREAM_COOKIE,
    STREAM_COOKIE_TTL_S,
    STREAM_PATH,
    stream_cookie_value,
    tokens_match,
)
from newstrader.web.guards import LoginThrottle
from newstrader.web.models import ErrorOut, Health, LoginIn

STATIC_DIR = Path(__file__).parent.parent / "static"


def router(secret: str) -> APIRouter:
    routes = APIRouter()
    throttle = LoginThrottle()

    @routes.get("/healthz", response_model=Health, responses={})
    async def healthz() -> Health:
        return Health(status="ok", time=utcnow())

    @routes.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        # The login shell only: it holds no data until the page has the token.
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})

    @routes.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC_DIR / "favicon.ico", media_type="image/x-icon")

    @routes.post(
        "/api/login",
        status_code=204,
        response_class=Response,
        responses={429: {"model": ErrorOut, "description": "Too many failed logins; retry later"}},
    )
    async def login(body: LoginIn) -> Response:
        """Check a token and set the SSE stream cookie (the page sends the header for the rest).

        Throttled: after 10 wrong tokens in a minute every login waits for the window to pass."""
        wait = throttle.wait_s()
        if wait > 0:
            retry = max(1, round(wait))
            raise HTTPException(
                status_code=429,
                detail=f"too many failed logins: retry in {retry} s",
                headers={"Retry-After": str(retry)},
            )
        if not tokens_match(body.token, secret):
            throttle.failed()
            raise HTTPException(status_code=401, detail="wrong token")
        expires = int(utcnow().timestamp()) + STREAM_COOKIE_TTL_S
        response = Response(status_code=204)
        response.set_cookie(
            STREAM_COOKIE,
            stream_cookie_value(secret, expires),
            max_age=STREAM_COOKIE_TTL_S,
            httponly=True,
            samesite="strict",
            path=STREAM_PATH,
        )
        return response

    return routes
