"""Bearer-token authentication for the bot's HTTP API.

Every data route takes `Authorization: Bearer <token>`, compared in constant time. The
dashboard keeps the token in sessionStorage and sends the header itself; only the SSE
stream (EventSource cannot send headers) also accepts a session cookie, which
`POST /api/login` sets: HttpOnly, SameSite=Strict, scoped to `/api/stream`, and holding an
HMAC of the token rather than the token. So a cookie can read the live feed and nothing else.
It expires: its value carries its expiry time under the HMAC, so the server refuses it after
`STREAM_COOKIE_TTL_S` even if a browser keeps it.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from fastapi import HTTPException, Request, status

STREAM_COOKIE = "newstrader_stream"
STREAM_PATH = "/api/stream"
STREAM_COOKIE_TTL_S = 12 * 3600  # a working day; the page logs in again after it


def tokens_match(given: str | None, expected: str) -> bool:
    """Constant-time comparison; an empty expected token never matches."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def stream_cookie_value(token: str, expires: int) -> str:
    """The cookie for the SSE stream until `expires` (Unix seconds): `<expires>.<HMAC>`, derived
    from the token, useless as a Bearer token."""
    mac = hmac.new(token.encode(), f"newstrader-stream-cookie:{expires}".encode(), hashlib.sha256)
    return f"{expires}.{mac.hexdigest()}"


def stream_cookie_valid(value: str | None, token: str) -> bool:
    """True for a cookie this token issued that has not expired."""
    expires, _, _ = (value or "").partition(".")
    if not expires.isdigit() or int(expires) <= time.time():
        return False
    return tokens_match(value, stream_cookie_value(token, int(expires)))


def bearer_of(request: Request) -> str | None:
    """The token of an `Authorization: Bearer ...` header, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


class TokenGuard:
    """A FastAPI dependency that refuses a request without the right token (401)."""

    def __init__(self, token: str, *, allow_stream_cookie: bool = False) -> None:
        self._token = token
        self._allow_cookie = allow_stream_cookie

    def __call__(self, request: Request) -> None:
        if tokens_match(bearer_of(request), self._token):
            return
        if self._allow_cookie and stream_cookie_valid(request.cookies.get(STREAM_COOKIE), self._token):
            return
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing or wrong token: send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
