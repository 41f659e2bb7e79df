"""`newstrader demo`: simulator + bot + dashboard + a scripted replay of the sample news, in one process.

`DemoStack` starts the pieces (the tests use it too: it is the real composition, not a stand-in);
`run_demo` adds the script a newcomer watches: positions open and flip on both venues, a
take-profit fires on the exchange, an operator closes one coin, and a liquidation injected in
the simulator is found by reconciliation as drift. Every step is checked against the
simulator's own state (the truth), and the demo prints ✓ or ✗ for each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import structlog

from newstrader.sim.accounts import SimAccounts
from newstrader.web.server import LoopbackServer

if TYPE_CHECKING:
    from newstrader.bot import Bot

log = structlog.get_logger("newstrader.demo")

SAMPLE_NEWS = Path(__file__).parent / "news" / "sample_news.jsonl"
VENUE_KINDS = ("hyperliquid", "aster")
DEMO_USD = Decimal(100_000)


def demo_config(
    *,
    sim_url: str,
    web_port: int,
    token: str,
    journal_path: Path,
    accounts: SimAccounts,
    reconcile_interval_s: float = 10.0,
) -> str:
    """The TOML a demo bot runs with (secrets are not in it: they go through env)."""
    return f"""# Written by `newstrader demo`; the keys are fresh and only fund simulator accounts.
[engine]
mode = "target"
max_signal_age_s = 60
reconcile_interval_s = {reconcile_interval_s}

[sizing]
notional_usd = 200
leverage = 3

[exits]
take_profit_pct = 2.0
stop_loss_pct = 2.0
max_hold_s = 3600

[[venues]]
name = "hyperliquid"
kind = "hyperliquid"
network = "sim"
url = "{sim_url}/hyperliquid"
account = "{accounts.hl_address}"

[[venues]]
name = "aster"
kind = "aster"
network = "sim"
url = "{sim_url}/aster"
account = "{accounts.aster_user}"
signer = "{accounts.aster_signer}"

[news]
dedupe_window_s = 600
cooldown_s = 0

[web]
host = "127.0.0.1"
port = {web_port}

[journal]
url = "sqlite:///{journal_path}"
"""


class DemoStack:
    """Simulator (own or given) + funded fresh accounts + bot + its web app, on loopback."""

    def __init__(
        self,
        workdir: Path,
        *,
        sim_url: str | None = None,
        sim_port: int = 8900,
        web_port: int = 8080,
        seed: int = 7,
        fast: bool = False,
        token: str | None = None,
        reconcile_interval_s: float = 10.0,
        autotrade_check_interval_s: float | None = None,
    ) -> None:
        self.workdir = workdir
        self.sim_url = sim_url
        self._sim_port = sim_port
        self._web_port = web_port
        self._seed = seed
        self.fast = fast
        self.reconcile_interval_s = reconcile_interval_s
        self.autotrade_check_interval_s = autotrade_check_interval_s
        self.token = token or secrets.token_urlsafe(24)
        self.accounts = SimAccounts.fresh()
        self.config_path = workdir / "newstrader-demo.toml"
        self.bot: Bot | None = None
        self._sim_server: LoopbackServer | None = None
        self._env_set: list[str] = []

    @property
    def url(self) -> str:
        """The dashboard and API of the running bot (it serves them itself)."""
        assert self.bot is not None and self.bot.web_url
        return str(self.bot.web_url)

    async def __aenter__(self) -> DemoStack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start every piece; on any failure, stop what already started."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        from newstrader.bot import Bot
        from newstrader.config import load_settings

        if self.sim_url is None:
            from newstrader.sim.app import create_app as create_sim_app

            self._sim_server = LoopbackServer(port=self._sim_port)
            await self._sim_server.start(create_sim_app(seed=self._seed))
            self.sim_url = self._sim_server.url
        await self._fund_accounts()
        self.config_path.write_text(
            demo_config(
                sim_url=self.sim_url,
                web_port=self._web_port,
                token=self.token,
                journal_path=self.workdir / "demo.db",
                accounts=self.accounts,
                reconcile_interval_s=self.reconcile_interval_s,
            )
        )
        self._set_env("NEWSTRADER_HYPERLIQUID_SECRET", self.accounts.hl_key)
        self._set_env("NEWSTRADER_ASTER_SECRET", self.accounts.aster_signer_key)
        self._set_env("NEWSTRADER_WEB_TOKEN", self.token)
        if self.autotrade_check_interval_s is not None:
            self._set_env("NEWSTRADER_AUTOTRADE_CHECK_INTERVAL_S", str(self.autotrade_check_interval_s))
        settings = load_settings(self.config_path)
        self.bot = Bot(settings)
        await self.bot.start()

    def _set_env(self, key: str, value: str) -> None:
        if key not in os.environ:
            self._env_set.append(key)
        os.environ[key] = value

    async def _fund_accounts(self) -> None:
        a = self.accounts
        async with httpx.AsyncClient(base_url=str(self.sim_url), trust_env=False, timeout=10) as sim:
            for body in (
                {"venue": "hyperliquid", "address": a.hl_address, "usd": str(DEMO_USD)},
                {
                    "venue": "aster",
                    "address": a.aster_user,
                    "signers": [a.aster_signer],
                    "usd": str(DEMO_USD),
                },
            ):
                response = await sim.post("/admin/accounts", json=body)
                response.raise_for_status()

    async def stop(self) -> None:
        """Stop the bot (and its web server), then the simulator; each step runs even if one fails."""
        if self.bot is not None:
            with contextlib.suppress(Exception):
                await self.bot.stop()
            self.bot = None
        if self._sim_server is not None:
            with contextlib.suppress(Exception):
                await self._sim_server.stop()
            self._sim_server = None
        for key in self._env_set:
            os.environ.pop(key, None)
        self._env_set.clear()

    # ---- the simulator's truth

    async def sim_positions(self) -> dict[tuple[str, str], Decimal]:
        """(venue, coin) → signed size, for the demo's accounts, read from the simulator."""
        async with httpx.AsyncClient(base_url=str(self.sim_url), trust_env=False, timeout=10) as sim:
            state = (await sim.get("/admin/state")).json()
        return positions_in_state(state, {v: self.accounts.address(v) for v in VENUE_KINDS})


def positions_in_state(state: dict[str, Any], addresses: dict[str, str]) -> dict[tuple[str, str], Decimal]:
    """Signed sizes per (venue, coin) of the given accounts in `GET /admin/state`."""
    out: dict[tuple[str, str], Decimal] = {}
    venues = state.get("venues", state)
    for venue, address in addresses.items():
        venue_state = venues.get(venue, {})
        accounts = venue_state.get("accounts", {})
        account = accounts.get(address.lower()) or accounts.get(address) or {}
        positions = account.get("positions", {})
        items = positions.items() if isinstance(positions, dict) else ((p["coin"], p) for p in positions)
        for coin, pos in items:
            size = Decimal(str(pos.get("size", pos) if isinstance(pos, dict) else pos))
            if size != 0:
                out[(venue, coin)] = size
    return out


# ------------------------------------------------------------------ the script


@dataclass(slots=True)
class DemoReport:
    """What the scripted demo showed, each step checked against the simulator."""

    checks: dict[str, bool] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    headlines_sent: int = 0
    signals: int = 0

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(self.checks.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": self.checks,
            "notes": self.notes,
            "headlines_sent": self.headlines_sent,
            "signals": self.signals,
        }


def load_sample_news(path: Path = SAMPLE_NEWS) -> list[dict[str, Any]]:
    """The bundled headlines (JSON lines), as webhook bodies."""
    items = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            items.append(json.loads(line))
    return items


async def wait_for(condition: Callable[[], Awaitable[bool]], timeout: float, interval: float = 0.1) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if await condition():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)


class DemoScript:
    """The scenes a newcomer watches, driven through the bot's own HTTP API."""

    def __init__(self, stack: DemoStack, say: Callable[[str], None], *, fast: bool) -> None:
        self.stack = stack
        self.say = say
        self.fast = fast
        self.report = DemoReport()
        self._api = httpx.AsyncClient(
            base_url=stack.url,
            headers={"Authorization": f"Bearer {stack.token}"},
            trust_env=False,
            timeout=40,  # above the longest `?wait=30`
        )
        self._sim = httpx.AsyncClient(base_url=str(stack.sim_url), trust_env=False, timeout=10)
        self._n = 0

    async def close(self) -> None:
        await self._api.aclose()
        await self._sim.aclose()

    async def pause(self, seconds: float) -> None:
        """Give the viewer time to look (skipped in --fast)."""
        if not self.fast:
            await asyncio.sleep(seconds)

    async def news(self, title: str, **extra: Any) -> dict[str, Any]:
        self._n += 1
        body = {"title": title, "source": extra.pop("source", "demo"), **extra}
        # The webhook answers at once; `wait` asks for the outcomes in the answer, so each
        # scene narrates what the venues did.
        response = await self._api.post("/api/news", json=body, params={"wait": 30})
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        self.report.headlines_sent += 1
        if result.get("signal"):
            self.report.signals += 1
        return result

    async def position(self, venue: str, coin: str) -> Decimal:
        return (await self.stack.sim_positions()).get((venue, coin), Decimal(0))

    async def all_venues(
        self, coin: str, predicate: Callable[[Decimal], bool], timeout: float = 20.0
    ) -> bool:
        async def holds() -> bool:
            sizes = await self.stack.sim_positions()
            return all(predicate(sizes.get((v, coin), Decimal(0))) for v in VENUE_KINDS)

        return await wait_for(holds, timeout)

    def check(self, name: str, ok: bool, note: str = "") -> None:
        """Record one scene's result, as the simulator (the truth) shows it."""
        self.report.checks[name] = ok
        if note:
            self.report.notes[name] = note
        self.say(f"  {'✓' if ok else '✗'} {name}{': ' + note if note else ''}")

    async def replay(self, items: list[dict[str, Any]], gap_s: float) -> None:
        for item in items:
            body = {k: v for k, v in item.items() if k in {"title", "body", "source", "url", "coin", "side"}}
            result = await self.news(**body)
            sig = result.get("signal")
            verdict = f"{sig['side']} {sig['coin']}" if sig else f"no trade ({result.get('reason')})"
            self.say(f"  news: {body['title'][:70]!r} → {verdict}")
            await self.pause(gap_s)

    async def run(self, sample: list[dict[str, Any]]) -> DemoReport:
        """The scenes, early and in order, with the rest of the sample news in between."""
        gap = 1.0
        first, middle, rest = sample[:6], sample[6:12], sample[12:]
        self.say("1/7 the sample news starts flowing (each headline is parsed; some trade, most do not)")
        await self.replay(first, gap)

        self.say("2/7 open: a bullish ETH alert opens a long on both venues")
        await self.news("Demo alert: ETH breaks out", coin="ETH", side="long", id=self._id("open"))
        self.check("opened on both venues", await self.all_venues("ETH", lambda s: s > 0))
        await self.pause(4)

        self.say("3/7 flip: a bearish ETH alert flips both venues short, one order each")
        await self.news("Demo alert: ETH breaks down", coin="ETH", side="short", id=self._id("flip"))
        self.check("flipped on both venues", await self.all_venues("ETH", lambda s: s < 0))
        await self.pause(4)

        self.say("4/7 take-profit: open SOL long, then move the simulator's SOL price past the TP")
        await self.news("Demo alert: SOL rallies", coin="SOL", side="long", id=self._id("tp"))
        tp_fired = False
        if await self.all_venues("SOL", lambda s: s > 0):
            await self.pause(3)
            # Each venue has its own mark: move both 5 % above the higher one (TP sits at +2 %).
            mark = max(await self._marks("SOL"))
            await self._sim.post("/admin/price", json={"coin": "SOL", "price": str(mark * Decimal("1.05"))})
            tp_fired = await self.all_venues("SOL", lambda s: s == 0)
        self.check("take-profit fired on the exchange", tp_fired)

        self.say("5/7 more news")
        await self.replay(middle, gap)

        self.say("6/7 manual close: the operator closes ETH (the dashboard's Close button does the same)")
        closed = await self._api.post("/api/control/close", json={"coin": "ETH"})
        self.check(
            "manual close", closed.status_code == 200 and await self.all_venues("ETH", lambda s: s == 0)
        )
        await self.pause(3)

        self.say("7/7 liquidation: open BTC long; the simulator liquidates it on hyperliquid behind the bot")
        await self.news("Demo alert: BTC bid", coin="BTC", side="long", id=self._id("liq"))
        detected = False
        if await self.all_venues("BTC", lambda s: s > 0):
            await self.pause(3)
            seen_before = await self._drift_ids()
            await self._sim.post(
                "/admin/liquidate",
                json={"venue": "hyperliquid", "account": self.stack.accounts.hl_address, "coin": "BTC"},
            )
            await self._api.post("/api/control/reconcile")

            async def found() -> bool:
                return bool(await self._drift_ids() - seen_before)

            detected = await wait_for(found, 15.0, 0.2)
        self.check("liquidation detected as drift", detected)

        self.say("the rest of the sample news")
        await self.replay(rest, gap)
        return self.report

    @staticmethod
    def _id(scene: str) -> str:
        return f"demo-{scene}-{secrets.token_hex(4)}"

    async def _drift_ids(self) -> set[int]:
        """Ids of journaled `stale_local_cleared` events for hyperliquid BTC."""
        events = (await self._api.get("/api/events?limit=100")).json()["events"]
        return {
            int(e["id"])
            for e in events
            if e.get("venue") == "hyperliquid"
            and e.get("coin") == "BTC"
            and e.get("kind") == "stale_local_cleared"
        }

    async def _marks(self, coin: str) -> list[Decimal]:
        venues = (await self._sim.get("/admin/state")).json()["venues"]
        return [Decimal(str(venues[v]["marks"][coin])) for v in VENUE_KINDS]


async def run_demo(
    *,
    fast: bool = False,
    duration: float | None = None,
    web_port: int = 8080,
    sim_port: int = 8900,
    seed: int = 7,
    headlines: int | None = None,
    say: Callable[[str], None] = print,
) -> DemoReport:
    """Run the whole demo; stays up until Ctrl-C (or `duration` seconds after the script).

    `headlines` replays only the first N sample headlines (tests); the scenes always run.
    """
    started = time.monotonic()
    plain_say = say

    def stamped(line: str) -> None:  # every line stamped with the time since start
        minutes, seconds = divmod(int(time.monotonic() - started), 60)
        plain_say(f"[{minutes}:{seconds:02d}] {line}" if line else "")

    say = stamped

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    try:
        with tempfile.TemporaryDirectory(prefix="newstrader-demo-") as tmp:
            async with DemoStack(
                Path(tmp), sim_port=sim_port, web_port=web_port, seed=seed, fast=fast
            ) as stack:
                say("")
                say(f"  dashboard: {stack.url}/")
                say(f"  token:     {stack.token}")
                say(f"  simulator: {stack.sim_url}  (admin: {stack.sim_url}/admin/state)")
                say(
                    f"  CLI:       NEWSTRADER_WEB_URL={stack.url} NEWSTRADER_WEB_TOKEN=<token> "
                    "newstrader positions"
                )
                say("")
                script = DemoScript(stack, say, fast=fast)
                try:
                    script_task = asyncio.create_task(script.run(load_sample_news()[:headlines]))
                    stop_task = asyncio.create_task(stop.wait())
                    await asyncio.wait({script_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
                    if not script_task.done():
                        script_task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await script_task
                        say("stopped during the script")
                        return script.report
                    report = script_task.result()
                finally:
                    await script.close()
                passed = sum(report.checks.values())
                say(f"demo script done: {passed}/{len(report.checks)} checks passed")
                if duration is None:
                    say("the bot keeps running; press Ctrl-C to stop")
                    await stop.wait()
                elif duration > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=duration)
                stop_task.cancel()
                say("stopping…")
                return report
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)
