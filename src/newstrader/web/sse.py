"""Server-sent events: forward what the bot publishes on its bus to each dashboard.

Event names on the wire: `news`, `signal`, `order`, `fill`, `drift`, `position`, `control`
(plus `hello` on connect). Each `data` is one JSON object. A slow client never blocks
the bot: its queue is bounded and the oldest events are dropped for it alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import BaseModel

from newstrader.domain import plain

if TYPE_CHECKING:
    from newstrader.botapi import EventBus

log = structlog.get_logger(__name__)

# The bus's topic names mapped to the SSE event names the page listens for.
EVENT_NAMES = {
    "news": "news",
    "signal": "signal",
    "signals": "signal",
    "outcome": "signal",
    "order": "order",
    "orders": "order",
    "fill": "fill",
    "fills": "fill",
    "drift": "drift",
    "event": "drift",
    "position": "position",
    "positions": "position",
    "control": "control",
    "decision": "news",
    "alert": "alert",
}

HEARTBEAT_S = 15.0


def to_jsonable(value: Any) -> Any:
    """Decimals become plain strings (no float rounding, no exponent), datetimes ISO 8601,
    dataclasses dicts."""
    if isinstance(value, Decimal):
        return plain(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, BaseModel):
        return to_jsonable(value.model_dump())
    return value


def normalise(message: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The SSE event name and data of one bus event (a dict: `type` names it, the rest is data)."""
    topic = message.get("topic") or message.get("type") or message.get("kind") or "event"
    payload = message.get("data", message)
    data = to_jsonable(payload)
    if not isinstance(data, dict):
        data = {"value": data}
    return EVENT_NAMES.get(str(topic), str(topic)), data


async def sse_events(
    bus: EventBus, closing: asyncio.Event, *, hello: dict[str, Any] | None = None
) -> AsyncIterator[dict[str, str]]:
    """The stream for one client, as dicts sse-starlette sends (`event`, `data`); ends on `closing`.

    `bus.subscribe()` gives this client its own bounded queue (see `bot.Bus`); it is handed
    back with `bus.unsubscribe` however the stream ends (client gone, server stopping).
    """
    queue = bus.subscribe()
    closed = asyncio.ensure_future(closing.wait())
    following: asyncio.Future[Any] | None = None
    try:
        yield {"event": "hello", "data": json.dumps(hello or {})}
        while True:
            following = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({following, closed}, return_when=asyncio.FIRST_COMPLETED)
            if following not in done:
                return
            message = following.result()
            following = None
            try:
                name, data = normalise(message)
            except Exception:  # a bad message must not end every dashboard's stream
                log.warning("sse_bad_message", message=repr(message)[:200])
                continue
            yield {"event": name, "data": json.dumps(data)}
    finally:
        for task in (following, closed):
            if task is not None and not task.done():
                task.cancel()
        bus.unsubscribe(queue)
