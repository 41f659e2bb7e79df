"""Aster adapter settings: v3 (user + API-wallet signer key, the default) or legacy HMAC (key + secret)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MAINNET_URL = "https://fapi.asterdex.com"
TESTNET_URL = "https://fapi.asterdex-testnet.com"
SIM_URL = "http://127.0.0.1:8900/aster"
DEFAULT_URLS = {"mainnet": MAINNET_URL, "testnet": TESTNET_URL, "sim": SIM_URL}


@dataclass(frozen=True, slots=True)
class AsterConfig:
    """`account` is the user (main wallet); v3 signs with `secret` (the signer's key), HMAC with `secret`."""

    name: str
    url: str
    account: str
    secret: str
    auth: Literal["v3", "hmac"] = "v3"
    api_key: str | None = None
    signer: str | None = None  # expected signer address; checked against the key when given
    network: str = "testnet"
    timeout_s: float = 10.0
    recv_window_ms: int = 5000
    ip_weight_per_min: int = 2400
    orders_per_min: int = 1200

    @property
    def chain_id(self) -> int:
        return 1666 if self.network == "mainnet" else 714

    def __repr__(self) -> str:  # the secret never reaches a log line
        return (
            f"AsterConfig(name={self.name!r}, url={self.url!r}, account={self.account!r}, auth={self.auth!r})"
        )
