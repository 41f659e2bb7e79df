"""Knowing when an order's bytes are on the socket, from httpcore's public `trace` extension.

The engine lets one order at a time write its request: two sends interleaved on one event loop
only delay both (see `Executor._send`). A send that must first wait on the network (a new
connection) gives up its turn at once, so a slow venue never holds back another's order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

# Re-exported (`as`) for the HTTP clients that import it from here; the name lives in venues/base.py.
from newstrader.venues.base import OnWritten as OnWritten

# httpcore's trace events: the request's last byte written, or a connection being opened first.
_WRITTEN = frozenset({"http11.send_request_body.complete", "connection.connect_tcp.started"})

Trace = Callable[[str, dict[str, Any]], Awaitable[None]]


def written_trace(on_written: OnWritten, inner: Trace | None = None) -> Trace:
    """A `trace` extension calling `on_written` when the request is written (or must wait to
    connect first); `inner`, a trace already on the request, still sees every event."""

    async def trace(event: str, info: dict[str, Any]) -> None:
        if event in _WRITTEN:
            on_written()
        if inner is not None:
            await inner(event, info)

    return trace
