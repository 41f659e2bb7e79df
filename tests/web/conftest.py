"""A running bot + simulator for the web, CLI and browser tests.

`stack` (one per worker, shared by the web tests, which run in one xdist group) is the demo's
own composition: an in-process simulator on a free port, fresh funded accounts on both
venues, and the real Bot serving its API and dashboard on another free port. It runs on an
event loop in a background thread so the tests can be plain synchronous code (CLI runner,
Playwright's sync API, httpx).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pytest

from newstrader.demo import VENUE_KINDS, DemoStack, positions_in_state
from newstrader.venues.limits import REGISTRY

if TYPE_CHECKING:
    from newstrader.bot import Bot

T = TypeVar("T")
START_TIMEOUT_S = 60.0


class RunningStack:
    """A DemoStack on its own event loop thread, with sync helpers for tests."""

    def __init__(self, workdir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="web-test-stack", daemon=True)
        # No background reconcile: tests that look for drift trigger it and must find it themselves.
        # A slow auto-trader monitor: its reads share Hyperliquid's request budget with the tests.
        self.stack = DemoStack(
            workdir,
            sim_port=0,
            web_port=0,
            fast=True,
            reconcile_interval_s=3600,
            autotrade_check_interval_s=60,
        )

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run a coroutine on the stack's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        # The demo hands its in-process bot the keys and token through this process's env; once the
        # bot has read them, put the env back: left there for the session, they would override the
        # settings of every later in-process bot on this worker (a foreign web token or venue key).
        saved = dict(os.environ)
        self.thread.start()
        try:
            self.run(self.stack.start(), timeout=START_TIMEOUT_S)
        finally:
            for key in set(os.environ) - set(saved):
                del os.environ[key]
            os.environ.update(saved)

    def stop(self) -> None:
        try:
            self.run(self.stack.stop(), timeout=60)
            self.run(_cancel_leftover_tasks(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)

    @property
    def url(self) -> str:
        return self.stack.url

    @property
    def token(self) -> str:
        return self.stack.token

    @property
    def sim_url(self) -> str:
        return str(self.stack.sim_url)

    @property
    def bot(self) -> Bot:
        assert self.stack.bot is not None, "the demo stack has not started"
        return self.stack.bot

    def api(self, token: str | None = None) -> httpx.Client:
        """A client of the bot's API with the right token (or the one given)."""
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token if token is None else token}"},
            trust_env=False,
            timeout=30,
        )

    def sim_admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.request(
            method, f"{self.sim_url}/admin{path}", json=body, trust_env=False, timeout=10
        )
        response.raise_for_status()
        return response.json()

    def exchange_positions(self) -> dict[tuple[str, str], Decimal]:
        """(venue, coin) → signed size of the demo accounts, from the simulator (the truth)."""
        addresses = {v: self.stack.accounts.address(v) for v in VENUE_KINDS}
        return positions_in_state(self.sim_admin("GET", "/state"), addresses)

    @staticmethod
    def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
        """Poll `condition` until it is truthy or `timeout` passes; returns its last value."""
        return wait_until(condition, timeout, interval)

    def fresh_budgets(self) -> None:
        """Full request budgets on both sides, as after a quiet minute: the simulator's rate-limit
        windows restart (re-enabling resets them) and so do the bot's own buckets (on its loop).
        Without this a test inherits what the tests before it spent, and its set-up waits seconds
        on Hyperliquid's budget (as other rooms reset theirs with the simulator, per test)."""
        self.sim_admin("POST", "/settings", {"rate_limits": True})
        self.run(_refill_budgets())

    def flatten_now(self) -> None:
        """Start a test from flat and trading (through the bot, as an operator would)."""
        self.fresh_budgets()
        with self.api() as api:
            if self.exchange_positions():  # the simulator's state is free to read; the venues' is not
                api.post("/api/control/flatten").raise_for_status()  # flatten also pauses (kill switch)
                assert wait_until(lambda: not self.exchange_positions(), 20), self.exchange_positions()
            if api.get("/api/stats").json()["paused"]:
                api.post("/api/control/resume").raise_for_status()


async def _refill_budgets() -> None:
    REGISTRY.refill()


async def _cancel_leftover_tasks() -> None:
    """Library watchers (sse-starlette's) outlive the servers; end them before the loop stops."""
    current = asyncio.current_task()
    leftovers = [t for t in asyncio.all_tasks() if t is not current]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)


def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    """Poll `condition` until it is truthy or `timeout` passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@pytest.fixture(scope="session")
def stack() -> Iterator[RunningStack]:
    with tempfile.TemporaryDirectory(prefix="newstrader-web-") as tmp:
        running = RunningStack(Path(tmp))
        running.start()
        try:
            yield running
        finally:
            running.stop()


@pytest.fixture
def flat_stack(stack: RunningStack) -> RunningStack:
    """The shared stack, flat on both venues and not paused."""
    stack.flatten_now()
    return stack
