"""Hyperliquid adapter settings: where to connect, whom to act for, which key signs."""

from __future__ import annotations

from dataclasses import dataclass

MAINNET_URL = "https://api.hyperliquid.xyz"
TESTNET_URL = "https://api.hyperliquid-testnet.xyz"
SIM_URL = "http://127.0.0.1:8900/hyperliquid"
DEFAULT_URLS = {"mainnet": MAINNET_URL, "testnet": TESTNET_URL, "sim": SIM_URL}


@dataclass(frozen=True, slots=True)
class HyperliquidConfig:
    """`account` is the trading address; `secret` the key of the signer (the account or an agent wallet)."""

    name: str
    url: str
    account: str
    secret: str
    network: str = "testnet"
    vault_address: str | None = None
    timeout_s: float = 10.0
    order_validity_s: float = 10.0  # sent as `expiresAfter`: a late order is refused, never executed
    ip_weight_per_min: int = 1200
    # The simulator, like testnet, expects phantom-agent source "b"; only mainnet signs with "a".
    is_mainnet: bool = False

    def __repr__(self) -> str:  # the secret never reaches a log line
        return f"HyperliquidConfig(name={self.name!r}, url={self.url!r}, account={self.account!r})"
