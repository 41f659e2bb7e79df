"""Hyperliquid transport: one keep-alive httpx client, weighted rate limiting, error mapping.

Reads (`/info`) are retried on transient failures, since asking again is always safe; actions
(`/exchange`) are retried only when the venue provably did not run them (429 before execution).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx

from newstrader.venues.base import Ambiguous, RateLimited, Transient
from newstrader.venues.errors import (
    classify_http,
    classify_hyperliquid_text,
    classify_transport,
)
from newstrader.venues.limits import (
    REGISTRY,
    LimitRegistry,
    Priority,
    RateLimiter,
    hyperliquid_exchange_weight,
    hyperliquid_info_weight,
    hyperliquid_items_weight,
)
from newstrader.venues.retry import read_retries
from newstrader.venues.written import OnWritten, written_trace

DEFAULT_429_HOLD_S = 1.0


class HyperliquidHttp:
    """POST /info and POST /exchange against one base URL."""

    def __init__(
        self,
        base_url: str,
        *,
        venue: str,
        timeout_s: float = 10.0,
        ip_weight_per_min: int = 1200,
        registry: LimitRegistry = REGISTRY,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.venue = venue
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
            limits=httpx.Limits(max_keepalive_connections=16, max_connections=32, keepalive_expiry=60),
            headers={"Content-Type": "application/json"},
            transport=transport,
        )
        self.limiter = RateLimiter(venue)
        self.ip_bucket = registry.bucket(("hyperliquid", self.base_url), ip_weight_per_min)
        # An action's URL and headers, built once: `client.post(path)` parses and merges the URL
        # and headers on every call, a third of an order's own time before its bytes go out.
        self._exchange_url = httpx.URL(self.base_url + "/exchange")
        self._exchange_headers = httpx.Headers(self._client.headers)
        self._exchange_extensions = {"timeout": self._client.timeout.as_dict()}

    async def close(self) -> None:
        await self._client.aclose()

    async def info(self, body: dict[str, Any]) -> Any:
        """A read; transient failures are retried by the one read policy (`venues/retry.py`)."""
        weight = hyperliquid_info_weight(str(body.get("type", "")))
        async for attempt in read_retries():
            with attempt:
                data = await self._post("/info", body, weight, is_order=False)
                if isinstance(data, list):  # userFills & co. weigh +1 per 20 items, known only now
                    self.ip_bucket.charge(hyperliquid_items_weight(str(body.get("type", "")), len(data)))
                return data
        raise AssertionError("unreachable: the last attempt raises")

    async def exchange_encoded(
        self,
        content: bytes,
        batch_length: int,
        *,
        reserved: bool = False,
        on_written: OnWritten | None = None,
    ) -> Any:
        """A signed action already encoded (`encode_envelope`), sent once: only the engine decides
        to send again (after a fresh read). `reserved`: its weight was taken by `reserve_exchange`;
        `on_written` is called once its bytes are on the socket."""
        return await self._post(
            "/exchange",
            content,
            0 if reserved else hyperliquid_exchange_weight(batch_length),
            is_order=True,
            on_written=on_written,
        )

    async def reserve_exchange(self, batch_length: int) -> None:
        """Wait for (and take) an action's weight now, so its send waits on nothing."""
        await self.limiter.acquire(
            [(self.ip_bucket, hyperliquid_exchange_weight(batch_length))], Priority.ORDER
        )

    async def _post(
        self,
        path: str,
        body: dict[str, Any] | bytes,
        weight: int,
        *,
        is_order: bool,
        on_written: OnWritten | None = None,
    ) -> Any:
        if weight:
            await self.limiter.acquire([(self.ip_bucket, weight)], Priority.ORDER if is_order else None)
        content = body if isinstance(body, bytes) else encode_envelope(body)
        try:
            if path == "/exchange":
                extensions: dict[str, Any] = {**self._exchange_extensions}  # a transport may add to it
                if on_written is not None:
                    extensions["trace"] = written_trace(on_written)
                request = httpx.Request(
                    "POST",
                    self._exchange_url,
                    headers=self._exchange_headers,
                    content=content,
                    extensions=extensions,
                )
                response = await self._client.send(request)
            else:
                response = await self._client.post(path, content=content)
        except httpx.HTTPError as exc:
            raise classify_transport(exc, venue=self.venue, is_order=is_order) from exc
        if response.status_code == 429:
            hold = _retry_after(response.headers) or DEFAULT_429_HOLD_S
            self.ip_bucket.hold(hold)
            raise RateLimited("HTTP 429", venue=self.venue, code=429, retry_after=hold)
        if response.status_code != 200:
            raise classify_http(
                response.status_code,
                response.text,
                venue=self.venue,
                is_order=is_order,
                headers=response.headers,
            )
        try:
            data = json.loads(response.content, parse_float=Decimal)
        except ValueError as exc:
            text = response.text[:200]
            if is_order:  # the action may have run; we cannot tell from an unreadable reply
                raise Ambiguous(f"unreadable reply: {text}", venue=self.venue) from exc
            raise Transient(f"unreadable reply: {text}", venue=self.venue) from exc
        if path == "/exchange" and isinstance(data, dict) and data.get("status") == "err":
            raise classify_hyperliquid_text(str(data.get("response")), venue=self.venue, is_order=is_order)
        return data


def encode_envelope(body: dict[str, Any]) -> bytes:
    """A request body as the venue reads it: compact JSON."""
    return json.dumps(body, separators=(",", ":")).encode()


def _retry_after(headers: httpx.Headers) -> float | None:
    raw = headers.get("retry-after")
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None
