"""Fresh keys funded on both simulated venues, and the real adapters (`build_venue`) for them."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from eth_account import Account

from newstrader.venues.base import Venue
from newstrader.venues.factory import build_venue


def funded_configs(
    sim: Any, marks: Mapping[str, Decimal], usd: int = 10_000_000
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """(venue settings by name, account address by venue): Hyperliquid with its own key, Aster v3
    with an approved API-wallet signer; the coins' marks set on the simulator."""
    hl, user, signer = Account.create(), Account.create(), Account.create()
    sim.admin.create_account(hl.address, usd=usd, venue="hyperliquid")
    sim.admin.create_account(user.address, usd=usd, venue="aster", signers=[signer.address])
    for coin, price in marks.items():
        sim.admin.set_price(coin, price)
    configs: dict[str, dict[str, Any]] = {
        "hyperliquid": {
            "name": "hyperliquid",
            "kind": "hyperliquid",
            "url": sim.hl_url,
            "account": hl.address,
            "secret": "0x" + bytes(hl.key).hex(),
        },
        "aster": {
            "name": "aster",
            "kind": "aster",
            "url": sim.aster_url,
            "account": user.address,
            "signer": signer.address,
            "secret": "0x" + bytes(signer.key).hex(),
        },
    }
    return configs, {"hyperliquid": str(hl.address), "aster": str(user.address)}


def funded_venues(
    sim: Any, marks: Mapping[str, Decimal], usd: int = 10_000_000
) -> tuple[dict[str, Venue], dict[str, str]]:
    """(venues by name, account address by venue): the real adapters for `funded_configs`."""
    configs, addresses = funded_configs(sim, marks, usd)
    return {name: build_venue(config) for name, config in configs.items()}, addresses
