"""A takeover placed exactly: an owner (B) and a standby (C) on one account, B's real fence holding
its task right after one check passed (a SIGSTOP there), and B's lock session ended on demand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg

from newstrader.cluster.ownership import AccountOwnership, libpq_dsn
from newstrader.engine.executor import Executor
from newstrader.engine.risk import Sizer
from newstrader.engine.settings import EngineSettings
from newstrader.journal import Journal
from newstrader.venues.base import Venue
from newstrader.venues.factory import build_venue


class HeldAfterCheck:
    """The owner's real fence; the process "stops" right after one check passed (a SIGSTOP there)."""

    def __init__(self, ownership: AccountOwnership, hold_after: int) -> None:
        self.ownership = ownership
        self.hold_after = hold_after
        self.checks = 0
        self.held = asyncio.Event()
        self.resume = asyncio.Event()

    def owns(self, venue: str) -> bool:
        return self.ownership.owns(venue)

    async def ensure_owner(self, venue: str) -> None:
        await self.ownership.ensure_owner(venue)
        self.checks += 1
        if self.checks == self.hold_after:
            self.held.set()
            await self.resume.wait()


@dataclass
class Takeover:
    """Bots B (the owner, its fence held) and C (the standby), each with its journal, adapter and
    executor on the same account and database."""

    dsn: str
    journals: dict[str, Journal]
    venues: dict[str, Venue]
    owners: dict[str, AccountOwnership]
    fence_b: HeldAfterCheck
    executors: dict[str, Executor]

    def end_b_session(self) -> None:
        """End B's lock sessions, as the server ends a paused owner's silent session."""
        with psycopg.connect(self.dsn, autocommit=True) as db:
            db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE %s",
                ("newstrader:bot-B:%",),
            )


@asynccontextmanager
async def owner_and_standby(
    pg_url: str,
    lock: int,
    config: Mapping[str, Any],
    *,
    hold_after: int,
    engine: EngineSettings,
    notional: Decimal,
) -> AsyncIterator[Takeover]:
    """B owning the account (`config`, advisory lock key `lock`), C started as its standby."""
    dsn = libpq_dsn(pg_url)
    name = str(config["name"])
    accounts = {name: lock}
    journals = {bot: await Journal.open(pg_url, instance=f"bot-{bot}") for bot in "BC"}
    venues = {bot: build_venue(config, timeout_s=engine.order_timeout_s) for bot in "BC"}
    owners = {
        bot: AccountOwnership(dsn, f"bot-{bot}", accounts, heartbeat_s=0.2, session_timeout_s=1.0)
        for bot in "BC"
    }
    fence_b = HeldAfterCheck(owners["B"], hold_after=hold_after)
    executors = {
        bot: Executor(
            {name: venues[bot]},
            journals[bot],
            engine,
            Sizer(notional, 3),
            fence=fence_b if bot == "B" else owners["C"],
        )
        for bot in "BC"
    }
    try:
        await owners["B"].start()
        assert await owners["B"].wait_owned(name, 10)
        await owners["C"].start()  # the standby
        yield Takeover(dsn, journals, venues, owners, fence_b, executors)
    finally:
        fence_b.resume.set()
        for owner in owners.values():
            await owner.stop()
        for venue in venues.values():
            await venue.close()
        for journal in journals.values():
            await journal.close()
