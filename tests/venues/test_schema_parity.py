"""Schema parity: every reply the adapters read from the simulator has the shape of the real one.

The adapters run a full session against the simulator process while a response hook keeps each
raw reply by endpoint. For every endpoint they called, the recorded real reply
(tests/data/recorded) must exist, and each of its keys must be in the simulator's reply with the
same JSON type, nested objects and list items included. So the simulator cannot drift from the
real format without this test failing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from newstrader.domain import OrderRequest, OrderType, TimeInForce

from .conftest import VenueUnderTest

DATA = Path(__file__).parents[1] / "data" / "recorded"
COIN = "ETH"

# Endpoint the adapters call → recorded replies of it (any one may be the reference per key).
ASTER_RECORDED = {
    "GET time": ["time"],
    "GET exchangeInfo": ["exchangeInfo"],
    "GET leverageBracket": ["leverageBracket"],
    "GET positionSide/dual": ["positionSide_dual"],
    "GET positionRisk": ["positionRisk_recorded", "positionRisk"],
    "GET accountWithJoinMargin": ["accountWithJoinMargin"],
    "GET premiumIndex": ["premiumIndex_recorded", "premiumIndex_doc"],
    "POST order": ["order_new"],
    "GET order": ["order_query"],
    "GET openOrders": ["openOrders"],
    "GET userTrades": ["userTrades_recorded", "userTrades_doc"],
    "DELETE order": ["order_query"],
}
# Calls whose reply the adapter reads only for success (no recorded example to hold them to).
ASTER_UNCHECKED = {"POST leverage", "POST marginType"}
# Keys of a recorded reply the simulator need not send, and why.
OPTIONAL_KEYS = {
    "activatePrice": "only on TRAILING_STOP_MARKET orders (docs), which the simulator refuses",
    "priceRate": "only on TRAILING_STOP_MARKET orders (docs)",
    "OrderType": "a typo in the docs' exchangeInfo example; the venue (and ccxt) use orderTypes",
    "autoAssetExchange": "the docs show a number, ccxt's recording a string: the venue is not consistent",
    "maxTradeSzs": "in the SDK's 2023 recording only; the current docs' clearinghouseState has none",
}
HL_RECORDED = {
    "meta": ["meta"],
    "allMids": ["allMids"],
    "clearinghouseState": ["clearinghouseState"],
    "spotClearinghouseState": ["spotClearinghouseState"],
    "userAbstraction": ["userAbstraction"],
    "frontendOpenOrders": ["frontendOpenOrders"],
    "orderStatus": ["orderStatus"],
    "userFills": ["userFills"],
    "userFillsByTime": ["userFillsByTime"],
    "exchange:order:na": ["order_filled", "order_resting"],
    "exchange:cancel": ["cancel"],
    "exchange:updateLeverage": ["updateLeverage"],
}
# TP/SL groups answer "waitingForTrigger"-style statuses; no recorded example of one is at hand.
HL_UNCHECKED = {"exchange:order:positionTpsl"}
DATA_KEYED = {"allMids"}  # an object keyed by coin: compare the values' type, not the keys


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def mismatches(real: Any, sim: Any, path: str = "$") -> list[str]:
    """Where `sim` lacks a key of `real` or holds another JSON type (null matches anything)."""
    if real is None or sim is None:
        return []
    if _kind(real) != _kind(sim):
        return [f"{path}: real {_kind(real)} {real!r:.40}, simulator {_kind(sim)} {sim!r:.40}"]
    if isinstance(real, dict):
        out = []
        for key, value in real.items():
            if key in OPTIONAL_KEYS:
                continue
            if key not in sim:
                out.append(f"{path}.{key}: missing in the simulator's reply")
            else:
                out += mismatches(value, sim[key], f"{path}.{key}")
        return out
    if isinstance(real, list) and real and sim:
        return mismatches(real[0], sim[0], f"{path}[0]")
    return []


def check(venue: str, endpoint: str, names: list[str], replies: list[Any]) -> list[str]:
    """Each simulator reply must match at least one recorded reply of the endpoint."""
    references = [json.loads((DATA / venue / f"{n}.json").read_text())["reply"] for n in names]
    problems: list[str] = []
    for reply in replies:
        found = []
        for reference in references:
            if endpoint in DATA_KEYED:
                found.append(mismatches(next(iter(reference.values())), next(iter(reply.values()))))
            else:
                found.append(mismatches(reference, reply))
        if all(found):
            problems += min(found, key=len)
    return problems


class Recorder:
    """An httpx response hook keeping the last JSON reply per endpoint label."""

    def __init__(self, label: Any) -> None:
        self.label = label
        self.replies: dict[str, list[Any]] = {}

    async def __call__(self, response: httpx.Response) -> None:
        await response.aread()
        if response.status_code == 200:
            self.replies.setdefault(self.label(response.request), []).append(response.json())


def _aster_label(request: httpx.Request) -> str:
    return f"{request.method} {request.url.path.split('/', 4)[4]}"


def _hl_label(request: httpx.Request) -> str:
    body = json.loads(request.content)
    if request.url.path.endswith("/exchange"):
        action = body["action"]
        grouping = f":{action['grouping']}" if action["type"] == "order" else ""
        return f"exchange:{action['type']}{grouping}"
    return str(body["type"])


async def _session(v: VenueUnderTest) -> None:
    """Everything the engine asks of a venue: reads, a fill, a resting order, triggers, cancels."""
    venue = v.venue
    start = datetime.now(UTC) - timedelta(seconds=5)
    markets = await venue.markets()
    mark = await venue.mark_price(COIN)
    await venue.equity()
    await venue.set_leverage(COIN, 5)
    size = markets[COIN].round_size(Decimal(300) / mark)
    await venue.place_order(OrderRequest(COIN, True, size, "parity-fill"))
    await venue.positions()
    await venue.place_order(
        OrderRequest(
            COIN,
            True,
            size,
            "parity-rest",
            order_type=OrderType.LIMIT,
            limit_price=mark * Decimal("0.9"),
            tif=TimeInForce.GTC,
        )
    )
    await venue.place_triggers(
        COIN, size, mark * Decimal("1.1"), mark * Decimal("0.9"), ("parity-tp", "parity-sl")
    )
    await venue.open_orders(COIN)
    await venue.order_status("parity-fill")
    await venue.fills(start)
    await venue.cancel_triggers(COIN)


SESSIONS = {
    "aster-v3": ("aster", _aster_label, ASTER_RECORDED, ASTER_UNCHECKED),
    "hyperliquid": ("hyperliquid", _hl_label, HL_RECORDED, HL_UNCHECKED),
}


@pytest.mark.parametrize("kind", sorted(SESSIONS))
async def test_simulator_replies_have_the_real_shape(venue_factory: Any, kind: str) -> None:
    data_dir, label, recorded, unchecked = SESSIONS[kind]
    v = venue_factory(kind)
    recorder = Recorder(label)
    v.venue.http._client.event_hooks["response"].append(recorder)
    await _session(v)
    called = set(recorder.replies)
    assert called - unchecked <= set(recorded), called - set(recorded)  # every call has a recording
    problems = {
        endpoint: check(data_dir, endpoint, recorded[endpoint], recorder.replies[endpoint])
        for endpoint in sorted(called - unchecked)
    }
    problems = {k: p for k, p in problems.items() if p}
    assert problems == {}, json.dumps(problems, indent=1)


def test_the_comparison_catches_drift() -> None:
    """A renamed key, a number sent as a string, a changed nested type: each is reported."""
    real = {"a": "1", "b": [{"c": 1}], "d": {"e": True}, "f": None}
    assert mismatches(real, {"a": "2", "b": [{"c": 2.5}], "d": {"e": False}, "f": "x", "g": 0}) == []
    assert mismatches(real, {"a": 1, "b": [{"c": 1}], "d": {"e": True}, "f": None}) != []
    assert mismatches(real, {"a": "1", "b": [{"x": 1}], "d": {"e": True}, "f": None}) != []
    assert mismatches(real, {"a": "1", "b": [{"c": 1}], "d": {"e": "true"}, "f": None}) != []
