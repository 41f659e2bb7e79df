"""Replay a JSONL news file with its own timing, scaled by `speed` (0 = as fast as possible).

Each line is one object: `title` (required) and optionally `t` (seconds from the start of
the file; else the gaps between `published_at` values are used), `id`, `source`, `body`,
`url`, `coin`, `side`. Replayed items are stamped as published now, so the staleness
filter judges them by the replay's clock, not the file's.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from newstrader.domain import NewsItem, Side, utcnow
from newstrader.news.sources.base import Source, Submit
from newstrader.news.sources.websocket import parse_time

log = structlog.get_logger("newstrader.news.replay")


class ReplayFileError(ValueError):
    """A replay file line is not valid; the message names the line."""


@dataclass(frozen=True, slots=True)
class ReplayLine:
    """One line of a replay file, with its offset from the file's start in seconds."""

    offset_s: float
    item: dict[str, Any]


def read_replay_file(path: Path) -> list[ReplayLine]:
    """Parse and validate the whole file first, so a bad line is reported before anything is sent."""
    lines: list[ReplayLine] = []
    first_published: datetime | None = None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReplayFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            raise ReplayFileError(f"{path}:{number}: not JSON: {exc}") from exc
        if not isinstance(obj, dict) or not isinstance(obj.get("title"), str) or not obj["title"].strip():
            raise ReplayFileError(f"{path}:{number}: needs a non-empty string 'title'")
        offset = obj.get("t")
        if offset is not None:
            if isinstance(offset, bool) or not isinstance(offset, int | float) or offset < 0:
                raise ReplayFileError(f"{path}:{number}: 't' must be seconds ≥ 0")
            offset_s = float(offset)
        else:
            published = parse_time(obj.get("published_at"))
            if published is None:
                offset_s = lines[-1].offset_s if lines else 0.0
            else:
                first_published = first_published or published
                offset_s = max(0.0, (published - first_published).total_seconds())
        side = obj.get("side")
        if side is not None and str(side).lower() not in ("long", "short", "buy", "sell"):
            raise ReplayFileError(f"{path}:{number}: 'side' must be long or short")
        lines.append(ReplayLine(offset_s, obj))
    # The file's own order of time: a line may not go back before the one above it.
    for before, after in itertools.pairwise(lines):
        if after.offset_s < before.offset_s:
            raise ReplayFileError(f"{path}: times go backwards at '{after.item['title'][:40]}'")
    return lines


class ReplaySource(Source):
    """Plays a file once. `clock`/`sleep` are injectable so tests check timing without waiting."""

    kind = "replay"

    def __init__(
        self,
        path: Path,
        submit: Submit,
        *,
        speed: float = 1.0,
        name: str | None = None,
        run_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(name or f"replay:{path.name}", submit, restart=False)
        if speed < 0:
            raise ValueError("speed must be ≥ 0 (0 = as fast as possible)")
        self.path = path
        self.speed = speed
        self.run_id = run_id
        self.clock = clock
        self._sleep = sleep
        self.now = now
        self.lines = read_replay_file(path)
        self.sent_at: list[float] = []  # clock() when each item was handed over

    def to_item(self, line: ReplayLine) -> NewsItem:
        obj = line.item
        title = obj["title"].strip()
        source = str(obj.get("source") or self.name)
        given_id = obj.get("id")
        key = f"id:{given_id}" if given_id is not None else f"{line.offset_s}:{title}"
        if self.run_id:
            key = f"{self.run_id}:{key}"
        side_text = str(obj.get("side") or "").lower()
        side = None
        if side_text:
            side = Side.LONG if side_text in ("long", "buy") else Side.SHORT
        coin = obj.get("coin")
        return NewsItem(
            id=NewsItem.make_id(f"replay:{self.path.name}", key),
            title=title,
            source=source,
            body=str(obj.get("body") or ""),
            url=obj.get("url") if isinstance(obj.get("url"), str) else None,
            published_at=self.now(),
            coin=str(coin) if coin and side else None,
            side=side if coin else None,
        )

    async def _wait_until(self, target: float) -> None:
        delay = target - self.clock()
        if delay <= 0:
            return
        if self._sleep is not None:
            await self._sleep(delay)
        else:
            await self.pause(delay)

    async def run_once(self) -> None:
        self.connected()
        start = self.clock()
        for line in self.lines:
            if self._stopping.is_set():
                return
            if self.speed > 0:
                await self._wait_until(start + line.offset_s / self.speed)
            else:
                await asyncio.sleep(0)  # let others run between items
            self.sent_at.append(self.clock())
            await self.deliver(self.to_item(line))
        log.info("replay_done", source=self.name, items=len(self.lines), delivered=self.delivered)
