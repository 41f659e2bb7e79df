"""Aster transport: signed and public calls, the server clock offset, weights and error mapping."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import structlog

from newstrader.venues.aster.config import AsterConfig
from newstrader.venues.aster.signing import MicrosecondNonces, V3Signer, encode_params, hmac_signature
from newstrader.venues.base import Ambiguous, AuthError, Expired, RateLimited, Transient
from newstrader.venues.errors import classify_aster, classify_http, classify_transport
from newstrader.venues.limits import (
    REGISTRY,
    LimitRegistry,
    Priority,
    RateLimiter,
    aster_is_order,
    aster_request_weight,
)
from newstrader.venues.retry import read_retries
from newstrader.venues.written import OnWritten, written_trace

log = structlog.get_logger(__name__)

DEFAULT_429_HOLD_S = 1.0
# Legacy HMAC keys live on v1 paths, except these (Binance-style) newer generations.
_HMAC_PATHS = {
    "positionRisk": "/fapi/v2/positionRisk",
    "balance": "/fapi/v2/balance",
    "account": "/fapi/v4/account",
}
# v3 names that differ from the legacy ones: the v3 docs list the account read only as this.
_V3_PATHS = {"account": "/fapi/v3/accountWithJoinMargin"}
# The v3 venue refuses a nonce more than this far from its clock (docs "V3 Nonce Mechanism").
V3_NONCE_WINDOW_S = 10.0


@dataclass(frozen=True, slots=True)
class SignedOrder:
    """An order call signed and encoded by `AsterHttp.sign_order`, not yet sent."""

    method: str
    path: str
    params: list[tuple[str, str]]
    encoded: str


class AsterHttp:
    """Signed (v3 or HMAC) and public REST calls against one Aster base URL."""

    def __init__(
        self,
        config: AsterConfig,
        *,
        registry: LimitRegistry = REGISTRY,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.venue = config.name
        self.config = config
        self.base_url = config.url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(config.timeout_s, connect=min(config.timeout_s, 5.0)),
            limits=httpx.Limits(max_keepalive_connections=16, max_connections=32, keepalive_expiry=60),
            transport=transport,
        )
        self.limiter = RateLimiter(config.name)
        self.ip_bucket = registry.bucket(("aster", self.base_url), config.ip_weight_per_min)
        self.order_bucket = registry.bucket(
            ("aster", self.base_url, config.account.lower()), config.orders_per_min
        )
        self.nonces = MicrosecondNonces()
        # How long a signed request stays acceptable after its stamp (nonce or timestamp).
        self.validity_s = V3_NONCE_WINDOW_S if config.auth == "v3" else config.recv_window_ms / 1000
        self.offset_ms = 0
        self._synced = False
        self._sync_lock = asyncio.Lock()
        if config.auth == "v3":
            self.v3: V3Signer | None = V3Signer(config.secret, chain_id=config.chain_id)
            if config.signer and config.signer.lower() != self.v3.address.lower():
                raise AuthError(
                    f"the key signs as {self.v3.address}, not the configured signer {config.signer}",
                    venue=config.name,
                )
        elif config.auth == "hmac":
            self.v3 = None
            if not config.api_key:
                raise AuthError("auth = 'hmac' needs api_key (and the secret)", venue=config.name)
        else:
            raise AuthError(f"auth must be 'v3' or 'hmac', not {config.auth!r}", venue=config.name)

    async def close(self) -> None:
        await self._client.aclose()

    def path(self, name: str, *, signed: bool) -> str:
        if not signed:
            return f"/fapi/v1/{name}"
        if self.v3 is not None:
            return _V3_PATHS.get(name, f"/fapi/v3/{name}")
        return _HMAC_PATHS.get(name, f"/fapi/v1/{name}")

    async def sync_clock(self) -> None:
        """Measure the server clock offset from /fapi/v1/time (half the round trip counted)."""
        async with self._sync_lock:
            before = time.time()
            reply = await self.public("GET", "time")
            after = time.time()
            local_ms = (before + after) / 2 * 1000
            self.offset_ms = int(int(reply["serverTime"]) - local_ms)
            self.nonces.offset_us = self.offset_ms * 1000
            self._synced = True
            log.info("clock_synced", venue=self.venue, offset_ms=self.offset_ms)

    async def public(self, method: str, name: str, params: list[tuple[str, str]] | None = None) -> Any:
        """An unsigned call (exchangeInfo, time, premiumIndex, ...); retried on transient errors."""
        return await self._with_read_retries(
            method, self.path(name, signed=False), list(params or []), signed=False
        )

    async def signed(
        self,
        method: str,
        name: str,
        params: list[tuple[str, str]] | None = None,
        *,
        is_order: bool = False,
        not_after: datetime | None = None,
    ) -> Any:
        """A signed call; reads are retried, orders never are (a retry would need a fresh look first).

        An order is stamped so that the venue refuses it after `not_after` (its intent time plus
        `validity_s`): the nonce (v3) or timestamp (HMAC) is that window's start, not the send."""
        if not is_order:
            if not self._synced:
                await self.sync_clock()
            return await self._with_read_retries(
                method, self.path(name, signed=True), list(params or []), signed=True
            )
        return await self.send_order(await self.sign_order(method, name, params or [], not_after))

    async def sign_order(
        self, method: str, name: str, params: list[tuple[str, str]], not_after: datetime | None
    ) -> SignedOrder:
        """An order call built and signed, not sent (`send_order` sends it). Its stamp is its
        window's start (see `signed`), so signing before the limiter's wait changes nothing."""
        if not self._synced:
            await self.sync_clock()
        path = self.path(name, signed=True)
        # Any wait for the rate budget happens here, not in the send.
        await self._acquire(method, path, params, is_order=True)
        return SignedOrder(method, path, list(params), self._sign(list(params), not_after))

    async def send_order(self, order: SignedOrder, *, on_written: OnWritten | None = None) -> Any:
        """Send a signed order call once; `on_written` is called once its bytes are on the socket."""
        try:
            return await self._send_encoded(
                order.method, order.path, order.encoded, is_order=True, on_written=on_written
            )
        except Expired as exc:
            if exc.code == -1021:  # our clock may have drifted: the next leg's stamp is corrected
                await self.sync_clock()
            raise

    def _sign(self, params: list[tuple[str, str]], not_after: datetime | None = None) -> str:
        now_us = time.time_ns() // 1000
        start_us = now_us  # the window opens at the stamp: at the send, or earlier for an order
        if not_after is not None:
            start_us = min(now_us, int(not_after.timestamp() * 1_000_000) - round(self.validity_s * 1e6))
        if self.v3 is not None:
            nonce = self.nonces.next() if start_us == now_us else self.nonces.at(start_us)
            return self.v3.signed_params(self.config.account, nonce, params)
        timestamp = start_us // 1000 + self.offset_ms
        payload = encode_params(
            [*params, ("recvWindow", str(self.config.recv_window_ms)), ("timestamp", str(timestamp))]
        )
        return f"{payload}&signature={hmac_signature(self.config.secret, payload)}"

    async def _with_read_retries(
        self,
        method: str,
        path: str,
        params: list[tuple[str, str]],
        *,
        signed: bool,
    ) -> Any:
        """A read under the one read policy (`venues/retry.py`); a signed one gets a fresh nonce or
        timestamp on every attempt, and the clock is synced again after a -1021."""
        async for attempt in read_retries():
            with attempt:
                try:
                    return await self._call(method, path, params, is_order=False, signed=signed)
                except Transient as exc:
                    if exc.code == -1021 and signed:
                        await self.sync_clock()
                    raise
        raise AssertionError("unreachable: the last attempt raises")

    async def _call(
        self,
        method: str,
        path: str,
        params: list[tuple[str, str]],
        *,
        is_order: bool,
        signed: bool,
        not_after: datetime | None = None,
    ) -> Any:
        await self._acquire(method, path, params, is_order=is_order)
        # Signed after the limiter's wait, never before: a read held back for seconds behind
        # trading would otherwise reach the venue with a timestamp or nonce outside its window
        # (-1021, "outside of the +-10 s window") and be sent again.
        encoded = self._sign(params, not_after) if signed else encode_params(params)
        return await self._send_encoded(method, path, encoded, is_order=is_order)

    async def _acquire(
        self, method: str, path: str, params: list[tuple[str, str]], *, is_order: bool
    ) -> None:
        weight = aster_request_weight(path, method, dict(params))
        costs = [(self.ip_bucket, weight)]
        if aster_is_order(path, method):
            costs.append((self.order_bucket, 1))
        await self.limiter.acquire(costs, Priority.ORDER if is_order else None)

    async def _send_encoded(
        self, method: str, path: str, encoded: str, *, is_order: bool, on_written: OnWritten | None = None
    ) -> Any:
        headers = {"X-MBX-APIKEY": self.config.api_key} if self.v3 is None and self.config.api_key else {}
        extensions = {} if on_written is None else {"trace": written_trace(on_written)}
        try:
            if method == "POST":
                headers["Content-Type"] = "application/x-www-form-urlencoded"
                response = await self._client.post(
                    path, content=encoded, headers=headers, extensions=extensions
                )
            else:
                url = f"{path}?{encoded}" if encoded else path
                response = await self._client.request(method, url, headers=headers)
        except httpx.HTTPError as exc:
            raise classify_transport(exc, venue=self.venue, is_order=is_order) from exc
        return self._parse(response, is_order=is_order)

    def _parse(self, response: httpx.Response, *, is_order: bool) -> Any:
        used = response.headers.get("x-mbx-used-weight-1m")
        if used is not None and used.isdigit():  # stay in step with the venue's own count
            self.ip_bucket.observe_used(float(used), self.config.ip_weight_per_min)
        try:
            data = json.loads(response.content, parse_float=Decimal) if response.content else None
        except ValueError:
            data = None
        if response.status_code in (418, 429):
            hold = _retry_after(response.headers) or DEFAULT_429_HOLD_S
            self.ip_bucket.hold(hold)
            raise RateLimited(
                f"HTTP {response.status_code}", venue=self.venue, code=response.status_code, retry_after=hold
            )
        error_code = _error_code(data)
        if error_code is not None and isinstance(data, dict):
            error = classify_aster(
                error_code,
                str(data.get("msg", "")),
                venue=self.venue,
                is_order=is_order,
                http_status=response.status_code,
            )
            if error_code == -1022 and self.v3 is not None:
                # A v3 signature over the other network's chain id reads as a bad signature: say so.
                error = AuthError(
                    f"{error} (this adapter signs for network {self.config.network!r}, chain id "
                    f"{self.config.chain_id}: a server on the other network refuses it; check `network` "
                    f"matches {self.base_url})",
                    venue=self.venue,
                    code=error_code,
                )
            raise error
        if response.status_code >= 300:
            raise classify_http(
                response.status_code,
                response.text,
                venue=self.venue,
                is_order=is_order,
                headers=response.headers,
            )
        if data is None:
            text = f"unreadable reply: {response.text[:200]}"
            raise Ambiguous(text, venue=self.venue) if is_order else Transient(text, venue=self.venue)
        return data


def _error_code(data: Any) -> int | None:
    """The Binance-style error code of a reply, or None for success (`code` 200 / "200" is success)."""
    if not isinstance(data, dict) or "code" not in data or "msg" not in data:
        return None
    try:
        code = int(data["code"])
    except (TypeError, ValueError):
        return None
    return None if code in (0, 200) else code


def _retry_after(headers: httpx.Headers) -> float | None:
    raw = headers.get("retry-after")
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None
