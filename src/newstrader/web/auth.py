"""Bearer-token authentication for the bot's HTTP API.

Every data route takes `Authorization: Bearer <token>`, compared in constant time. The
dashboard keeps the token in sessionStorage and sends the header itself; only the SSE
stream (EventSource cannot send headers) also accepts a session cookie, which
`POST /api/login` sets: HttpOnly, SameSite=Strict, scoped to `/api/stream`, and holding an
HMAC of the token rather than the token. So a cookie can read the live feed and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import HTTPException, Request, status

STREAM_COOKIE = "newstrader_stream"
STREAM_PATH = "/api/stream"


def tokens_match(given: str | None, expected: str) -> bool:
    """Constant-time comparison; an empty expected token never matches."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def stream_cookie_value(token: str) -> str:
    """The cookie for the SSE stream: derived from the token, useless as a Bearer token."""
    return hmac.new(token.encode(), b"newstrader-stream-cookie", hashlib.sha256).hexdigest()


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
        if self._allow_cookie and tokens_match(
            request.cookies.get(STREAM_COOKIE), stream_cookie_value(self._token)
        ):
            return
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing or wrong token: send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
