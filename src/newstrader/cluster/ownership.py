"""One owner per account: a PostgreSQL session advisory lock per (venue kind, account).

Each configured account gets its own database session that asks for the account's lock and
waits (``pg_advisory_lock``): the waiting bot is the standby, visible in ``pg_locks``. The lock
lives as long as the holder's session, so it passes to the standby the moment that session ends:

- the holder crashes or is killed (kill -9): the server sees the socket close at once;
- the holder is paused (SIGSTOP) or cut off from the network: its session falls silent, and
  ``idle_session_timeout`` (set per session, `session_timeout_s`) makes the server end it. A
  live holder keeps its session busy with a heartbeat every `heartbeat_s`.

Fencing: before every order the engine calls `ensure_owner`, which asks the server whether this
session still holds the lock; a paused owner that wakes after a takeover finds its session gone
and raises `NotOwner` instead of sending. Each session's ``application_name`` is
``newstrader:<instance>:<venue>``, so `cluster_view` reads who owns and who waits from the
server itself, with no table of our own to go stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg
import structlog
from sqlalchemy.engine import make_url

from newstrader.engine.ports import NotOwner

log = structlog.get_logger("newstrader.cluster")

APP_PREFIX: Final = "newstrader:"
RETRY_S: Final = 0.5  # after a lost connection, how soon a bot asks for the lock again
CHECK_TIMEOUT_S: Final = 2.0

OwnershipCallback = Callable[[str], Awaitable[None]]


class OwnershipError(Exception):
    """Account ownership cannot work (no PostgreSQL journal, bad settings)."""


def lock_key(kind: str, account: str) -> int:
    """The advisory lock key of an account: a signed 64-bit hash of ``kind:account``."""
    digest = hashlib.sha256(f"newstrader:{kind}:{account.lower()}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def libpq_dsn(url: str) -> str:
    """A libpq connection string from the journal's SQLAlchemy URL (``postgresql+psycopg://…``)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise OwnershipError(f"account ownership needs a PostgreSQL journal, not {parsed.get_backend_name()}")
    return str(parsed.set(drivername="postgresql").render_as_string(hide_password=False))


@dataclass(frozen=True, slots=True)
class Account:
    """One configured account: the venue name this bot gives it and its lock key."""

    venue: str
    key: int


@dataclass(slots=True)
class _Claim:
    account: Account
    conn: psycopg.AsyncConnection[Any] | None = None
    owned: bool = False
    acquired_at: float | None = None
    task: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class AccountOwnership:
    """Claims each account's lock, holds it with a heartbeat, and fences every order (a `SendFence`)."""

    def __init__(
        self,
        dsn: str,
        instance: str,
        accounts: Mapping[str, int],
        *,
        heartbeat_s: float = 0.5,
        session_timeout_s: float = 3.0,
        on_acquired: OwnershipCallback | None = None,
        on_lost: OwnershipCallback | None = None,
    ) -> None:
        if heartbeat_s * 2 >= session_timeout_s:
            raise OwnershipError("heartbeat_s must be under half of session_timeout_s")
        self.dsn = dsn
        self.instance = instance
        self.heartbeat_s = heartbeat_s
        self.session_timeout_s = session_timeout_s
        self.on_acquired = on_acquired
        self.on_lost = on_lost
        self._claims = {venue: _Claim(Account(venue, key)) for venue, key in accounts.items()}
        self._stopping = False
        self._callbacks: set[asyncio.Task[None]] = set()

    # ---- the SendFence protocol

    def owns(self, venue: str) -> bool:
        """This instance's last known view: it holds the venue account's lock."""
        claim = self._claims.get(venue)
        return claim is not None and claim.owned

    async def ensure_owner(self, venue: str) -> None:
        """Ask the server: does our session still hold this account's lock? `NotOwner` if not."""
        claim = self._claims.get(venue)
        if claim is None or not claim.owned or claim.conn is None:
            raise NotOwner(f"{self.instance} does not own {venue}")
        try:
            async with claim.lock:
                held = await asyncio.wait_for(_holds(claim.conn, claim.account.key), CHECK_TIMEOUT_S)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            self._lose(claim, f"fencing check failed: {type(exc).__name__}")
            raise NotOwner(f"{self.instance} lost {venue}: {exc}") from None
        if not held:
            self._lose(claim, "the server says the lock is not ours")
            raise NotOwner(f"{self.instance} lost {venue}")

    # ---- life cycle

    def owned(self) -> list[str]:
        """The venue accounts this instance holds now."""
        return sorted(v for v, c in self._claims.items() if c.owned)

    def acquired_at(self, venue: str) -> float | None:
        """When (monotonic) this instance last took the account, or None."""
        return self._claims[venue].acquired_at

    async def start(self) -> None:
        """Start claiming every account (returns at once: standbys wait in the background)."""
        for claim in self._claims.values():
            claim.task = asyncio.create_task(self._hold(claim), name=f"own-{claim.account.venue}")

    async def wait_owned(self, venue: str, timeout_s: float) -> bool:
        """Poll until this instance owns `venue` or the deadline passes (for callers and tests)."""
        deadline = time.monotonic() + timeout_s
        while not self.owns(venue):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)  # poll interval
        return True

    async def stop(self) -> None:
        """Release every lock (closing the sessions) and stop waiting."""
        self._stopping = True
        for claim in self._claims.values():
            if claim.task is not None:
                claim.task.cancel()
        for claim in self._claims.values():
            if claim.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await claim.task
            await self._close(claim)

    # ---- one account

    async def _hold(self, claim: _Claim) -> None:
        venue = claim.account.venue
        while not self._stopping:
            try:
                claim.conn = await psycopg.AsyncConnection.connect(
                    self.dsn,
                    autocommit=True,  # idle_session_timeout applies only outside a transaction
                    application_name=f"{APP_PREFIX}{self.instance}:{venue}"[:63],
                    connect_timeout=10,
                    keepalives=1,
                    keepalives_idle=1,
                    keepalives_interval=1,
                    keepalives_count=3,
                )
                # Set first: a waiting session is busy, not idle, so the timeout starts only once
                # the lock is granted, and a standby paused while it waited loses it again.
                await claim.conn.execute(f"SET idle_session_timeout = {int(self.session_timeout_s * 1000)}")
                # Waiting for the lock is the standby state (shown in pg_locks, granted = false).
                await claim.conn.execute("SELECT pg_advisory_lock(%s)", (claim.account.key,))
                claim.owned = True
                claim.acquired_at = time.monotonic()
                log.info("account_acquired", venue=venue, instance=self.instance)
                self._notify(self.on_acquired, venue)
                while claim.owned:
                    await asyncio.sleep(self.heartbeat_s)
                    async with claim.lock:
                        if not await asyncio.wait_for(_holds(claim.conn, claim.account.key), CHECK_TIMEOUT_S):
                            raise OwnershipError("lock not held")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the session ended: we are no longer the owner, wait again
                self._lose(claim, f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(RETRY_S)
            finally:
                if not claim.owned:
                    await self._close(claim)

    def _lose(self, claim: _Claim, reason: str) -> None:
        if not claim.owned:
            return
        claim.owned = False
        log.warning("account_lost", venue=claim.account.venue, instance=self.instance, reason=reason)
        self._notify(self.on_lost, claim.account.venue)

    def _notify(self, callback: OwnershipCallback | None, venue: str) -> None:
        """Run a callback as its own task: the heartbeat must not wait for it (a silent session
        is ended by the server), and a callback may stop the very task that noticed the loss."""
        if callback is None:
            return
        task = asyncio.create_task(callback(venue), name=f"ownership-{venue}")
        self._callbacks.add(task)
        task.add_done_callback(self._callbacks.discard)

    async def _close(self, claim: _Claim) -> None:
        conn, claim.conn = claim.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


async def _holds(conn: psycopg.AsyncConnection[Any], key: int) -> bool:
    """Whether this session holds the advisory lock `key` (bigint keys show as classid/objid)."""
    cursor = await conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND pid = pg_backend_pid() AND objsubid = 1"
        " AND classid::bigint = ((%s::bigint >> 32) & 4294967295)"
        " AND objid::bigint = (%s::bigint & 4294967295)",
        (key, key),
    )
    row = await cursor.fetchone()
    return bool(row and row[0])


@dataclass(frozen=True, slots=True)
class LockHolder:
    """One session on an account lock: the instance and its venue name, holding or waiting."""

    instance: str
    venue: str
    granted: bool
    pid: int


async def cluster_view(dsn: str) -> dict[int, list[LockHolder]]:
    """Every account lock the server knows, by key: its holder and its standbys (from pg_locks)."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT ((l.classid::bigint << 32) | l.objid::bigint), l.granted, a.application_name, a.pid"
            " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND a.application_name LIKE %s"
            " ORDER BY l.granted DESC, a.backend_start",
            (APP_PREFIX + "%",),
        )
        rows = await cursor.fetchall()
    view: dict[int, list[LockHolder]] = {}
    for raw_key, granted, app, pid in rows:
        key = raw_key - (1 << 64) if raw_key >= (1 << 63) else raw_key
        instance, _, venue = app.removeprefix(APP_PREFIX).rpartition(":")
        view.setdefault(int(key), []).append(LockHolder(instance, venue, bool(granted), int(pid)))
    return view
