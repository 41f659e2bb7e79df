"""Account ownership against a real PostgreSQL server and real owner processes.

One owner per account; a standby takes over when the owner is killed (-9) or paused (SIGSTOP,
the server ends its silent session); a paused owner that wakes after the takeover is fenced and
sends nothing."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from newstrader.cluster.ownership import AccountOwnership, cluster_view, libpq_dsn, lock_key
from newstrader.engine.ports import NotOwner

OWNER = Path(__file__).with_name("owner_proc.py")


class OwnerProcess:
    """owner_proc.py as a subprocess, its lines collected with their arrival time."""

    def __init__(self, dsn: str, instance: str, venues: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(OWNER), dsn, instance, ",".join(venues)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self.seen: list[tuple[float, str]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put((time.time(), line.strip()))

    def wait_for(self, text: str, timeout: float = 30.0) -> float:
        """Arrival time of the first line starting with `text` (polling with a deadline)."""
        deadline = time.monotonic() + timeout
        for at, line in self.seen:
            if line.startswith(text):
                return at
        while time.monotonic() < deadline:
            try:
                at, line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append((at, line))
            if line.startswith(text):
                return at
        raise AssertionError(f"no line {text!r} within {timeout}s; got {self.seen[-5:]}")

    def drain(self) -> list[tuple[float, str]]:
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                return self.seen

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def owners() -> Iterator[list[OwnerProcess]]:
    started: list[OwnerProcess] = []
    yield started
    for owner in started:
        owner.stop()


def test_kill_9_hands_the_account_to_the_standby_within_seconds(
    pg_url: str, owners: list[OwnerProcess]
) -> None:
    dsn = libpq_dsn(pg_url)
    a = OwnerProcess(dsn, "bot-a", ["acct-1", "acct-2"])
    owners.append(a)
    a.wait_for("owned acct-1")
    a.wait_for("owned acct-2")
    c = OwnerProcess(dsn, "bot-c", ["acct-1", "acct-2"])
    owners.append(c)
    c.wait_for("ready")
    a.wait_for("sent acct-2")
    with pytest.raises(AssertionError):
        c.wait_for("owned", timeout=1.0)  # the standby waits while A lives

    killed = time.time()
    a.proc.send_signal(signal.SIGKILL)
    took = max(c.wait_for("owned acct-1", 5.0), c.wait_for("owned acct-2", 5.0)) - killed
    assert took < 5.0
    c.wait_for("sent acct-1")


def test_paused_owner_loses_the_account_and_is_fenced_when_it_wakes(
    pg_url: str, owners: list[OwnerProcess]
) -> None:
    dsn = libpq_dsn(pg_url)
    b = OwnerProcess(dsn, "bot-b", ["acct-9"])
    owners.append(b)
    b.wait_for("owned acct-9")
    c = OwnerProcess(dsn, "bot-c", ["acct-9"])
    owners.append(c)
    c.wait_for("ready")
    b.wait_for("sent acct-9")

    b.proc.send_signal(signal.SIGSTOP)
    stopped = time.time()
    taken = c.wait_for("owned acct-9", 15.0)  # the server ends B's silent session
    assert taken - stopped < 5.0
    c.wait_for("sent acct-9")
    b.drain()
    resumed = time.time()
    b.proc.send_signal(signal.SIGCONT)
    b.wait_for("fenced acct-9", 10.0)
    late = [line for at, line in b.drain() if line.startswith("sent") and float(line.split()[2]) >= taken]
    assert late == [], f"the paused owner sent after the takeover: {late}"
    assert resumed >= taken


async def test_cluster_view_and_fencing_in_process(pg_url: str) -> None:
    """The server's own view: one holder and its standby per account; a non-owner is fenced."""
    dsn = libpq_dsn(pg_url)
    first = AccountOwnership(dsn, "one", {"hl-x": lock_key("hyperliquid", "0xabc")})
    second = AccountOwnership(dsn, "two", {"hl-x": lock_key("hyperliquid", "0xABC")})
    await first.start()
    assert await first.wait_owned("hl-x", 10)
    await second.start()
    try:
        await first.ensure_owner("hl-x")
        with pytest.raises(NotOwner):
            await second.ensure_owner("hl-x")
        deadline = time.monotonic() + 10
        view = await cluster_view(dsn)
        while len(view.get(lock_key("hyperliquid", "0xabc"), [])) < 2 and time.monotonic() < deadline:
            view = await cluster_view(dsn)
        sessions = view[lock_key("hyperliquid", "0xabc")]
        assert [(s.instance, s.venue, s.granted) for s in sessions] == [
            ("one", "hl-x", True),
            ("two", "hl-x", False),
        ]
        await first.stop()  # a clean stop releases at once
        assert await second.wait_owned("hl-x", 5)
        await second.ensure_owner("hl-x")
    finally:
        await first.stop()
        await second.stop()
