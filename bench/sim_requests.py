"""Simulator request handling latency (p50/p99) per request type.

In-process by default (the real ASGI app through httpx's ASGI transport: routing, middleware,
signature recovery, matching), or against a running simulator with `--url`. Signatures are made
before timing starts, so only the simulator's work is measured. Prints a table, then one JSON line.

    uv run --frozen python bench/sim_requests.py [--n 300] [--url http://127.0.0.1:8900]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
from eth_account import Account
from hyperliquid.utils.signing import sign_l1_action

from newstrader.sim.app import SimConfig, create_app

USER = Account.from_key("0x" + "33" * 32)


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _signed(action: dict[str, Any], nonce: int) -> dict[str, Any]:
    signature = sign_l1_action(USER, action, None, nonce, None, False)
    return {
        "action": action,
        "nonce": nonce,
        "signature": signature,
        "vaultAddress": None,
        "expiresAfter": None,
    }


def _ioc(is_buy: bool) -> dict[str, Any]:
    px = "3400" if is_buy else "3000"
    order = {"a": 1, "b": is_buy, "p": px, "s": "0.01", "r": False, "t": {"limit": {"tif": "Ioc"}}}
    return {"type": "order", "orders": [order], "grouping": "na"}


async def _measure(client: httpx.AsyncClient, n: int) -> dict[str, dict[str, float]]:
    await client.post("/admin/reset")
    await client.post("/admin/settings", json={"rate_limits": False})
    await client.post("/admin/accounts", json={"venue": "all", "address": USER.address, "usd": "10000000"})
    base_nonce = int(time.time() * 1000)
    # Index 0 is the warm-up call; noops are sent first, so they take the lower nonces.
    noops = [_signed({"type": "noop"}, base_nonce + i) for i in range(n + 1)]
    orders = [_signed(_ioc(i % 2 == 0), base_nonce + n + 1 + i) for i in range(n + 1)]
    user = USER.address

    cases: list[tuple[str, Callable[[int], Any]]] = [
        ("info:allMids", lambda i: client.post("/hyperliquid/info", json={"type": "allMids"})),
        ("info:meta", lambda i: client.post("/hyperliquid/info", json={"type": "meta"})),
        (
            "info:clearinghouseState",
            lambda i: client.post("/hyperliquid/info", json={"type": "clearinghouseState", "user": user}),
        ),
        ("exchange:noop (sig+nonce)", lambda i: client.post("/hyperliquid/exchange", json=noops[i])),
        ("exchange:order (IOC fill)", lambda i: client.post("/hyperliquid/exchange", json=orders[i])),
        (
            "aster GET /fapi/v1/ticker/price",
            lambda i: client.get("/aster/fapi/v1/ticker/price?symbol=BTCUSDT"),
        ),
        ("admin GET /admin/stats", lambda i: client.get("/admin/stats")),
    ]
    results: dict[str, dict[str, float]] = {}
    for name, call in cases:
        await call(0)  # warm up (first-call imports, caches)
        samples = []
        for i in range(1, n + 1):
            started = time.perf_counter()
            response = await call(i)
            samples.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{name}: HTTP {response.status_code} {response.text[:200]}")
            if name.startswith("exchange:order") and '"filled"' not in response.text:
                raise SystemExit(f"{name}: not filled: {response.text[:200]}")
        results[name] = {
            "n": n,
            "p50_ms": round(statistics.median(samples), 3),
            "p99_ms": round(_percentile(samples, 0.99), 3),
            "mean_ms": round(statistics.fmean(samples), 3),
        }
    return results


async def main_async(n: int, url: str | None) -> dict[str, Any]:
    if url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            results = await _measure(client, n)
        mode = "server"
    else:
        app = create_app(seed=1, config=SimConfig(rate_limits=False))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as client:
            results = await _measure(client, n)
        mode = "in-process"
    return {"bench": "sim_requests", "mode": mode, "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=300, help="requests per type")
    parser.add_argument("--url", default=None, help="a running simulator instead of in-process")
    args = parser.parse_args()
    report = asyncio.run(main_async(args.n, args.url))
    print(f"simulator request handling ({report['mode']}, n={args.n} per type)")
    print(f"{'request':<36}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for name, row in report["results"].items():
        print(f"{name:<36}{row['p50_ms']:>10.3f}{row['p99_ms']:>10.3f}{row['mean_ms']:>10.3f}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
