"""`build_venue(cfg) -> Venue`: the only place that maps configuration to a concrete adapter.

`cfg` is a `VenueSettings` (name, kind, network, url, account, signer, api_key, auth, secret,
order_validity_s); the adapters get their own config dataclasses, not the settings model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from newstrader.config import VenueSettings
from newstrader.venues.aster.config import DEFAULT_URLS as ASTER_URLS
from newstrader.venues.aster.config import AsterConfig
from newstrader.venues.aster.venue import AsterVenue
from newstrader.venues.base import AuthError, Venue
from newstrader.venues.hyperliquid.config import DEFAULT_URLS as HL_URLS
from newstrader.venues.hyperliquid.config import HyperliquidConfig
from newstrader.venues.hyperliquid.signing import L1Signer
from newstrader.venues.hyperliquid.venue import HyperliquidVenue

KINDS = ("hyperliquid", "aster")
DEFAULT_TIMEOUT_S = 10.0  # one request; the engine passes its `order_timeout_s`


def _secret(cfg: VenueSettings) -> str:
    if cfg.secret is None or not cfg.secret.get_secret_value():
        raise AuthError(
            f"venue {cfg.name!r} has no secret: set NEWSTRADER_{cfg.name.upper()}_SECRET or secret_file",
            venue=cfg.name,
        )
    return cfg.secret.get_secret_value()


def default_url(kind: str, network: str) -> str:
    """The base URL of `kind` on `network` (sim | testnet | mainnet)."""
    urls = HL_URLS if kind == "hyperliquid" else ASTER_URLS
    if network not in urls:
        raise ValueError(f"network must be one of {', '.join(urls)}, not {network!r}")
    return urls[network]


def build_venue(cfg: VenueSettings | Mapping[str, Any], *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Venue:
    """A ready (not yet connected) adapter for one `[[venues]]` entry; `cfg.url` overrides the default.

    A mapping is validated as `VenueSettings` first (its errors name the key). `timeout_s`
    (the engine's `order_timeout_s`) bounds how long one request may take.
    """
    if not isinstance(cfg, VenueSettings):
        cfg = VenueSettings.model_validate(cfg)
    name, kind, network = cfg.name, cfg.kind, cfg.network
    url = cfg.url or default_url(kind, network)
    secret = _secret(cfg)
    account = cfg.account or ""
    if not account:
        if kind == "aster" and cfg.auth == "hmac":
            raise ValueError(f"venues.account is required (venue {name!r})")
        account = L1Signer(secret).address  # the key trades its own account (user == signer)
    if kind == "hyperliquid":
        hl_config = HyperliquidConfig(
            name=name,
            url=url,
            account=account,
            secret=secret,
            network=network,
            timeout_s=timeout_s,
            is_mainnet=network == "mainnet",
        )
        if cfg.order_validity_s is not None:  # else the adapter's own default
            hl_config = replace(hl_config, order_validity_s=cfg.order_validity_s)
        return HyperliquidVenue(hl_config)
    aster_config = AsterConfig(
        name=name,
        url=url,
        account=account,
        secret=secret,
        auth=cfg.auth,
        api_key=cfg.api_key,
        signer=cfg.signer,
        network=network,
        timeout_s=timeout_s,
    )
    if cfg.order_validity_s is not None:  # HMAC requests older than recvWindow are refused
        aster_config = replace(aster_config, recv_window_ms=round(cfg.order_validity_s * 1000))
    return AsterVenue(aster_config)
