"""A takeover placed exactly: the old owner's real fence, holding its task after one check passed."""

from __future__ import annotations

import asyncio

import psycopg

from newstrader.cluster.ownership import AccountOwnership


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


def end_lock_sessions(dsn: str, instance: str) -> None:
    """End an instance's lock sessions, as the server ends a paused owner's silent session."""
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE %s",
            (f"newstrader:{instance}:%",),
        )
