"""Fund a config's simulator accounts, so `init --sim` → `sim` → `run` trades with no other step.

A venue with `sim_fund_usd` (only allowed with `network = "sim"`; `newstrader init --sim`
writes it) gets its account created on the simulator with that balance, and its API wallet
approved, the first time `run` or `check` finds the account missing there. An account that
exists is never topped up again: losses stay losses.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from newstrader.config import Settings, VenueSettings

FUND_TIMEOUT_S = 5.0


def _admin_url(venue: VenueSettings) -> str:
    """`http://host:port/hyperliquid` → `http://host:port/admin` (the simulator's admin API)."""
    parts = urlsplit(venue.base_url)
    return f"{parts.scheme}://{parts.netloc}/admin"


def _account(venue: VenueSettings) -> str | None:
    if venue.account is not None:
        return venue.account
    if venue.kind == "hyperliquid" and venue.secret is not None:
        from eth_account import Account

        return str(Account.from_key(venue.secret.get_secret_value()).address)
    return None


async def fund_sim_accounts(settings: Settings) -> list[str]:
    """Create and fund missing simulator accounts; one sentence per venue acted on (or failed)."""
    said: list[str] = []
    async with httpx.AsyncClient(timeout=FUND_TIMEOUT_S, trust_env=False) as client:
        for venue in settings.venues:
            if venue.sim_fund_usd is None or venue.network != "sim":
                continue
            account = _account(venue)
            if account is None:
                said.append(f"{venue.name}: cannot fund on the simulator: set `account`")
                continue
            admin = _admin_url(venue)
            try:
                state = (await client.get(f"{admin}/state")).json()
                known = state["venues"][venue.kind]["accounts"]
                if account.lower() in known:
                    continue
                body = {
                    "venue": venue.kind,
                    "address": account,
                    "usd": str(venue.sim_fund_usd),
                    "signers": [venue.signer] if venue.signer else [],
                }
                (await client.post(f"{admin}/accounts", json=body)).raise_for_status()
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                said.append(
                    f"{venue.name}: simulator not reachable at {admin} ({type(exc).__name__}): "
                    "start it with `newstrader sim`"
                )
                continue
            said.append(f"{venue.name}: funded {account} with {venue.sim_fund_usd} USD on the simulator")
    return said
