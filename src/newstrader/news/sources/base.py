"""What every news source shares: start/stop, a supervised loop that reconnects with backoff."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from newstrader.domain import NewsItem

log = structlog.get_logger("newstrader.news.sources")

Submit = Callable[[NewsItem], Awaitable[Any]]


class Backoff:
    """Exponential backoff: initial, ×factor per failure, capped; reset after a good connection."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0, factor: float = 2.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.current = initial

    def next_delay(self) -> float:
        delay = self.current
        self.current = min(self.maximum, self.current * self.factor)
        return delay

    def reset(self) -> None:
        self.current = self.initial


class Source:
    """A news source: `start()` runs `run_once()` under supervision until `stop()`.

    `run_once` connects and delivers items until the connection ends (return) or fails
    (raise); either way the source waits the backoff delay and runs it again. Subclasses
    call `connected()` once a connection works, which resets the backoff.
    """

    kind = "source"

    def __init__(
        self,
        name: str,
        submit: Submit,
        *,
        backoff: Backoff | None = None,
        restart: bool = True,
        max_in_flight: int = 32,
    ) -> None:
        self.name = name
        self.submit = submit
        self.backoff = backoff or Backoff()
        self.restart = restart
        self.connects = 0
        self.failures = 0
        self.delivered = 0
        self.last_error: str | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Items are handed over without waiting for the previous one's trade: the pipeline
        # keeps per-coin arrival order, so a burst on many coins is not queued behind one.
        self._slots = asyncio.Semaphore(max_in_flight)
        self._in_flight: set[asyncio.Task[None]] = set()

    # -- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the supervised loop in the background (idempotent)."""
        if self._task is None or self._task.done():
            self._stopping.clear()
            self._task = asyncio.create_task(self._supervise(), name=f"news-source-{self.name}")

    async def stop(self, drain_timeout_s: float = 30.0) -> None:
        """Stop reading, let items already handed over finish (they may be trading), close."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drain(), timeout=drain_timeout_s)
        await self.close()

    async def drain(self) -> None:
        """Wait until every item handed over has been through the pipeline."""
        while self._in_flight:
            await asyncio.gather(*list(self._in_flight), return_exceptions=True)

    async def wait(self) -> None:
        """Wait until the loop ends by itself (a replay that reached its end) and its items are through."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.drain()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- for subclasses ------------------------------------------------------------------

    async def run_once(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        """Release resources (HTTP clients, sockets)."""

    def connected(self) -> None:
        self.connects += 1
        self.backoff.reset()
        log.info("news_source_connected", source=self.name, kind=self.kind, connects=self.connects)

    async def deliver(self, item: NewsItem) -> None:
        """Hand one item to the pipeline without waiting for it (up to `max_in_flight` at once)."""
        await self._slots.acquire()
        task = asyncio.create_task(self._submit_one(item), name=f"news-{self.name}-{item.id}")
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _submit_one(self, item: NewsItem) -> None:
        try:
            await self.submit(item)
            self.delivered += 1
        except Exception as exc:  # one item's failure never kills the source
            log.error("news_submit_failed", source=self.name, news_id=item.id, error=repr(exc))
        finally:
            self._slots.release()

    async def pause(self, seconds: float) -> bool:
        """Wait up to `seconds`; True when asked to stop meanwhile."""
        if seconds <= 0:
            return self._stopping.is_set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        return self._stopping.is_set()

    # -- the loop ------------------------------------------------------------------------

    async def _supervise(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
                if not self.restart:
                    return
                self.last_error = "connection closed"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                if not self.restart:
                    log.error("news_source_failed", source=self.name, kind=self.kind, error=self.last_error)
                    return
            delay = self.backoff.next_delay()
            log.warning(
                "news_source_reconnecting",
                source=self.name,
                kind=self.kind,
                error=self.last_error,
                delay_s=round(delay, 3),
            )
            if await self.pause(delay):
                return
