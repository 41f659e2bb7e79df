"""`python -m newstrader.sim`: run the venue simulator with uvicorn (what `newstrader sim` calls)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from newstrader.sim.app import SimConfig, create_app
from newstrader.sim.market import MarketSpec, build_markets


def load_markets(path: Path) -> dict[str, dict[str, MarketSpec]]:
    """Markets for both venues from a JSON list of `{coin, sz_decimals, max_leverage, price}`."""
    try:
        rows = json.loads(path.read_text())
        parsed = [
            (str(r["coin"]), int(r["sz_decimals"]), int(r["max_leverage"]), str(r["price"])) for r in rows
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemExit(
            f"--markets {path}: expected a JSON list of {{coin, sz_decimals, max_leverage, price}} ({exc})"
        ) from None
    if not parsed:
        raise SystemExit(f"--markets {path}: the list is empty")
    return {venue: build_markets(venue, parsed) for venue in ("hyperliquid", "aster")}


def serve(
    host: str = "127.0.0.1",
    port: int = 8900,
    seed: int = 1,
    rate_limits: bool = True,
    hl_source: str | None = None,
    log_level: str = "warning",
    markets_file: Path | None = None,
    walk_interval_s: float = 0.0,
    network: str = "testnet",
) -> None:
    """Bind, print the URLs a client needs, and serve until interrupted; a taken port is one line."""
    import uvicorn

    from newstrader.web.server import PortUnavailable, bind_loopback

    if network not in ("testnet", "mainnet"):
        raise SystemExit(f"--network must be testnet or mainnet, not {network!r}")
    if hl_source not in (None, "a", "b", "any"):
        raise SystemExit("--hl-source must be a (mainnet), b (testnet) or any")
    markets = load_markets(markets_file) if markets_file is not None else {}
    if walk_interval_s < 0:
        raise SystemExit("--walk-interval must not be negative")
    config = SimConfig(
        rate_limits=rate_limits,
        network=network,  # type: ignore[arg-type]
        hl_source=hl_source,  # type: ignore[arg-type]
        markets=markets,
        walk_interval_s=walk_interval_s,
    )
    try:
        sock = bind_loopback(host, port)  # before the banner: a busy port prints nothing else
    except PortUnavailable as exc:
        raise SystemExit(f"newstrader sim: {exc} (choose another with --port)") from None
    app = create_app(seed=seed, config=config)
    port = int(sock.getsockname()[1])
    base = f"http://{host}:{port}"
    print(
        f"newstrader simulator ({network}, seed {seed}, rate limits {'on' if rate_limits else 'off'})",
        flush=True,
    )
    print(f"  hyperliquid: {base}/hyperliquid", flush=True)
    print(f"  aster:       {base}/aster", flush=True)
    print(f"  admin:       {base}/admin  (GET {base}/admin/state)", flush=True)
    # log_config=None: uvicorn's lines go through the process's handler (`--log-json` included).
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=False, log_config=None))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m newstrader.sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--no-rate-limits", action="store_true", help="do not enforce the venues' rate limits"
    )
    parser.add_argument(
        "--network",
        default="testnet",
        choices=("testnet", "mainnet"),
        help="accept only this network's signatures (Aster chain id, Hyperliquid source); default testnet",
    )
    parser.add_argument(
        "--hl-source", default=None, help="override the phantom-agent source to verify: a, b or any"
    )
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--markets", type=Path, default=None, help="JSON list replacing the default markets")
    parser.add_argument(
        "--walk-interval",
        type=float,
        default=0.0,
        help="seconds between random-walk steps of the marks (0 = off)",
    )
    args = parser.parse_args(argv)
    serve(
        args.host,
        args.port,
        args.seed,
        not args.no_rate_limits,
        args.hl_source,
        args.log_level,
        args.markets,
        args.walk_interval,
        args.network,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
