"""Shared fixtures: the venue simulator as a real server, and funded accounts with fresh keys.

- `sim_server` (session scope, one per xdist worker): `python -m newstrader.sim` in a subprocess on
  a free loopback port, started with `--no-rate-limits` so unrelated tests sharing 127.0.0.1 never
  starve each other (a test that wants limits calls `sim.admin.settings(rate_limits=True)`).
- `sim` (function scope): the same server, reset (`POST /admin/reset`) before each test, so every
  test starts from the seeded world with no accounts, faults or stats. Attributes: `.url`,
  `.hl_url`, `.aster_url`, `.port`, `.admin` (a `SimAdmin`), `.http` (a keep-alive `httpx.Client`:
  use it, a bare `httpx.post()` builds a new SSL context each call and costs ~150 ms).
- `funded_account` / `make_account`: fresh eth_account keys, funded on both venues.
- `engine_sim` (module scope): the same simulator process for bot processes (tests/harness/bots.py),
  reset and set to the harness's fixed marks once per module, so a module's shared bots never
  see a reset; `world`: fresh funded keys on it, and the bots a test starts (stopped after it).
- `pg_server` / `pg_url`, `nats_server`: PostgreSQL and JetStream servers, one per worker.

The servers themselves (and their starters, shared with bench/) live in `tests/harness/servers.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from tests.harness.bots import World, set_marks
from tests.harness.servers import (
    FundedAccount,
    NatsServer,
    PgServer,
    SimServer,
    start_nats_server,
    start_pg_server,
    start_sim_server,
    stop_nats_server,
    stop_pg_server,
    stop_sim_server,
)

__all__ = ["FundedAccount", "SimServer", "start_sim_server", "stop_sim_server"]


@pytest.fixture(scope="session")
def sim_server() -> Iterator[SimServer]:
    """One simulator process per test worker (rate limits off; see the module docstring)."""
    server = start_sim_server()
    yield server
    stop_sim_server(server)


@pytest.fixture
def sim(sim_server: SimServer) -> SimServer:
    """The worker's simulator, reset to its seeded start state for this test."""
    sim_server.admin.reset()
    return sim_server


@pytest.fixture(scope="module")
def engine_sim(sim_server: SimServer) -> SimServer:
    """The worker's simulator for bot processes, reset to the fixed marks once for this module.

    Module-shared bots live only within their module (its fixtures end before the next module's
    start), so this reset never pulls accounts from under a running bot; tests on it use fresh
    accounts and clear the faults they add instead of resetting it.
    """
    sim_server.admin.reset()
    set_marks(sim_server)
    return sim_server


@pytest.fixture
def world(engine_sim: SimServer, tmp_path: Path) -> Iterator[World]:
    """Fresh accounts on the module's simulator; bots started on them stop with the test."""
    w = World(sim=engine_sim, workdir=tmp_path)
    yield w
    for bot in w.bots:
        bot.stop()
    engine_sim.admin.clear_faults()


@pytest.fixture
def make_account(sim: SimServer) -> Callable[..., FundedAccount]:
    """Factory: `make_account(usd=100_000, venue="all")` → a new funded `FundedAccount`."""

    def make(usd: int = 100_000, venue: str = "all") -> FundedAccount:
        wallet: LocalAccount = Account.create()
        sim.admin.create_account(wallet.address, usd=usd, venue=venue)
        return FundedAccount(wallet=wallet, usd=usd)

    return make


@pytest.fixture
def funded_account(make_account: Callable[..., FundedAccount]) -> FundedAccount:
    """One fresh account with $100,000 on both venues."""
    account: FundedAccount = make_account()
    return account


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server per test worker."""
    server = start_pg_server()
    yield server
    stop_pg_server(server)


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh database on the worker's PostgreSQL server, as a SQLAlchemy URL."""
    return pg_server.create_database()


@pytest.fixture(scope="session")
def nats_server() -> Iterator[NatsServer]:
    """One JetStream-enabled nats-server per test worker."""
    server = start_nats_server()
    yield server
    stop_nats_server(server)
