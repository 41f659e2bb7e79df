"""`newstrader check`: is each configured venue reachable, are its credentials usable, is our clock right?

Reachability and clock skew come from one public request per venue (Hyperliquid ``POST /info``
meta, Aster ``GET /fapi/v1/time``), so they work without credentials and without the adapter.
Credentials are checked locally (the key's address against `account`/`signer`) and by one
authenticated read through the venue adapter.

`--trade-test` proves the keys can trade before the news comes: one post-only bid at half the
mark (it can never fill, and stays inside every venue's price band) is placed and cancelled by
its client id, so an unapproved agent, an unfunded account or a clock outside the venue's window
shows up now. The order is cancelled by client id even when the placing reply was lost, and the
test does not end while that order may still rest. Like every order, it is sent by the engine
(`Executor.place_resting` / `cancel_order`): journaled before the send, under the coin's lock,
here in a throwaway journal (no bot exists yet).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from dataclasses import asdict, dataclass, field
from decimal import ROUND_CEILING, Decimal
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from newstrader.config import Settings, VenueSettings

if TYPE_CHECKING:
    from newstrader.engine.executor import Executor
    from newstrader.venues.base import Venue, VenueError

PROBE_TIMEOUT_S = 5.0
SKEW_WARN_S = 1.0
SKEW_FAIL_S = 5.0  # Aster refuses requests outside its 5 s default recvWindow
TRADE_TEST_DISCOUNT = Decimal("0.5")  # the test bid's price: half the mark never fills
TRADE_TEST_NOTIONAL = Decimal(15)  # USD at the bid price: above either venue's minimum order value
TRADE_TEST_COINS = ("BTC", "ETH")  # tried first; else the first listed market
CLEANUP_POLL_S = 0.25


@dataclass(slots=True)
class VenueCheck:
    """What `check` found about one venue; `ok` is False when trading on it would fail."""

    name: str
    kind: str
    network: str
    url: str
    reachable: bool = False
    latency_ms: float | None = None
    clock_skew_s: float | None = None  # our clock minus the venue's
    clock_skew_uncertainty_s: float | None = None  # half the round trip (+0.5 s for a Date header)
    credentials: str = "not checked"
    balance_usd: str | None = None  # the account's equity, read with its key (a decimal string)
    trade_test: str = "not run"
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.reachable and not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


async def _probe(client: httpx.AsyncClient, cfg: VenueSettings, result: VenueCheck) -> None:
    """One public request: reachability, latency and the server's clock."""
    before = time.time()
    started = time.perf_counter()
    try:
        if cfg.kind == "hyperliquid":
            response = await client.post(f"{result.url}/info", json={"type": "meta"})
        else:
            response = await client.get(f"{result.url}/fapi/v1/time")
    except httpx.TimeoutException:
        result.problems.append(f"unreachable: no answer within {PROBE_TIMEOUT_S:g} s")
        return
    except httpx.HTTPError as exc:
        result.problems.append(f"unreachable: {type(exc).__name__}: {exc}".rstrip(": "))
        return
    after = time.time()
    result.latency_ms = round((time.perf_counter() - started) * 1000, 1)
    if response.status_code != 200:
        result.problems.append(f"unexpected HTTP {response.status_code} from {response.request.url}")
        return
    try:
        body = response.json()
    except ValueError:
        result.problems.append("answer is not JSON: is the url right?")
        return
    server_time: float | None = None
    resolution = 0.0
    if cfg.kind == "aster":
        if not isinstance(body, dict) or not isinstance(body.get("serverTime"), int | float):
            result.problems.append("answer has no serverTime: is the url right?")
            return
        server_time = body["serverTime"] / 1000.0
    else:
        if not isinstance(body, dict) or "universe" not in body:
            result.problems.append("answer has no market list: is the url right?")
            return
        date_header = response.headers.get("date")
        if date_header:  # one-second resolution, enough to catch a clock that is really off
            try:
                server_time = parsedate_to_datetime(date_header).timestamp() + 0.5
                resolution = 0.5
            except (TypeError, ValueError):
                server_time = None
    result.reachable = True
    if server_time is not None:
        skew = (before + after) / 2 - server_time
        uncertainty = (after - before) / 2 + resolution
        result.clock_skew_s = round(skew, 3)
        result.clock_skew_uncertainty_s = round(uncertainty, 3)
        surely_off_by = abs(skew) - uncertainty  # judge only what the measurement can tell
        if surely_off_by > SKEW_FAIL_S:
            result.problems.append(f"clock skew {skew:+.1f} s: fix the system clock (NTP)")
        elif surely_off_by > SKEW_WARN_S:
            result.notes.append(f"clock skew {skew:+.1f} s")


def _key_address(secret: str) -> str:
    from eth_account import Account

    return str(Account.from_key(secret).address)


def _local_credentials(cfg: VenueSettings, result: VenueCheck) -> bool:
    """Checks that need no network; False when there is nothing (usable) to try remotely."""
    if cfg.secret_file is not None and cfg.secret_source.startswith("secret_file"):
        try:
            loose = cfg.secret_file.stat().st_mode & 0o077
        except OSError:
            loose = 0
        if loose:
            result.notes.append(f"secret_file {cfg.secret_file} is readable by other users: chmod 600 it")
    if cfg.secret is None:
        result.credentials = f"not set (env {cfg.secret_env} or secret_file)"
        result.notes.append("read-only: no key, so no orders")
        return False
    if not cfg.signs_with_private_key:
        result.credentials = "HMAC key and secret set"
        return True
    try:
        address = _key_address(cfg.secret.get_secret_value())
    except Exception:  # the message could echo the key, so it is not shown
        result.problems.append("secret is not a usable private key")
        result.credentials = "unusable"
        return False
    if cfg.kind == "hyperliquid":
        if cfg.account is None or cfg.account.lower() == address.lower():
            result.credentials = f"key of {address}"
        else:
            result.credentials = f"agent key {address} acting for {cfg.account}"
        return True
    if cfg.account is None:
        result.problems.append("account (the Aster user address) is required with a v3 key")
        result.credentials = "incomplete"
        return False
    if cfg.signer is not None and cfg.signer.lower() != address.lower():
        result.problems.append(f"the key's address {address} is not the configured signer {cfg.signer}")
        result.credentials = "mismatch"
        return False
    result.credentials = f"API wallet {address} for {cfg.account}"
    return True


async def _remote_credentials(cfg: VenueSettings, result: VenueCheck, *, trade_test: bool = False) -> None:
    """One authenticated read through the venue adapter (and the trade test when asked)."""
    from newstrader.venues.base import AuthError, ReportsEquity, VenueError
    from newstrader.venues.factory import build_venue

    try:
        venue = build_venue(cfg)
    except Exception as exc:
        result.problems.append(f"adapter refused the settings: {exc}")
        return
    try:
        positions = await asyncio.wait_for(venue.positions(), PROBE_TIMEOUT_S)
        await asyncio.wait_for(venue.open_orders(), PROBE_TIMEOUT_S)
        if isinstance(venue, ReportsEquity):
            balance = await asyncio.wait_for(venue.equity(), PROBE_TIMEOUT_S)
            result.balance_usd = f"{balance:.2f}"
            if balance <= 0:
                result.notes.append("balance is 0: fund the account, or every order will be refused")
    except AuthError as exc:
        result.problems.append(
            f"credentials refused (approve the agent / API wallet for this account?): {exc}"
        )
        result.credentials += " (refused)"
    except (VenueError, TimeoutError) as exc:
        result.problems.append(f"account read failed: {type(exc).__name__}: {exc}")
    except Exception as exc:  # an adapter bug must not hide the other venues' results
        result.problems.append(f"adapter error: {type(exc).__name__}: {exc}")
    else:
        result.credentials += f" (ok: {len(positions)} open position{'s' if len(positions) != 1 else ''})"
        if trade_test:
            await run_trade_test(venue, result)
    finally:
        with contextlib.suppress(Exception):
            await venue.close()


async def check_venue(cfg: VenueSettings, *, trade_test: bool = False) -> VenueCheck:
    """Every check for one venue; never raises."""
    result = VenueCheck(name=cfg.name, kind=cfg.kind, network=cfg.network, url=cfg.base_url)
    if cfg.is_mainnet:
        result.notes.append("mainnet: `run` needs --live")
    async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S, trust_env=False) as client:
        await _probe(client, cfg, result)
    usable = _local_credentials(cfg, result)
    if usable and result.reachable:
        await _remote_credentials(cfg, result, trade_test=trade_test)
    if trade_test and result.trade_test == "not run":
        result.trade_test = "not run: " + ("; ".join(result.problems) or "no usable key")
    return result


async def check_all(settings: Settings, *, trade_test: bool = False) -> list[VenueCheck]:
    """Check every venue in parallel (`trade_test`: also place and cancel one post-only order each)."""
    return list(await asyncio.gather(*(check_venue(v, trade_test=trade_test) for v in settings.venues)))


def _trade_test_failure(exc: VenueError | TimeoutError) -> str:
    """One clear line for why the test order was refused."""
    from newstrader.venues.base import AuthError, VenueError

    text = str(exc)
    lowered = text.lower()
    if "must deposit" in lowered or "margin" in lowered or "balance is insufficient" in lowered:
        return (
            f"unfunded: the account has no margin for a ${TRADE_TEST_NOTIONAL} order; deposit first ({text})"
        )
    if (
        "expired" in lowered
        or "recvwindow" in lowered
        or "outside of the" in lowered
        or (isinstance(exc, VenueError) and exc.code in (-1021, -4225))
    ):
        return f"clock: the venue refused our request time; sync the system clock (NTP) ({text})"
    if isinstance(exc, AuthError):
        return (
            "not approved: the venue does not let this key trade the account; "
            f"approve the agent / API wallet ({text})"
        )
    return f"refused: {type(exc).__name__}: {text}"


async def run_trade_test(venue: Venue, result: VenueCheck) -> None:
    """Place one post-only bid far below the market and cancel it by client id; never leave it
    resting. The engine sends both, journaling into a temporary journal removed afterwards."""
    from newstrader.engine.executor import Executor
    from newstrader.journal import Journal
    from newstrader.venues.base import CancelsByClientId

    if not isinstance(venue, CancelsByClientId):
        result.trade_test = "not run: the adapter cannot cancel by client id"
        result.notes.append(result.trade_test)
        return
    with tempfile.TemporaryDirectory(prefix="newstrader-check-") as scratch:
        journal = await Journal.open(f"sqlite:///{Path(scratch) / 'trade-test.db'}")
        try:
            await _trade_test(Executor({venue.name: venue}, journal), venue, result)
        finally:
            await journal.close()


async def _trade_test(gateway: Executor, venue: Venue, result: VenueCheck) -> None:
    from newstrader.domain import OrderRequest, OrderStatus, OrderType, TimeInForce
    from newstrader.engine.client_ids import client_id as make_client_id
    from newstrader.engine.operations import new_operation_id
    from newstrader.venues.base import Ambiguous, Transient, VenueError

    try:
        markets = await venue.markets()
        coin = next((c for c in TRADE_TEST_COINS if c in markets), None) or sorted(markets)[0]
        market = markets[coin]
        price = market.round_price(await venue.mark_price(coin) * TRADE_TEST_DISCOUNT, up=False)
        notional = max(TRADE_TEST_NOTIONAL, market.min_notional * 2)
        steps = (notional / price / market.size_step).to_integral_value(rounding=ROUND_CEILING)
        size = max(steps * market.size_step, market.min_size)
    except (VenueError, TimeoutError, IndexError) as exc:
        result.trade_test = f"not run: could not read the market ({exc})"
        result.problems.append(f"trade test {result.trade_test}")
        return
    op_id = new_operation_id("trade-test")
    client_id = make_client_id(op_id, venue.name, "probe")
    order = OrderRequest(
        coin, True, size, client_id, order_type=OrderType.LIMIT, limit_price=price, tif=TimeInForce.POST_ONLY
    )
    started = time.perf_counter()
    outcome: str
    try:
        placed = await asyncio.wait_for(
            gateway.place_resting(venue.name, order, op_id=op_id), PROBE_TIMEOUT_S
        )
    except (VenueError, TimeoutError) as exc:
        outcome = _trade_test_failure(exc)
        lost = isinstance(exc, Ambiguous | Transient | TimeoutError)  # it may still reach the venue
    else:
        lost = False
        outcome = (
            "" if placed.status is OrderStatus.RESTING else f"refused: the order was {placed.status.value}"
        )
    left = await _cancel_until_gone(
        gateway, venue, coin, client_id, op_id, venue.order_validity_s if lost else 0.0
    )
    ms = round((time.perf_counter() - started) * 1000)
    if left:
        result.problems.append(f"trade test: order {client_id} may still rest on {coin}: cancel it by hand")
    if outcome:
        result.trade_test = outcome
        result.problems.append(f"trade test {outcome}")
    else:
        result.trade_test = f"ok: post-only buy {size} {coin} @ {price} rested and was cancelled ({ms} ms)"


async def _cancel_until_gone(
    gateway: Executor, venue: Venue, coin: str, client_id: str, op_id: str, window_s: float
) -> bool:
    """Cancel by client id until the venue shows no such order resting; True if it may still rest.

    After a lost reply the order may still arrive until its validity window ends, so keep
    cancelling until then; once the venue knows the order and it is not resting, it is done.
    """
    from newstrader.domain import OrderStatus
    from newstrader.venues.base import VenueError

    deadline = time.monotonic() + window_s + PROBE_TIMEOUT_S
    settle = time.monotonic() + window_s
    while True:
        with contextlib.suppress(VenueError):  # a refused key cannot cancel; the read below decides
            await gateway.cancel_order(venue.name, coin, client_id, op_id=op_id)
        try:
            status = await venue.order_status(client_id, coin)
        except VenueError:
            if time.monotonic() >= deadline:
                return True
        else:
            resting = status is not None and status.status is OrderStatus.RESTING
            if not resting and (status is not None or time.monotonic() >= settle):
                return False
            if time.monotonic() >= deadline:
                return resting
        await asyncio.sleep(CLEANUP_POLL_S)


def describe(check: VenueCheck) -> str:
    """One line for a human."""
    mark = "ok  " if check.ok else "FAIL"
    parts = [f"{mark} {check.name} ({check.kind}, {check.network}) {check.url}"]
    if check.reachable:
        parts.append(f"reachable {check.latency_ms:g} ms")
        if check.clock_skew_s is not None:
            parts.append(
                f"clock skew {check.clock_skew_s:+.2f} ± {check.clock_skew_uncertainty_s or 0:.2f} s"
            )
    parts.append(f"credentials: {check.credentials}")
    if check.balance_usd is not None:
        parts.append(f"balance {check.balance_usd} USD")
    if check.trade_test.startswith("ok"):
        parts.append(f"trade test {check.trade_test}")
    parts.extend(check.problems)
    parts.extend(f"note: {note}" for note in check.notes)
    return "; ".join(parts)
