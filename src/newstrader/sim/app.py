"""The simulator's one ASGI app: `/hyperliquid`, `/aster`, `/admin`, with faults and request stats.

`create_app(seed, config)` builds a `Sim` (the whole simulated world) and mounts:

- `/hyperliquid/info`, `/hyperliquid/exchange` — `newstrader.sim.hyperliquid_api.build_router(sim)`.
- `/aster/...` — `newstrader.sim.aster_api.build_router(sim)` when that module exists.
- `/admin/...` — `newstrader.sim.admin.build_router(sim)`.
- websockets: `/hyperliquid/ws` (`hyperliquid_ws`), `/aster/fstream/...` and the listenKey REST
  paths (`aster_ws`); every exchange change is pushed through `push.PushHub`.

Contract for a venue API module: `build_router(sim: Sim) -> fastapi.APIRouter`, its paths relative
to the venue prefix (e.g. `/fapi/v3/order`). It trades through `sim.exchanges[venue]`
(a `market.Exchange`; look it up per request, never keep it: reset replaces it), creates
rate limiters with `sim.new_limiter(...)` (they obey the
`rate_limits` switch and are cleared on reset), may call `sim.on_reset(fn)` to clear its own
state (nonce books, ...) on `POST /admin/reset`, and may set `sim.classifiers[venue] =
fn(method, subpath, body_bytes) -> label` to name requests for `/admin/stats` and fault
`endpoint` matching (default label: `"<METHOD> <subpath>"`, e.g. `GET /fapi/v3/positionRisk`).
Request bodies are read once by the middleware; routes read them again as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import structlog
from fastapi import FastAPI

from newstrader.sim.faults import DEFAULT_TIMEOUT_MS, Fault, FaultTable
from newstrader.sim.limits import WeightLimiter
from newstrader.sim.market import Exchange, ExchangeConfig, MarketSpec, VenueName

if TYPE_CHECKING:
    from newstrader.sim.aster_api import AsterApi

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Classifier = Callable[[str, str, bytes], str]

VENUES: tuple[VenueName, ...] = ("hyperliquid", "aster")
log = structlog.get_logger("newstrader.sim")


@dataclass(slots=True)
class SimConfig:
    """Simulator settings; every field has the production-like default."""

    # Which network the simulator plays. Like the real venues it accepts only that network's
    # signatures: Aster chain id 714 (testnet) or 1666 (mainnet), Hyperliquid phantom-agent source
    # "b" (testnet) or "a" (mainnet). `hl_source` / `aster_chain_ids` override that when set.
    network: Literal["testnet", "mainnet"] = "testnet"
    hl_source: Literal["a", "b", "any"] | None = None
    aster_chain_ids: tuple[int, ...] | None = None
    rate_limits: bool = True
    hl_ip_weight_per_min: int = 1200
    hl_address_base_budget: int = 10_000
    hl_nonce_back_ms: int = 2 * 86_400_000  # a nonce may be this far behind the server clock
    hl_nonce_ahead_ms: int = 86_400_000  # … or this far ahead
    hl_nonces_kept: int = 100
    timeout_ms: int = DEFAULT_TIMEOUT_MS  # how long the `timeout` fault holds a request
    hyperliquid: ExchangeConfig = field(default_factory=ExchangeConfig)
    aster: ExchangeConfig = field(
        default_factory=lambda: ExchangeConfig(
            taker_fee=Decimal("0.00035"),
            maker_fee=Decimal("0.0001"),
            immediate_trigger="reject",
            notional_price="limit",
        )
    )
    markets: dict[str, dict[str, MarketSpec]] = field(default_factory=dict)  # venue → coin → spec override
    clock: Callable[[], int] | None = None  # ms; inject a fake clock for fully repeatable runs
    walk_interval_s: float = 0.0  # > 0: marks take a seeded random-walk step this often (paper trading)
    hl_ws_idle_timeout_s: float = 60.0  # Hyperliquid closes a socket the client left silent this long
    aster_listen_key_ttl_ms: int = 3_600_000  # a listenKey lives 60 min after its last POST/PUT
    aster_ws_max_lifetime_s: float = 86_400.0  # Aster cuts every connection at 24 h

    def hl_sources(self) -> tuple[str, ...]:
        """The phantom-agent sources whose signatures are accepted."""
        source = self.hl_source or ("a" if self.network == "mainnet" else "b")
        return ("a", "b") if source == "any" else (source,)

    def aster_chains(self) -> tuple[int, ...]:
        """The EIP-712 chain ids whose Aster v3 signatures are accepted."""
        if self.aster_chain_ids is not None:
            return self.aster_chain_ids
        return (1666,) if self.network == "mainnet" else (714,)


class RequestStats:
    """Request counts and IP weight charged per venue and request type, for `GET /admin/stats`.

    The weight is what the venue's own rate limit charges (also with limits off), so a bench can
    say what a workload costs against the budget (e.g. weight per signal)."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = {}
        self.weights: dict[str, dict[str, int]] = {}
        self.faults_fired: dict[str, int] = {}

    def record(self, venue: str, label: str) -> None:
        per_venue = self.counts.setdefault(venue, {})
        per_venue[label] = per_venue.get(label, 0) + 1

    def charge(self, venue: str, label: str, weight: int) -> None:
        """`weight` of the venue's per-IP budget spent by a request labelled `label`."""
        per_venue = self.weights.setdefault(venue, {})
        per_venue[label] = per_venue.get(label, 0) + weight

    def record_fault(self, kind: str) -> None:
        self.faults_fired[kind] = self.faults_fired.get(kind, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": {venue: dict(sorted(c.items())) for venue, c in sorted(self.counts.items())},
            "totals": {venue: sum(c.values()) for venue, c in sorted(self.counts.items())},
            "weights": {venue: dict(sorted(w.items())) for venue, w in sorted(self.weights.items())},
            "weight_totals": {venue: sum(w.values()) for venue, w in sorted(self.weights.items())},
            "faults_fired": dict(sorted(self.faults_fired.items())),
        }

    def reset(self) -> None:
        self.counts.clear()
        self.weights.clear()
        self.faults_fired.clear()


class Sim:
    """The whole simulated world: both exchanges, faults, rate limiters and request stats."""

    def __init__(self, seed: int = 1, config: SimConfig | None = None) -> None:
        self.seed = seed
        self.config = config or SimConfig()
        self._initial_rate_limits = self.config.rate_limits
        self.faults = FaultTable(seed)
        self.stats = RequestStats()
        self.classifiers: dict[str, Classifier] = {}
        self._limiters: list[WeightLimiter] = []
        self._reset_hooks: list[Callable[[], None]] = []
        self.exchanges: dict[str, Exchange] = {}
        self.aster_api: AsterApi | None = None  # set by aster_api.build_router; the websocket side reuses it
        self._build_exchanges()

    def _build_exchanges(self) -> None:
        for venue in VENUES:
            cfg: ExchangeConfig = getattr(self.config, venue)
            self.exchanges[venue] = Exchange(
                venue,
                seed=self.seed,
                markets=dict(self.config.markets[venue]) if venue in self.config.markets else None,
                config=cfg,
                clock=self.config.clock,
            )

    @property
    def hyperliquid(self) -> Exchange:
        return self.exchanges["hyperliquid"]

    @property
    def aster(self) -> Exchange:
        return self.exchanges["aster"]

    def now_ms(self) -> int:
        """Simulator wall clock in ms (the injected clock when one is configured)."""
        return self.config.clock() if self.config.clock is not None else int(time.time() * 1000)

    def new_limiter(self, capacity: int, window_ms: int = 60_000) -> WeightLimiter:
        """A weight limiter that follows the `rate_limits` switch and is cleared on reset."""
        limiter = WeightLimiter(capacity, window_ms, clock=self.config.clock)
        limiter.enabled = self.config.rate_limits
        self._limiters.append(limiter)
        return limiter

    def set_rate_limits(self, enabled: bool) -> None:
        """Turn enforcement of every venue's rate limits on or off."""
        self.config.rate_limits = enabled
        for limiter in self._limiters:
            limiter.enabled = enabled
            limiter.reset()

    def on_reset(self, hook: Callable[[], None]) -> None:
        """Register a callback that clears an API module's own state on reset."""
        self._reset_hooks.append(hook)

    def reset(self) -> None:
        """Back to the state right after start: fresh exchanges, no faults, no stats, same seed."""
        self._build_exchanges()
        self.faults.reset()
        self.stats.reset()
        self.set_rate_limits(self._initial_rate_limits)
        for hook in self._reset_hooks:
            hook()


# ----- fault + stats middleware ------------------------------------------------------------

_HL_PLAIN = {"content-type": "text/plain; charset=utf-8"}


class DroppedResponse(Exception):
    """Raised after the status line went out, so the server closes the connection body-less."""


def _error_response(venue: str, kind: str, fault: Fault) -> tuple[int, dict[str, str], bytes]:
    if kind == "http_429":
        headers = {"retry-after": str(max(1, round(fault.retry_after_s)))}
        if venue == "hyperliquid":
            return 429, {**headers, "content-type": "application/json"}, b"null"
        body = b'{"code":-1003,"msg":"Too many requests; current limit is exceeded. Please retry later."}'
        return 429, {**headers, "content-type": "application/json"}, body
    if kind == "timeout":
        if venue == "hyperliquid":
            return 504, _HL_PLAIN, b"Gateway Timeout"
        body = (
            b'{"code":-1007,"msg":"Timeout waiting for response from backend server. '
            b'Send status unknown; execution status unknown."}'
        )
        return 504, {"content-type": "application/json"}, body
    status = fault.status or 502
    if venue == "hyperliquid":
        return status, _HL_PLAIN, b"Bad Gateway" if status == 502 else b"Server Error"
    body = b'{"code":-1001,"msg":"Internal error; unable to process your request. Please try again."}'
    return status, {"content-type": "application/json"}, body


async def _client_left_within(receive: Receive, ms: int) -> bool:
    """Hold for `ms`; True as soon as the client disconnects (the body was already read)."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    try:
        await asyncio.wait_for(disconnected(), ms / 1000)
    except TimeoutError:
        return False
    return True


async def _send_simple(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class SimMiddleware:
    """Counts every venue request and applies the fault table before/after the real handler."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], sim: Sim) -> None:
        self.app = app
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        venue = next((v for v in VENUES if path == f"/{v}" or path.startswith(f"/{v}/")), None)
        if venue is None:
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        subpath = path[len(venue) + 1 :] or "/"
        classify = self.sim.classifiers.get(venue)
        label = classify(scope["method"], subpath, body) if classify else f"{scope['method']} {subpath}"
        self.sim.stats.record(venue, label)
        fired = self.sim.faults.pick(venue, label)
        delay_ms = sum(f.ms or 0 for f in fired if f.kind == "latency_ms")
        if delay_ms:
            self.sim.stats.record_fault("latency_ms")
            await asyncio.sleep(delay_ms / 1000)
        terminal = next((f for f in fired if f.kind != "latency_ms"), None)
        if terminal is not None:
            self.sim.stats.record_fault(terminal.kind)
        for fault in fired:
            log.info("sim_fault_fired", venue=venue, kind=fault.kind, request=label, fault_id=fault.id)
        if terminal is not None and terminal.kind in ("http_429", "http_5xx", "timeout"):
            if terminal.kind == "timeout":
                hold_ms = terminal.ms if terminal.ms is not None else self.sim.config.timeout_ms
                if await _client_left_within(receive, hold_ms):
                    return  # nobody is waiting for the 504 any more
            status, headers, payload = _error_response(venue, terminal.kind, terminal)
            await _send_simple(send, status, headers, payload)
            return

        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        if terminal is None:
            await self.app(scope, replay, send)
            return

        # drop_response_after_execute: run the handler, swallow what it says, then fail the reply.
        async def swallow(message: Message) -> None:
            return None

        await self.app(scope, replay, swallow)
        if terminal.mode == "502":
            await _send_simple(send, 502, _HL_PLAIN, b"")
            return
        # Under uvicorn, `send` belongs to the connection's request cycle: abort its transport so
        # not one byte of a response goes out. Elsewhere (in-process tests), fail after the status line.
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is not None and hasattr(transport, "abort"):
            transport.abort()
            await asyncio.sleep(0)  # let the server see the connection is gone, so it adds no 500
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"1024")],
            }
        )
        raise DroppedResponse("response dropped after execution (fault injection)")


async def _walk(sim: Sim) -> None:
    """Move every mark one random-walk step per interval, on both venues (triggers fire as usual)."""
    while True:
        await asyncio.sleep(sim.config.walk_interval_s)
        for exchange in sim.exchanges.values():
            exchange.tick()


class _SimFastAPI(FastAPI):
    """FastAPI with `SimMiddleware` outermost, so faults see the server's own `send`."""

    def build_middleware_stack(self) -> Any:
        return SimMiddleware(super().build_middleware_stack(), self.state.sim)


def create_app(seed: int = 1, config: SimConfig | None = None) -> FastAPI:
    """Build the simulator ASGI app; `app.state.sim` is the `Sim`."""
    sim = Sim(seed, config)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        walker = asyncio.create_task(_walk(sim)) if sim.config.walk_interval_s > 0 else None
        try:
            yield
        finally:
            if walker is not None:
                walker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await walker

    app = _SimFastAPI(
        title="newstrader venue simulator", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    app.state.sim = sim
    from newstrader.sim import admin, aster_api, aster_ws, hyperliquid_api, hyperliquid_ws

    app.include_router(hyperliquid_api.build_router(sim), prefix="/hyperliquid")
    app.include_router(hyperliquid_ws.build_router(sim), prefix="/hyperliquid")
    app.include_router(aster_ws.build_router(sim), prefix="/aster")  # before aster_api's catch-all
    app.include_router(aster_api.build_router(sim), prefix="/aster")
    app.include_router(admin.build_router(sim), prefix="/admin")

    @app.get("/")
    async def index() -> dict[str, Any]:
        return {"simulator": "newstrader", "seed": sim.seed, "venues": list(VENUES)}

    return app
