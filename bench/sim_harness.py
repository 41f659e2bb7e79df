"""What the venue benchmarks share: the simulator as a subprocess, its admin API, and our adapters.

The simulator runs as a real server (`python -m newstrader.sim`) on a free loopback port, so
every benchmark crosses a real TCP connection and the real ASGI stack. Adapters are the
production classes; their httpx transport is wrapped only to count requests and 429 replies.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account

from newstrader.domain import VenueOutcome
from newstrader.venues.aster.config import AsterConfig
from newstrader.venues.aster.http import AsterHttp
from newstrader.venues.aster.venue import AsterVenue
from newstrader.venues.base import Venue
from newstrader.venues.hyperliquid.config import HyperliquidConfig
from newstrader.venues.hyperliquid.http import HyperliquidHttp
from newstrader.venues.hyperliquid.venue import HyperliquidVenue
from newstrader.venues.limits import LimitRegistry

STARTUP_DEADLINE_S = 90.0  # generous: a loaded 2-core box takes long to import the simulator
VENUES = ("hyperliquid", "aster")
# Coins listed on both simulated venues, with enough depth for $100 orders.
COINS = ("BTC", "ETH", "SOL", "HYPE", "XRP", "DOGE", "SUI", "AVAX", "LINK", "BNB")


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of a non-empty sample."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(samples: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / mean / max of millisecond samples, rounded for the report."""
    return {
        "n": len(samples),
        "p50_ms": round(percentile(samples, 0.50), 1),
        "p95_ms": round(percentile(samples, 0.95), 1),
        "mean_ms": round(statistics.fmean(samples), 1),
        "max_ms": round(max(samples), 1),
    }


STAGES = (
    ("read position + mark", "received", "decided"),
    ("journal intent", "decided", "sent"),
    ("order round trip", "sent", "acked"),
)


def collect_stages(outcomes: list[VenueOutcome], into: dict[str, list[float]]) -> None:
    """Per venue, where the engine's time went (first order only), from its latency ledger."""
    for outcome in outcomes:
        for label, start, end in STAGES:
            ms = outcome.latency.ms_between(start, end)
            if ms is not None:
                into.setdefault(label, []).append(ms)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SimProcess:
    """A simulator server and a keep-alive client for its `/admin` API; `process` is None when
    the server is someone else's (`--sim-url`), which is then never stopped or reset."""

    url: str
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    admin: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        self.admin = httpx.Client(base_url=f"{self.url}/admin", timeout=10.0)

    def call(self, method: str, path: str, json: Any = None) -> Any:
        """One admin call; a refusal raises with the simulator's reason."""
        response = self.admin.request(method, path, json=json)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} /admin{path} -> {response.status_code}: {response.text}")
        return response.json()

    def fund(self, venue: str, address: str, usd: int = 1_000_000) -> None:
        self.call("POST", "/accounts", {"venue": venue, "address": address, "usd": str(usd)})

    def delay_every_request(self, venue: str, ms: int) -> None:
        """Hold every request to `venue` `ms` before handling it: a stand-in for the network."""
        if ms > 0:
            self.call("POST", "/faults", {"venue": venue, "kind": "latency_ms", "ms": ms, "probability": 1.0})

    def request_totals(self) -> dict[str, int]:
        """Requests the simulator has served so far, per venue."""
        return dict(self.call("GET", "/stats")["totals"])

    def positions(self, venue: str, address: str) -> dict[str, str]:
        """coin → signed size (decimal string) the simulator holds for an account."""
        accounts = self.call("GET", "/state")["venues"][venue]["accounts"]
        account = accounts.get(address.lower()) or {}
        return {coin: str(p["size"]) for coin, p in account.get("positions", {}).items()}

    def stop(self) -> None:
        self.admin.close()
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)


def spawn_sim(*, rate_limits: bool, seed: int = 7) -> SimProcess:
    """Start `python -m newstrader.sim` on a free port (call `wait_ready` before using it)."""
    port = _free_port()
    log_file = tempfile.NamedTemporaryFile(prefix="bench-sim-", suffix=".log", delete=False)  # noqa: SIM115
    args = [sys.executable, "-m", "newstrader.sim", "--port", str(port), "--seed", str(seed)]
    if not rate_limits:
        args.append("--no-rate-limits")
    process = subprocess.Popen(
        args, stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    return SimProcess(url=f"http://127.0.0.1:{port}", process=process, log_path=Path(log_file.name))


def wait_ready(sim: SimProcess) -> SimProcess:
    """Poll the simulator until it answers; stop it and raise if it dies or stays silent."""
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        if sim.process is not None and sim.process.poll() is not None:
            log = sim.log_path.read_text(errors="replace") if sim.log_path else ""
            sim.stop()
            raise RuntimeError(f"simulator exited with {sim.process.returncode}: {log}")
        try:  # the admin client, not httpx.get(): each new client loads the CA bundle (~0.2 s)
            if sim.admin.get(f"{sim.url}/", timeout=1.0).status_code == 200:
                return sim
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # readiness poll interval
    sim.stop()
    raise RuntimeError(f"simulator did not answer within {STARTUP_DEADLINE_S:g}s")


def start_sim(*, rate_limits: bool, seed: int = 7) -> SimProcess:
    """A simulator subprocess on a free loopback port, answering."""
    return wait_ready(spawn_sim(rate_limits=rate_limits, seed=seed))


class CountingTransport(httpx.AsyncBaseTransport):
    """The default transport, counting replies by status code (429s are what burst checks) and
    stamping when the last order reply arrived (the moment a fill is known, before any bookkeeping)."""

    def __init__(self, statuses: Counter[int]) -> None:
        self.inner = httpx.AsyncHTTPTransport(verify=False)  # plain HTTP on loopback: no CA bundle to load
        self.statuses = statuses
        self.last_order_reply_at = 0.0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.statuses[response.status_code] += 1
        path = request.url.path
        if path.endswith("/exchange") or (request.method == "POST" and path.endswith("/order")):
            self.last_order_reply_at = time.monotonic()
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Trader:
    """One funded key and the two production adapters that trade it."""

    key: str
    address: str
    venues: dict[str, Venue]
    statuses: Counter[int]
    transports: dict[str, CountingTransport]
    limits: LimitRegistry

    def last_order_reply_at(self, venue: str) -> float:
        return self.transports[venue].last_order_reply_at

    async def close(self) -> None:
        for venue in self.venues.values():
            await venue.close()


def new_trader(sims: VenueSims, usd: int = 1_000_000) -> Trader:
    """A fresh key funded on both venues, with a Hyperliquid and an Aster (v3) adapter for it.

    Each trader has its own rate-limit budget, as a bot on its own machine would: the flows a
    benchmark compares never slow each other down through one shared per-IP bucket."""
    wallet = Account.create()
    key = "0x" + bytes(wallet.key).hex()
    for venue in VENUES:
        sims.of(venue).fund(venue, wallet.address, usd)
    statuses: Counter[int] = Counter()
    transports = {name: CountingTransport(statuses) for name in VENUES}
    registry = LimitRegistry()
    hl_url, aster_url = f"{sims.hyperliquid.url}/hyperliquid", f"{sims.aster.url}/aster"
    hyperliquid = HyperliquidVenue(
        HyperliquidConfig(name="hyperliquid", url=hl_url, account=wallet.address, secret=key, network="sim"),
        http=HyperliquidHttp(
            hl_url, venue="hyperliquid", transport=transports["hyperliquid"], registry=registry
        ),
    )
    aster_config = AsterConfig(name="aster", url=aster_url, account=wallet.address, secret=key, network="sim")
    aster = AsterVenue(
        aster_config, http=AsterHttp(aster_config, transport=transports["aster"], registry=registry)
    )
    venues: dict[str, Venue] = {"hyperliquid": hyperliquid, "aster": aster}
    return Trader(key, wallet.address, venues, statuses, transports, registry)


@dataclass
class VenueSims:
    """One simulator process per venue, as each exchange is its own server: requests to one
    venue never queue behind the other's in a shared event loop. Attached to a running
    server instead (`attach_venue_sims`), both venues are that one server."""

    hyperliquid: SimProcess
    aster: SimProcess
    restore_rate_limits: bool | None = None  # attached: the server's setting before we changed it

    @property
    def processes(self) -> tuple[SimProcess, SimProcess]:
        return (self.hyperliquid, self.aster)

    def of(self, venue: str) -> SimProcess:
        return self.hyperliquid if venue == "hyperliquid" else self.aster

    def delay_every_request(self, ms: int) -> None:
        for venue in VENUES:
            self.of(venue).delay_every_request(venue, ms)

    def as_remote_venues(self) -> list[int]:
        """Put our simulator processes in SCHED_BATCH: the pids changed.

        On this machine a venue shares the bot's two cores, and the kernel lets a process woken
        by our order's first bytes (the request headers) preempt the bot before it has written
        the rest: a loopback `send()` then measured 1–2 ms. A real venue is another machine and
        cannot take the bot's CPU; a batch process is never woken into preempting it."""
        changed = []
        for sim in {id(s): s for s in self.processes}.values():
            if sim.process is not None and as_batch_process(sim.process.pid):
                changed.append(sim.process.pid)
        return changed

    def request_count(self) -> int:
        """Venue requests served so far by both processes (each counts only its own venue)."""
        return self.hyperliquid.request_totals().get("hyperliquid", 0) + self.aster.request_totals().get(
            "aster", 0
        )

    def positions(self, venue: str, address: str) -> dict[str, str]:
        return self.of(venue).positions(venue, address)

    def tick(self) -> dict[str, dict[str, str]]:
        """Advance the marks one step; both processes share a seed, so both venues move alike."""
        return {
            venue: self.of(venue).call("POST", "/tick", {"steps": 1, "venue": venue})[venue]
            for venue in VENUES
        }

    def stop(self) -> None:
        if self.hyperliquid.process is None:  # someone else's server: take back only what we changed
            with contextlib.suppress(Exception):
                self.hyperliquid.call("DELETE", "/faults")
                if self.restore_rate_limits is not None:
                    self.hyperliquid.call("POST", "/settings", {"rate_limits": self.restore_rate_limits})
        for sim in {id(s): s for s in self.processes}.values():
            sim.stop()


def as_batch_process(pid: int) -> bool:
    """Put a process of ours in SCHED_BATCH (see `VenueSims.as_remote_venues`); False where the
    system refuses it (a sandbox without sched_setscheduler): it then stays as it was."""
    try:
        os.sched_setscheduler(pid, os.SCHED_BATCH, os.sched_param(0))
    except (OSError, AttributeError):
        return False
    return True


def start_venue_sims(*, rate_limits: bool, seed: int = 7) -> VenueSims:
    """Two simulator processes (started together): Hyperliquid is traded on the first, Aster on the second."""
    first, second = (
        spawn_sim(rate_limits=rate_limits, seed=seed),
        spawn_sim(rate_limits=rate_limits, seed=seed),
    )
    try:
        wait_ready(first)
        wait_ready(second)
    except BaseException:
        for sim in (first, second):
            sim.stop()
        raise
    return VenueSims(hyperliquid=first, aster=second)


def attach_venue_sims(url: str, *, rate_limits: bool) -> VenueSims:
    """Both venues on one simulator that is already running (the test suite's), with its rate
    limits switched as asked; `stop()` clears our faults and restores the switch."""
    sim = wait_ready(SimProcess(url=url))
    before = bool(sim.call("GET", "/state")["settings"]["rate_limits"])
    sim.call("POST", "/settings", {"rate_limits": rate_limits})
    return VenueSims(hyperliquid=sim, aster=sim, restore_rate_limits=before)


def venue_sims(sim_url: str | None, *, rate_limits: bool) -> VenueSims:
    """Our own two simulator processes, or the one at `sim_url` when given."""
    if sim_url:
        return attach_venue_sims(sim_url, rate_limits=rate_limits)
    return start_venue_sims(rate_limits=rate_limits)


def machine() -> dict[str, Any]:
    """The machine a result was measured on (cores, CPU model, Python)."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": sys.version.split()[0],
        "load_avg_1m": round(os.getloadavg()[0], 2),  # other work sharing the cores during the run
    }
