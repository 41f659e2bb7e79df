"""The seams between the Telegram room and the bot: typed Protocols, never the Bot class itself.

`ControlApi` is the part of the bot the dashboard drives (positions, stats, pause, resume,
close, flatten): Telegram commands call exactly these, so every order still passes through the
engine. When the web app's `BotApi` protocol lands, `ControlApi` becomes an alias of it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Protocol

from newstrader.domain import Fill


class ControlApi(Protocol):
    """What an operator may do, as the dashboard does it."""

    async def positions_view(self) -> list[dict[str, Any]]: ...

    async def stats(self) -> dict[str, Any]: ...

    async def paused(self) -> bool: ...

    async def pause(self, reason: str = "operator") -> dict[str, Any]: ...

    async def resume(self) -> dict[str, Any]: ...

    async def close(self, coin: str, venue: str | None = None) -> Any: ...

    async def flatten(self) -> Any: ...


class EventFeed(Protocol):
    """The bot's in-process bus: each subscriber gets its own bounded queue (drop-oldest)."""

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]: ...

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None: ...


class JournalFeed(Protocol):
    """The journal reads the alerts tail: control events (pause, loss limit) and exchange fills."""

    async def recent_events(self, limit: int = 50) -> list[dict[str, Any]]: ...

    async def fills(self, since: datetime | None = None, venue: str | None = None) -> list[Fill]: ...
