"""Transport-level guards of the bot's HTTP server, before any route or body is read.

- `HostGuard`: only the names the bot is reached by (loopback, `[web] host`, `[web]
  allowed_hosts`) may appear in `Host`, so a web page on a rebinding DNS name cannot talk to
  the API from the operator's browser (DNS rebinding).
- `FramingGuard`: a request with both `Content-Length` and `Transfer-Encoding` is ambiguous
  (request smuggling's shape): 400 and the connection closed, the body never read.
- `LoginThrottle`: after too many failed `POST /api/login` in a window, every login waits.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable

from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
_ANY_ADDRESS = ("0.0.0.0", "::", "")


def allowed_host_names(host: str, extra: Iterable[str] = ()) -> list[str]:
    """The Host names the API answers: loopback, the bound host (unless a wildcard), `extra`."""
    names = [*LOOPBACK_NAMES, *(() if host in _ANY_ADDRESS else (host,)), *extra]
    return list(dict.fromkeys(name.lower() for name in names if name))


class HostGuard(TrustedHostMiddleware):
    """Starlette's TrustedHostMiddleware (400 for any other Host), without a www redirect."""

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str]) -> None:
        super().__init__(app, allowed_hosts=list(allowed_hosts), www_redirect=False)


class FramingGuard:
    """400 for `Content-Length` with `Transfer-Encoding`: which one frames the body is ambiguous."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            names = {name.lower() for name, _ in scope["headers"]}
            if b"content-length" in names and b"transfer-encoding" in names:
                response = JSONResponse(
                    {"detail": "Content-Length together with Transfer-Encoding: send one of them"},
                    status_code=400,
                    headers={"Connection": "close"},  # what follows on this connection is not trusted
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class LoginThrottle:
    """Counts failed logins; past `limit` in `window_s`, logins are refused for the rest of it."""

    def __init__(self, limit: int = 10, window_s: float = 60.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: deque[float] = deque()

    def _trim(self, now: float) -> None:
        while self._failures and now - self._failures[0] > self.window_s:
            self._failures.popleft()

    def wait_s(self) -> float:
        """Seconds until a login may be tried again (0 = now)."""
        now = time.monotonic()
        self._trim(now)
        if len(self._failures) < self.limit:
            return 0.0
        return max(0.0, self.window_s - (now - self._failures[0]))

    def failed(self) -> None:
        self._failures.append(time.monotonic())
