"""The opt-in live testnet runs: `newstrader check --trade-test` against a real venue's testnet."""

from __future__ import annotations

import pytest

from newstrader.config import settings_from_mapping
from newstrader.preflight import VenueCheck, check_venue


async def live_trade_test(
    monkeypatch: pytest.MonkeyPatch, kind: str, key: str, account: str | None, url: str | None = None
) -> VenueCheck:
    """The full check, trade test included, of one testnet venue (at `url`, else the real one)."""
    name = f"live-{kind}"
    monkeypatch.setenv(f"NEWSTRADER_LIVE_{kind.upper()}_SECRET", key)
    venue = {"name": name, "kind": kind, "network": "testnet"}
    if account:
        venue["account"] = account
    if url:
        venue["url"] = url
    (cfg,) = settings_from_mapping({"venues": [venue]}).venues
    result = await check_venue(cfg, trade_test=True)
    print(f"{kind} testnet: trade test {result.trade_test}; problems {result.problems}")
    return result
