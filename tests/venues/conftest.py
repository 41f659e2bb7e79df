"""Venue fixtures: real adapters (built by `build_venue`) against the shared simulator."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account

from newstrader.venues.base import Venue
from newstrader.venues.factory import build_venue
from newstrader.venues.limits import REGISTRY

KINDS = ("hyperliquid", "aster-v3", "aster-hmac")


@dataclass
class VenueUnderTest:
    """An adapter plus what the test needs to look behind it (sim venue name, account)."""

    venue: Any
    sim_venue: str  # "hyperliquid" | "aster"
    account: str
    kind: str


def make_venue(sim: Any, kind: str, *, timeout_s: float = 5.0, usd: int = 100_000) -> VenueUnderTest:
    """A fresh funded account on the simulator and an adapter for it."""
    wallet = Account.create()
    sim_venue = "hyperliquid" if kind.startswith("hyperliquid") else "aster"
    cfg: dict[str, Any] = {
        "name": kind,
        "kind": sim_venue,
        "network": "sim",
        "account": wallet.address,
        "secret": "0x" + bytes(wallet.key).hex(),
    }
    if kind == "hyperliquid-agent":  # signer ≠ account: an approved agent wallet signs
        agent = Account.create()
        sim.admin.create_account(wallet.address, usd=usd, venue="hyperliquid")
        sim.admin.add_agent(wallet.address, agent.address, venue="hyperliquid")
        cfg["secret"] = "0x" + bytes(agent.key).hex()
    elif kind == "aster-hmac":
        api_key, secret = secrets.token_hex(32), secrets.token_hex(32)
        sim.admin.create_account(wallet.address, usd=usd, venue="aster", api_key=api_key, secret=secret)
        cfg.update(auth="hmac", api_key=api_key, secret=secret)
    else:
        sim.admin.create_account(wallet.address, usd=usd, venue=sim_venue)
    cfg["url"] = sim.hl_url if sim_venue == "hyperliquid" else sim.aster_url
    return VenueUnderTest(build_venue(cfg, timeout_s=timeout_s), sim_venue, wallet.address, kind)


@pytest.fixture(autouse=True)
def fresh_rate_buckets() -> None:
    """The simulator is reset per test, so the client's shared buckets start full too."""
    REGISTRY.reset()


@pytest.fixture(params=KINDS)
async def vut(request: pytest.FixtureRequest, sim: Any) -> AsyncIterator[VenueUnderTest]:
    """One adapter per venue kind (Aster in both auth modes)."""
    made = make_venue(sim, request.param)
    assert isinstance(made.venue, Venue)
    yield made
    await made.venue.close()


@pytest.fixture
async def venue_factory(sim: Any) -> AsyncIterator[Callable[..., VenueUnderTest]]:
    """Build extra adapters inside a test; all are closed at the end."""
    made: list[VenueUnderTest] = []

    def factory(kind: str, **kwargs: Any) -> VenueUnderTest:
        venue = make_venue(sim, kind, **kwargs)
        made.append(venue)
        return venue

    yield factory
    for venue in made:
        await venue.venue.close()
