"""`/admin`: the JSON control surface of the simulator (tests, the demo and humans drive it).

Routes (all JSON; bad input → 400 `{"error": "<what is wrong>"}`, nothing changed):

- `POST /admin/accounts {venue, address, usd, api_key?, secret?, signers?: [addr], mode?}` — create or
  fund an account (`venue` may be `all`); `signers` approves agent / API-wallet addresses for it;
  `api_key` + `secret` register an Aster legacy HMAC key; `mode` is the Hyperliquid account
  abstraction (`default`, `disabled`, `dexAbstraction`, `unifiedAccount`, `portfolioMargin`).
- `POST /admin/agents {venue, address, signer}` — approve one more signer for an existing account.
- `POST /admin/agents/revoke {venue, address, signer}` — withdraw a signer's approval (Aster then
  answers that signer -1002 UNAUTHORIZED; Hyperliquid no longer knows it).
- `POST /admin/price {coin, price, venue?}` — set the mark (both venues unless `venue`); fires
  triggers, fills crossed resting orders, runs liquidations.
- `POST /admin/position {venue, account, coin, size}` — an outside trade to `size` (signed) at the mark.
- `POST /admin/liquidate {venue, account, coin}` — close at the mark as a liquidation.
- `POST /admin/after_fill {venue, account, coin, size?}` — arm a one-shot outside change that
  lands right after the account's next API order on `coin` fills (before its sender can read):
  an outside trade to `size`, or a liquidation without `size`. `DELETE /admin/after_fill[?venue=]`
  disarms and answers what fired (`fired`: account, coin, before, after) and what did not.
- `POST /admin/faults {venue, kind, probability | count, endpoint?, ms?, status?, mode?, retry_after_s?}`,
  `GET /admin/faults`, `DELETE /admin/faults[?venue=]` — see `faults.py`.
- `GET /admin/state` — marks, accounts, positions, open orders per venue; faults; settings.
- `GET /admin/stats` — request counts per venue and request type.
- `GET /admin/fills?venue=&account=` — the account's executions on that venue, oldest first, with
  the order's client id (the soak checks every one of the bot's fills has a journaled intent).
- `POST /admin/reset` — everything back to the start (same seed).
- `POST /admin/tick {steps?, venue?}` — advance the seeded random walk of the marks.
- `POST /admin/settings {venue?, partial_fill_probability?, spread_bps?, book_gap_bps?,
  level_notional_usd?, rate_limits?}` — run-time knobs; `book_gap_bps` empties the book within
  that distance of the mark and `level_notional_usd` thins each level (a news spike's book).

No authentication (loopback only), so a web page the operator visits must not drive it: a write
with a foreign `Origin` is 403 and a body that is not `application/json` is 415 (a page can send
neither without a CORS preflight, which the simulator never grants).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from newstrader.sim.app import VENUES, Sim
from newstrader.sim.faults import FaultError
from newstrader.sim.hyperliquid_api import ABSTRACTION_MODES
from newstrader.sim.market import Exchange, SimError

log = structlog.get_logger("newstrader.sim.admin")


class AdminError(ValueError):
    """Bad admin input; the message says which field and why."""


def _bad(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise AdminError("body is not valid JSON") from None
    except RecursionError:
        raise AdminError("body is nested too deeply") from None
    if not isinstance(data, dict):
        raise AdminError("body must be a JSON object")
    return data


def _decimal(
    data: dict[str, Any], key: str, *, positive: bool = False, required: bool = True
) -> Decimal | None:
    value = data.get(key)
    if value is None:
        if required:
            raise AdminError(f"{key} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise AdminError(f"{key} must be a number or a decimal string")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise AdminError(f"{key} is not a number: {value!r}") from None
    if not number.is_finite():
        raise AdminError(f"{key} must be finite")
    if positive and number <= 0:
        raise AdminError(f"{key} must be positive")
    return number


def _plain(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _str(data: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise AdminError(f"{key} is required")
        return None
    if not isinstance(value, str) or not value:
        raise AdminError(f"{key} must be a non-empty string")
    return value


def _address(data: dict[str, Any], key: str) -> str:
    value = _str(data, key)
    assert value is not None
    if not (value.startswith("0x") and len(value) == 42):
        raise AdminError(f"{key} must be a 0x-prefixed 20-byte hex address")
    try:
        int(value[2:], 16)
    except ValueError:
        raise AdminError(f"{key} must be a 0x-prefixed 20-byte hex address") from None
    return value.lower()


def _venues(sim: Sim, data: dict[str, Any], *, allow_all: bool, default_all: bool = False) -> list[Exchange]:
    venue = data.get("venue")
    if venue is None and default_all:
        venue = "all"
    if venue == "all" and allow_all:
        return [sim.exchanges[v] for v in VENUES]
    if venue not in VENUES:
        choices = ", ".join((*VENUES, "all") if allow_all else VENUES)
        raise AdminError(f"venue must be one of {choices}")
    return [sim.exchanges[venue]]


async def _local_json_only(request: Request) -> None:
    """Refuse writes a browser page could forge: a foreign Origin, or a body that is not JSON."""
    if request.method in ("GET", "HEAD"):
        return
    origin = request.headers.get("origin")
    if origin is not None and origin.split("://", 1)[-1] != request.headers.get("host"):
        raise HTTPException(403, f"Origin {origin!r} refused: the admin API is for local tools only")
    content_type = request.headers.get("content-type")
    if content_type is None and not await request.body():
        return  # `POST /admin/reset` and friends need no body
    if (content_type or "").split(";", 1)[0].strip().lower() != "application/json":
        raise HTTPException(415, "the admin API takes application/json bodies only")


def build_router(sim: Sim) -> APIRouter:
    """The `/admin` routes over one `Sim`."""
    router = APIRouter(dependencies=[Depends(_local_json_only)])

    async def run(request: Request, action: Any) -> JSONResponse:
        try:
            data = await _body(request)
            result = action(data)
        except AdminError as exc:
            return _bad(str(exc))
        except FaultError as exc:
            return _bad(str(exc))
        except SimError as exc:
            return _bad(str(exc), 404 if "unknown" in str(exc) else 400)
        return JSONResponse(result)

    @router.post("/accounts")
    async def accounts(request: Request) -> JSONResponse:
        def act(data: dict[str, Any]) -> dict[str, Any]:
            exchanges = _venues(sim, data, allow_all=True)
            address = _address(data, "address")
            usd = _decimal(data, "usd", required=False) or Decimal(0)
            if usd < 0:
                raise AdminError("usd must not be negative")
            signers = data.get("signers") or []
            if not isinstance(signers, list):
                raise AdminError("signers must be a list of addresses")
            signer_addrs = [_address({"signer": s}, "signer") for s in signers]
            api_key = _str(data, "api_key", required=False)
            secret = _str(data, "secret", required=False)
            if (api_key is None) != (secret is None):
                raise AdminError("api_key and secret go together")
            mode = _str(data, "mode", required=False)
            if mode is not None and mode not in ABSTRACTION_MODES:
                raise AdminError(f"mode must be one of {', '.join(ABSTRACTION_MODES)}")
            out = []
            for ex in exchanges:
                acct = ex.create_account(
                    address,
                    usd,
                    signers=signer_addrs,
                    api_key=api_key if ex.name == "aster" else None,
                    secret=secret if ex.name == "aster" else None,
                )
                if mode is not None and ex.name == "hyperliquid":
                    acct.abstraction = mode
                out.append(
                    {
                        "venue": ex.name,
                        "address": acct.address,
                        "balance": str(acct.balance),
                        "signers": sorted(acct.signers),
                    }
                )
            return {"accounts": out}

        return await run(request, act)

    def change_signer(
        data: dict[str, Any], apply: Callable[[Exchange, str, str], None]
    ) -> tuple[str, str, list[str]]:
        """`apply(exchange, address, signer)` on each venue asked for: (address, signer, venue names)."""
        exchanges = _venues(sim, data, allow_all=True)
        address = _address(data, "address")
        signer = _address(data, "signer")
        for ex in exchanges:
            apply(ex, address, signer)
        return address, signer, [ex.name for ex in exchanges]

    @router.post("/agents")
    async def agents(request: Request) -> JSONResponse:
        def act(data: dict[str, Any]) -> dict[str, Any]:
            address, signer, venues = change_signer(data, Exchange.add_signer)
            return {"address": address, "signer": signer, "venues": venues}

        return await run(request, act)

    @router.post("/agents/revoke")
    async def revoke_agent(request: Request) -> JSONResponse:
        def act(data: dict[str, Any]) -> dict[str, Any]:
            address, signer, venues = change_signer(data, Exchange.remove_signer)
            return {"address": address, "revoked": signer, "venues": venues}

        return await run(request, act)

    @router.post("/price")
    async def price(request: Request) -> JSONResponse:
        def act(data: dict[str, Any]) -> dict[str, Any]:
            exchanges = _venues(sim, data, allow_all=True, default_all=True)
            coin = _str(data, "coin")
            assert coin is not None
            px = _decimal(data, "price", positive=True)
            assert px is not None
            for ex in exchanges:
                ex.market(coin)  # validate on all before changing any
            marks = {}
            for ex in exchanges:
                ex.set_mark(coin, px)
                marks[ex.name] = str(ex.marks[coin])
                log.info("sim_price_set", venue=ex.name, coin=coin, price=marks[ex.name])
            return {"coin": coin, "marks": marks}

        return await run(request, act)

    @router.post("/position")
    async def position(request: Request) -> JSONResponse:
        def act(data: dict[str, Any]) -> dict[str, Any]:
            (ex,) = _venues(sim, data, allow_all=False)
            account = _address(data, "account")
            coin = _str(data, "coin")
            assert coin is not None
            size = _decimal(data, "size")
            assert size is not None
            spec = ex.market(coin)
            if size != size.quantize(spec.size_step):
                raise AdminError(f"size must be a multiple of {spec.size_step} for {coin}")
            fill = ex.set_position(account, coin, size)
            log.info("sim_outside_trade", venue=ex.name, coin=coin, account=account, size=str(size))
            return {
                "venue": ex.name,
                "coin": coin,
                "size": str(ex.position(account, coin).size),
                "fill": None if fill is None else fill.to_dict(),
            }

        return await run(request, act)

    @router.post("/liquidate")
    async def liquidate(request: Request) -> JSONResponse:
        def act(data: dict[str, Any]) -> dict[str, Any]:
            (ex,) = _venues(sim, data, allow_all=False)
            account = _address(data, "account")
            coin = _str(data, "coin")
            assert coin is not None
            fill = ex.liquidate(account, coin)
            log.info("sim_liquidated", venue=ex.name, coin=coin, account=account, closed=fill is not None)
            return {"venue": ex.name, "coin": coin, "fill": None if fill is None else fill.to_dict()}

        return await run(request, act)

    @router.post("/after_fill")
    async def after_fill(request: Request) -> JSONResponse:
        def act(data: dict[str, Any]) -> dict[str, Any]:
            (ex,) = _venues(sim, data, allow_all=False)
            account = _address(data, "account")
            coin = _str(data, "coin")
            assert coin is not None
            size = _decimal(data, "size", required=False)
            if size is not None and size != size.quantize(ex.market(coin).size_step):
                raise AdminError(f"size must be a multiple of {ex.market(coin).size_step} for {coin}")
            ex.after_next_fill(account, coin, size)
            log.info("sim_after_fill_armed", venue=ex.name, coin=coin, account=account, size=_plain(size))
            return {"venue": ex.name, "coin": coin, "size": _plain(size)}

        return await run(request, act)

    @router.delete("/after_fill")
    async def disarm_after_fill(venue: str | None = None) -> JSONResponse:
        if venue is not None and venue not in (*VENUES, "all"):
            return _bad("venue must be one of hyperliquid, aster, all")
        fired: list[dict[str, Any]] = []
        unfired: list[dict[str, Any]] = []
        for name, ex in sim.exchanges.items():
            if venue in (None, "all", name):
                fired += [{"venue": name, **f} for f in ex.fired]
                unfired += [{"venue": name, "account": a, "coin": c} for a, c in ex.armed]
                ex.fired, ex.armed = [], {}
        return JSONResponse({"fired": fired, "unfired": unfired})

    @router.post("/faults")
    async def add_fault(request: Request) -> JSONResponse:
        def act(data: dict[str, Any]) -> dict[str, Any]:
            fault = sim.faults.add(data).to_dict()
            log.info("sim_fault_added", **{k: v for k, v in fault.items() if v is not None})
            return fault

        return await run(request, act)

    @router.get("/faults")
    async def list_faults() -> JSONResponse:
        return JSONResponse({"faults": [f.to_dict() for f in sim.faults.faults]})

    @router.delete("/faults")
    async def clear_faults(venue: str | None = None) -> JSONResponse:
        if venue is not None and venue not in (*VENUES, "all"):
            return _bad("venue must be one of hyperliquid, aster, all")
        return JSONResponse({"removed": sim.faults.clear(venue)})

    @router.get("/state")
    async def state() -> JSONResponse:
        return JSONResponse(
            {
                "seed": sim.seed,
                "time": sim.now_ms(),
                "venues": {name: ex.state() for name, ex in sim.exchanges.items()},
                "faults": [f.to_dict() for f in sim.faults.faults],
                "settings": _settings(sim),
            }
        )

    @router.get("/fills")
    async def fills(venue: str, account: str) -> JSONResponse:
        if venue not in VENUES:
            return _bad("venue must be one of hyperliquid, aster")
        return JSONResponse({"fills": [f.to_dict() for f in sim.exchanges[venue].fills(account)]})

    @router.get("/stats")
    async def stats() -> JSONResponse:
        return JSONResponse(sim.stats.snapshot())

    @router.post("/reset")
    async def reset() -> JSONResponse:
        sim.reset()
        return JSONResponse({"reset": True, "seed": sim.seed})

    @router.post("/tick")
    async def tick(request: Request) -> JSONResponse:
        def act(data: dict[str, Any]) -> dict[str, Any]:
            exchanges = _venues(sim, data, allow_all=True, default_all=True)
            steps = data.get("steps", 1)
            if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= 10_000:
                raise AdminError("steps must be an integer in 1..10000")
            return {ex.name: {c: str(p) for c, p in ex.tick(steps).items()} for ex in exchanges}

        return await run(request, act)

    @router.post("/settings")
    async def settings(request: Request) -> JSONResponse:
        def act(data: dict[str, Any]) -> dict[str, Any]:
            known = {
                "venue",
                "partial_fill_probability",
                "spread_bps",
                "book_gap_bps",
                "level_notional_usd",
                "rate_limits",
            }
            unknown = sorted(set(data) - known)
            if unknown:
                raise AdminError(
                    f"unknown setting {unknown[0]!r}; known: {', '.join(sorted(known - {'venue'}))}"
                )
            exchanges = _venues(sim, data, allow_all=True, default_all=True)
            changes: dict[str, Any] = {}
            if "partial_fill_probability" in data:
                p = data["partial_fill_probability"]
                if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
                    raise AdminError("partial_fill_probability must be a number in [0, 1]")
                changes["partial_fill_probability"] = float(p)
            if "spread_bps" in data:
                spread = _decimal(data, "spread_bps", positive=True)
                changes["spread_bps"] = spread
            if "book_gap_bps" in data:
                gap = _decimal(data, "book_gap_bps")
                assert gap is not None
                if gap < 0:
                    raise AdminError("book_gap_bps must not be negative")
                changes["book_gap_bps"] = gap
            if "level_notional_usd" in data:
                changes["level_notional_usd"] = _decimal(data, "level_notional_usd", positive=True)
            if "rate_limits" in data:
                if not isinstance(data["rate_limits"], bool):
                    raise AdminError("rate_limits must be true or false")
                sim.set_rate_limits(data["rate_limits"])
            for ex in exchanges:
                if changes:
                    ex.copy_config(**changes)
            return _settings(sim)

        return await run(request, act)

    return router


def _settings(sim: Sim) -> dict[str, Any]:
    return {
        "rate_limits": sim.config.rate_limits,
        "network": sim.config.network,
        "hl_source": "any" if len(sim.config.hl_sources()) > 1 else sim.config.hl_sources()[0],
        "aster_chain_ids": list(sim.config.aster_chains()),
        "venues": {
            name: {
                "partial_fill_probability": ex.config.partial_fill_probability,
                "spread_bps": str(ex.config.spread_bps),
                "book_gap_bps": str(ex.config.book_gap_bps),
                "level_notional_usd": str(ex.config.level_notional_usd),
                "taker_fee": str(ex.config.taker_fee),
                "maker_fee": str(ex.config.maker_fee),
            }
            for name, ex in sim.exchanges.items()
        },
    }
