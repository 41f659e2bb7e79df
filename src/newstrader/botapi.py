"""What the web app (and any other way in) may ask of a running bot: the `BotApi` protocol.

The web app is typed against this seam, not against `bot.Bot`, so it never reaches into the
engine; `Bot` implements it: `Bot._start_web` passes itself to `create_app`, and `make typecheck`
checks that call with mypy --strict.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from newstrader.domain import NewsItem, Signal
from newstrader.venues.base import Venue

if TYPE_CHECKING:
    from newstrader.journal import Journal

Event = dict[str, Any]


class EventBus(Protocol):
    """In-process fan-out of dict events; each subscriber gets its own bounded queue."""

    def subscribe(self) -> asyncio.Queue[Event]: ...

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None: ...

    def publish(self, event: Event) -> None: ...


class Decision(Protocol):
    """What became of one news item: its signal (or None) and why."""

    @property
    def news_id(self) -> str: ...

    @property
    def signal(self) -> Signal | None: ...

    @property
    def reason(self) -> str: ...

    @property
    def outcome(self) -> str: ...  # a NewsOutcome (str enum): callers branch on this, not on reason

    @property
    def execution(self) -> Awaitable[Decision] | None:
        """While the signal executes: ends with the final decision. None when this one is final."""
        ...


@dataclass(frozen=True, slots=True)
class ClusterState:
    """This bot among several sharing one journal: its name, the accounts configured and owned,
    and per owned account the news-stream items not yet acked (empty without a bus)."""

    instance: str
    configured: tuple[str, ...]
    owned: tuple[str, ...]
    bus_lag: Mapping[str, int]


class BotApi(Protocol):
    """Everything the operator can do to a running bot, and what it reads."""

    @property
    def bus(self) -> EventBus: ...

    @property
    def journal(self) -> Journal: ...

    @property
    def venues(self) -> Mapping[str, Venue]: ...

    async def accept_news(self, item: NewsItem) -> Decision:
        """Journal the item and decide it; an accepted signal executes behind the answer.

        A redelivered id is acted on once."""
        ...

    async def paused(self) -> bool: ...

    async def pause_status(self) -> dict[str, Any]:
        """`{paused, reason, since}`: why the bot opens no positions, and since when (ISO UTC)."""
        ...

    async def pause(self, reason: str = "operator") -> dict[str, Any]: ...

    async def resume(self) -> dict[str, Any]: ...

    async def close(self, coin: str, venue: str | None = None) -> dict[str, Any]: ...

    async def flatten(self) -> dict[str, Any]: ...

    async def reconcile(self) -> list[dict[str, Any]]: ...

    async def positions_view(self) -> list[dict[str, Any]]:
        """Per venue and coin: exchange size (fresh read), cached size, drift, entry, mark, uPnL."""
        ...

    async def cluster_state(self) -> ClusterState | None:
        """None for a bot alone on its journal."""
        ...
