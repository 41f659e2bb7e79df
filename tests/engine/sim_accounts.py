"""Fresh keys funded on both simulated venues, and the real adapters (`build_venue`) for them."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from newstrader.sim.accounts import SimAccounts
from newstrader.venues.base import Venue
from newstrader.venues.factory import build_venue


def funded_configs(
    sim: Any, marks: Mapping[str, Decimal], usd: int = 10_000_000
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """(venue settings by name, account address by venue): Hyperliquid with its own key, Aster v3
    with an approved API-wallet signer; the coins' marks set on the simulator."""
    keys = SimAccounts.fresh()
    sim.admin.create_account(keys.hl_address, usd=usd, venue="hyperliquid")
    sim.admin.create_account(keys.aster_user, usd=usd, venue="aster", signers=[keys.aster_signer])
    for coin, price in marks.items():
        sim.admin.set_price(coin, price)
    configs: dict[str, dict[str, Any]] = {
        "hyperliquid": {
            "name": "hyperliquid",
            "kind": "hyperliquid",
            "url": sim.hl_url,
            "account": keys.hl_address,
            "secret": keys.hl_key,
        },
        "aster": {
            "name": "aster",
            "kind": "aster",
            "url": sim.aster_url,
            "account": keys.aster_user,
            "signer": keys.aster_signer,
            "secret": keys.aster_signer_key,
        },
    }
    return configs, {"hyperliquid": keys.hl_address, "aster": keys.aster_user}


def funded_venues(
    sim: Any, marks: Mapping[str, Decimal], usd: int = 10_000_000
) -> tuple[dict[str, Venue], dict[str, str]]:
    """(venues by name, account address by venue): the real adapters for `funded_configs`."""
    configs, addresses = funded_configs(sim, marks, usd)
    return {name: build_venue(config) for name, config in configs.items()}, addresses
