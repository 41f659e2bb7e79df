"""`build_venue(cfg) -> Venue`: the only place that maps configuration to a concrete adapter.

`cfg` is a `VenueSettings` (name, kind, network, url, account, signer, api_key, auth, secret),
read by attribute so the adapters do not depend on the config module's internals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from newstrader.venues.aster.config import DEFAULT_URLS as ASTER_URLS
from newstrader.venues.aster.config import AsterConfig
from newstrader.venues.aster.venue import AsterVenue
from newstrader.venues.base import AuthError, Venue
from newstrader.venues.hyperliquid.config import DEFAULT_URLS as HL_URLS
from newstrader.venues.hyperliquid.config import HyperliquidConfig
from newstrader.venues.hyperliquid.signing import L1Signer
from newstrader.venues.hyperliquid.venue import HyperliquidVenue

if TYPE_CHECKING:
    from newstrader.config import VenueSettings

KINDS = ("hyperliquid", "aster")


def _get(cfg: Any, key: str, default: Any = None) -> Any:
    value = cfg.get(key, default) if isinstance(cfg, dict) else getattr(cfg, key, default)
    return default if value is None else value


def _secret(cfg: Any) -> str:
    raw = _get(cfg, "secret")
    if raw is not None and hasattr(raw, "get_secret_value"):
        raw = raw.get_secret_value()
    if not raw:
        name = _get(cfg, "name", "?")
        raise AuthError(
            f"venue {name!r} has no secret: set NEWSTRADER_{str(name).upper()}_SECRET or secret_file",
            venue=str(name),
        )
    return str(raw)


def default_url(kind: str, network: str) -> str:
    """The base URL of `kind` on `network` (sim | testnet | mainnet)."""
    urls = HL_URLS if kind == "hyperliquid" else ASTER_URLS
    if network not in urls:
        raise ValueError(f"network must be one of {', '.join(urls)}, not {network!r}")
    return urls[network]


def build_venue(cfg: VenueSettings | Mapping[str, Any], *, timeout_s: float | None = None) -> Venue:
    """A ready (not yet connected) adapter for one `[[venues]]` entry; `cfg.url` overrides the default.

    `timeout_s` (the engine's `order_timeout_s`) bounds how long one request may take.
    """
    kind = str(_get(cfg, "kind", ""))
    name = str(_get(cfg, "name", kind))
    network = str(_get(cfg, "network", "sim"))
    if kind not in KINDS:
        raise ValueError(f"venues.kind must be one of {', '.join(KINDS)}, not {kind!r} (venue {name!r})")
    url = str(_get(cfg, "url", "") or default_url(kind, network))
    secret = _secret(cfg)
    account = str(_get(cfg, "account", ""))
    if not account:
        if kind == "aster" and _get(cfg, "auth", "v3") == "hmac":
            raise ValueError(f"venues.account is required (venue {name!r})")
        account = L1Signer(secret).address  # the key trades its own account (user == signer)
    timeout_s = float(timeout_s if timeout_s is not None else _get(cfg, "timeout_s", 10.0))
    # The order validity window, when the config sets one; else each adapter's own default.
    seconds = _get(cfg, "order_validity_s")
    if kind == "hyperliquid":
        hl_config = HyperliquidConfig(
            name=name,
            url=url,
            account=account,
            secret=secret,
            network=network,
            vault_address=_get(cfg, "vault_address"),
            timeout_s=timeout_s,
            is_mainnet=network == "mainnet",
        )
        if seconds is not None:
            hl_config = replace(hl_config, order_validity_s=float(seconds))
        return HyperliquidVenue(hl_config)
    auth = str(_get(cfg, "auth", "v3"))
    aster_config = AsterConfig(
        name=name,
        url=url,
        account=account,
        secret=secret,
        auth="hmac" if auth == "hmac" else "v3",
        api_key=_get(cfg, "api_key"),
        signer=_get(cfg, "signer"),
        network=network,
        timeout_s=timeout_s,
    )
    if seconds is not None:  # HMAC requests older than recvWindow are refused
        aster_config = replace(aster_config, recv_window_ms=round(float(seconds) * 1000))
    return AsterVenue(aster_config)
