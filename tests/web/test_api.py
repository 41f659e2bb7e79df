"""The bot's HTTP API against a running bot + simulator: auth on every route, limits, errors, data."""

from __future__ import annotations

import json
import threading
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from conftest import RunningStack

pytestmark = pytest.mark.xdist_group("web")

WRONG = "not-the-token"


def _routes(stack: RunningStack) -> list[tuple[str, str]]:
    """Every (method, path) of the OpenAPI schema, plus the undocumented ones, but /healthz."""
    schema = stack.bot.web_app.openapi()
    routes = [
        (method.upper(), path)
        for path, ops in schema["paths"].items()
        for method in ops
        if path != "/healthz"
    ]
    assert len(routes) >= 15, routes
    return [*routes, ("GET", "/openapi.json")]


def test_every_route_but_healthz_refuses_a_missing_or_wrong_token(stack: RunningStack) -> None:
    before = stack.exchange_positions()
    for method, path in _routes(stack):
        for headers in ({}, {"Authorization": f"Bearer {WRONG}"}, {"Authorization": stack.token}):
            body = {"title": "BTC up", "coin": "BTC", "side": "long"} if path == "/api/news" else None
            if path == "/api/control/close":
                body = {"coin": "BTC"}
            if path == "/api/login":
                continue  # the login route takes the token in its body (tested below)
            response = httpx.request(
                method, stack.url + path, headers=headers, json=body, trust_env=False, timeout=10
            )
            assert response.status_code == 401, (method, path, headers, response.text)
            assert "token" in response.json()["detail"]
    # Nothing was acted on by any refused call.
    assert stack.exchange_positions() == before


def test_schema_is_served_with_the_token_and_no_docs_pages_leak(stack: RunningStack) -> None:
    with stack.api() as api:
        schema = api.get("/openapi.json").json()
        assert "/api/news" in schema["paths"] and "/api/control/close" in schema["paths"]
        assert "requestBody" in schema["paths"]["/api/news"]["post"]
        for path in ("/docs", "/redoc"):
            assert api.get(path).status_code == 404


def test_healthz_needs_no_token_and_the_page_holds_no_data(stack: RunningStack) -> None:
    health = httpx.get(stack.url + "/healthz", trust_env=False)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    page = httpx.get(stack.url + "/", trust_env=False)
    assert page.status_code == 200
    assert 'id="login-form"' in page.text
    assert stack.token not in page.text
    for key in (stack.stack.accounts.hl_key, stack.stack.accounts.aster_signer_key):
        assert key[2:] not in page.text


def test_login_sets_a_stream_only_cookie(stack: RunningStack) -> None:
    wrong = httpx.post(stack.url + "/api/login", json={"token": WRONG}, trust_env=False)
    assert wrong.status_code == 401
    right = httpx.post(stack.url + "/api/login", json={"token": stack.token}, trust_env=False)
    assert right.status_code == 204
    cookie = right.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Path=/api/stream" in cookie and "SameSite=strict" in cookie
    assert stack.token not in cookie
    # The cookie opens the stream and nothing else.
    value = right.cookies.get("newstrader_stream")
    refused = httpx.get(stack.url + "/api/positions", cookies={"newstrader_stream": value}, trust_env=False)
    assert refused.status_code == 401


def test_news_over_64_kib_is_413_before_parsing(stack: RunningStack) -> None:
    with stack.api() as api:
        huge = json.dumps({"title": "BTC up", "coin": "BTC", "side": "long", "body": "x" * 70_000})
        response = api.post("/api/news", content=huge, headers={"Content-Type": "application/json"})
        assert response.status_code == 413
        # Not JSON at all, but too big: still 413 (the size is checked on the raw body first).
        response = api.post("/api/news", content=b"{" * (64 * 1024 + 1))
        assert response.status_code == 413

        # Chunked (no Content-Length): the limit holds on the bytes read.
        def chunks() -> Any:
            for _ in range(70):
                yield b"x" * 1024

        response = api.post("/api/news", content=chunks())
        assert response.status_code == 413
        news = api.get("/api/news?limit=200").json()["news"]
        assert all(n["title"] != "BTC up" or n.get("body", "") == "" for n in news)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"body": "no title"}).encode(), "title"),
        (json.dumps({"title": "x", "coin": "BTC", "side": "sideways"}).encode(), "side"),
        (json.dumps({"title": "x", "coin": "BTC"}).encode(), "coin and side"),
        (json.dumps({"title": " ", "coin": "BTC", "side": "long"}).encode(), "title"),
    ],
)
def test_invalid_news_is_422_with_the_reason(stack: RunningStack, body: bytes, reason: str) -> None:
    with stack.api() as api:
        response = api.post("/api/news", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert reason in json.dumps(response.json()["detail"])


def test_bad_query_and_unknown_venue_are_422(stack: RunningStack) -> None:
    with stack.api() as api:
        assert api.get("/api/signals?limit=0").status_code == 422
        assert api.get("/api/orders?limit=abc").status_code == 422
        response = api.post("/api/control/close", json={"coin": "ETH", "venue": "nosuch"})
        assert response.status_code == 422
        assert "nosuch" in response.json()["detail"] and "aster" in response.json()["detail"]
        typo = api.post("/api/control/close", json={"coin": "ETHH"})  # no venue lists it: not found
        assert typo.status_code == 404, typo.text
        assert "ETHH" in typo.json()["detail"] and "not listed" in typo.json()["detail"]
        assert typo.json().get("ok") is None  # never `ok: true` for a close that closed nothing


def test_news_opens_positions_and_every_view_shows_it(flat_stack: RunningStack) -> None:
    stack = flat_stack
    with stack.api() as api:
        # ?wait: the views below are read once the venues' outcomes are in, not while they run
        response = api.post(
            "/api/news?wait=30",
            json={"title": f"Web test: ETH long {uuid.uuid4().hex[:8]}", "coin": "eth", "side": "long"},
        )
        assert response.status_code == 200, response.text
        accepted = response.json()
        assert accepted["signal"]["coin"] == "ETH" and accepted["signal"]["side"] == "long"

        truth = stack.wait_until(lambda: stack.exchange_positions().get(("aster", "ETH")), 15)
        assert truth and truth > 0

        rows = api.get("/api/positions").json()["positions"]
        eth = [r for r in rows if r["venue"] == "aster" and r["coin"] == "ETH"]
        assert len(eth) == 1
        assert Decimal(eth[0]["exchange_size"]) == truth  # the exchange's size, not an estimate
        assert eth[0]["drift"] is False
        assert eth[0]["take_profit"] is not None and eth[0]["stop_loss"] is not None

        signals = api.get("/api/signals?limit=5").json()["signals"]
        mine = next(s for s in signals if s["id"] == accepted["signal"]["id"])
        assert any(o["venue"] == "aster" and o["status"] == "ok" for o in mine["outcomes"])
        orders = api.get("/api/orders?limit=5").json()["orders"]
        assert any(o["signal_id"] == accepted["signal"]["id"] for o in orders)
        news = api.get("/api/news?limit=5").json()["news"]
        assert any(n["id"] == accepted["news_id"] for n in news)
        assert api.get("/api/stats").json()["summary"]["signal_to_fill_samples"] >= 1


def test_drift_from_a_trade_outside_the_bot_is_reported(flat_stack: RunningStack) -> None:
    stack = flat_stack
    account = stack.stack.accounts.address("aster")
    stack.sim_admin("POST", "/position", {"venue": "aster", "account": account, "coin": "SOL", "size": "3"})
    with stack.api() as api:

        def reported() -> bool:
            events = api.get("/api/events?limit=10").json()["events"]
            return any(e["venue"] == "aster" and e["coin"] == "SOL" for e in events)

        # The venue pushes the trade and it is reconciled as drift within a second (issue 15);
        # a manual reconcile then finds the cache already in step.
        assert stack.wait_until(reported, 5, 0.05)
        found = api.post("/api/control/reconcile").json()["detail"]
        assert not any(e["venue"] == "aster" and e["coin"] == "SOL" for e in found), found


def test_pause_resume_and_metrics(flat_stack: RunningStack) -> None:
    stack = flat_stack
    with stack.api() as api:
        assert api.post("/api/control/pause").json()["paused"] is True
        assert api.get("/api/positions").json()["paused"] is True
        text = api.get("/metrics").text
        assert "newstrader_paused 1.0" in text
        assert api.post("/api/control/resume").json()["paused"] is False
        text = api.get("/metrics").text
        assert "newstrader_paused 0.0" in text
        for family in (
            "newstrader_signals_total",
            "newstrader_orders_total",
            "newstrader_stage_latency_seconds",
            "newstrader_drift_events_total",
            "newstrader_venue_errors_total",
            "newstrader_rate_limit_waits_total",
            "newstrader_rate_limit_spent_total",
            "newstrader_quarantines_total",
        ):
            assert f"# TYPE {family.removesuffix('_total')}" in text, family
        # The venues' request budgets are read at scrape time: the bot has spent some already.
        spent = [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("newstrader_rate_limit_spent_total{bucket=")
        ]
        assert spent and max(spent) > 0, text


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    for line in text.splitlines():
        named = line.startswith((name + "{", name + " "))
        if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_orders_latency_and_drift(flat_stack: RunningStack) -> None:
    stack = flat_stack
    with stack.api() as api:
        before = api.get("/metrics").text
        title = f"Metrics test: BTC short {uuid.uuid4().hex[:8]}"
        # ?wait: answered once the signal's outcomes are journaled, so the liquidation below
        # lands after the engine's own check of the exchange, not inside it.
        answer = api.post("/api/news?wait=15", json={"title": title, "coin": "BTC", "side": "short"})
        answer.raise_for_status()
        assert answer.json()["done"] is True, answer.json()
        assert stack.wait_until(lambda: stack.exchange_positions().get(("aster", "BTC"), 0) < 0, 15)
        account = stack.stack.accounts.address("aster")
        stack.sim_admin("POST", "/liquidate", {"venue": "aster", "account": account, "coin": "BTC"})
        api.post("/api/control/reconcile").raise_for_status()

        def counted() -> str | None:
            text = api.get("/metrics").text
            grew = (
                _sample(text, "newstrader_orders_total", venue="aster", result="filled")
                > _sample(before, "newstrader_orders_total", venue="aster", result="filled")
                and _sample(text, "newstrader_signals_total", venue="aster", outcome="ok")
                > _sample(before, "newstrader_signals_total", venue="aster", outcome="ok")
                and _sample(text, "newstrader_drift_events_total", venue="aster", kind="stale_local_cleared")
                > _sample(before, "newstrader_drift_events_total", venue="aster", kind="stale_local_cleared")
                and _sample(
                    text, "newstrader_stage_latency_seconds_count", stage="received_to_filled", venue="aster"
                )
                > _sample(
                    before,
                    "newstrader_stage_latency_seconds_count",
                    stage="received_to_filled",
                    venue="aster",
                )
            )
            return text if grew else None

        assert stack.wait_until(counted, 10), api.get("/metrics").text


def test_stream_delivers_signal_events(flat_stack: RunningStack) -> None:
    stack = flat_stack
    login = httpx.post(stack.url + "/api/login", json={"token": stack.token}, trust_env=False)
    cookie = login.cookies.get("newstrader_stream")
    seen: list[tuple[str, dict[str, Any]]] = []
    connected = threading.Event()

    def listen() -> None:
        with (
            httpx.Client(trust_env=False, timeout=20, cookies={"newstrader_stream": cookie}) as client,
            client.stream("GET", stack.url + "/api/stream") as response,
        ):
            event = ""
            for line in response.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event:
                    seen.append((event, json.loads(line.split(":", 1)[1])))
                    if event == "hello":
                        connected.set()
                    if event == "signal":
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert connected.wait(10)
    with stack.api() as api:
        api.post(
            "/api/news",
            json={"title": f"Stream test: BTC long {uuid.uuid4().hex[:8]}", "coin": "BTC", "side": "long"},
        )
    listener.join(15)
    assert any(name == "signal" and data.get("coin") == "BTC" for name, data in seen), seen


def test_secrets_never_in_api_answers(stack: RunningStack) -> None:
    keys = [stack.stack.accounts.hl_key[2:], stack.stack.accounts.aster_signer_key[2:]]
    with stack.api() as api:
        paths = ("/api/positions", "/api/signals", "/api/orders", "/api/events", "/api/stats", "/metrics")
        for path in paths:
            text = api.get(path).text
            assert stack.token not in text, path
            assert not any(k in text for k in keys), path
