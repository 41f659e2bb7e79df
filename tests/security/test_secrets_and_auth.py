"""Security of a running bot process: tokens on every route, secrets nowhere, loopback by default.

What `tests/web/test_api.py` already covers in-process (the token on every schema route, 413
by Content-Length and chunked, secrets in a fixed list of answers) is not repeated; here the
subject is the real `newstrader run` process with real env secrets, and the routes come from
the app itself (`app.routes`, documented or not), so a route added later is covered.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route

from newstrader.config import settings_from_mapping
from newstrader.web.app import STATIC_DIR, create_app
from newstrader.web.errors import flat_routes
from newstrader.web.server import LoopbackServer

pytestmark = [
    pytest.mark.xdist_group("security"),  # one simulator and one bot for the module
    pytest.mark.timeout(300),  # a bot process can take a minute to start on a loaded 2-core box
]

VENUES = ("hyperliquid", "aster")
PUBLIC = {"/healthz", "/", "/static", "/favicon.ico"}  # the login shell, its assets and icon hold no data


def secret_forms(values: dict[str, str]) -> dict[str, list[bytes]]:
    """Each secret in the spellings a leak could take: as given, without 0x, upper/lower case, raw bytes."""
    forms: dict[str, list[bytes]] = {}
    for name, value in values.items():
        bare = value[2:] if value.startswith("0x") else value
        spelled = {value, bare, bare.lower(), bare.upper()}
        found = [s.encode() for s in spelled]
        if len(bare) == 64:
            found.append(bytes.fromhex(bare))  # a private key stored as bytes
        forms[name] = found
    return forms


def leaks(blob: bytes, forms: dict[str, list[bytes]]) -> list[str]:
    """Names of the secrets found in `blob`, in any of their forms."""
    return [name for name, spellings in forms.items() if any(s in blob for s in spellings)]


def _app_routes() -> list[tuple[str, str]]:
    """(method, path) of every route the web app defines, documented or not, but the public ones."""
    app = create_app(SimpleNamespace(bus=None, venues={}), token="route-listing-only")
    found: list[tuple[str, str]] = []
    paths: set[str] = set()
    for route in flat_routes(app.routes):
        if isinstance(route, Mount):
            paths.add(route.path)
            continue
        assert isinstance(route, APIRoute | Route), route
        paths.add(route.path)
        if route.path in PUBLIC:
            continue
        found.extend((method, route.path) for method in sorted(route.methods or ()) if method != "HEAD")
    assert paths >= PUBLIC, "the public routes moved: update PUBLIC and the threat model"
    return found


def _drive(world: Any) -> None:
    """Make the bot do (and log, and journal) everything: trades, faults, drift, errors, controls."""
    bot = world.bot
    world.sim.admin.add_fault(
        "hyperliquid", "drop_response_after_execute", count=1, endpoint="exchange:order"
    )
    world.sim.admin.add_fault("aster", "http_5xx", count=1, endpoint="POST /fapi/v1/order")
    bot.news("BTC", "long")
    world.sim.admin.clear_faults()
    bot.news("ETH", "short")
    world.outside_trade("aster", "ETH", "0")
    bot.http.post("/api/control/reconcile").raise_for_status()
    assert bot.http.post("/api/news", content=b"{not json").status_code == 422
    assert bot.http.post("/api/control/close", json={"coin": "BTC", "venue": "nosuch"}).status_code == 422
    bot.http.post("/api/control/close", json={"coin": "BTC"}).raise_for_status()
    bot.http.post("/api/control/pause").raise_for_status()
    bot.http.post("/api/control/resume").raise_for_status()


def test_every_route_but_healthz_refuses_a_missing_or_wrong_token(secured: Any) -> None:
    bot = secured.bot
    routes = _app_routes()
    assert ("GET", "/openapi.json") in routes and ("POST", "/api/news") in routes and len(routes) >= 15
    before = {v: secured.position(v, "SOL") for v in VENUES}
    with httpx.Client(base_url=bot.url, trust_env=False, timeout=30) as raw:
        for method, path in routes:
            body: dict[str, Any] = {"title": "SOL up", "coin": "SOL", "side": "long"}
            if path == "/api/login":  # the one route that takes the token in its body
                refused = raw.request(method, path, json={"token": "wrong"})
                assert refused.status_code == 401, refused.text
                continue
            for headers in (
                {},
                {"Authorization": "Bearer wrong-token"},
                {"Authorization": bot.token},  # no scheme
                {"Authorization": f"Basic {bot.token}"},
                {"Authorization": f"Bearer {bot.token}x"},
            ):
                response = raw.request(method, path, headers=headers, json=body)
                assert response.status_code == 401, (method, path, headers, response.text)
                assert response.headers.get("www-authenticate") == "Bearer"
        assert raw.get("/healthz").status_code == 200
        for gone in ("/docs", "/redoc", "/docs/oauth2-redirect"):  # no unauthenticated schema pages
            assert raw.get(gone).status_code == 404, gone
    assert {v: secured.position(v, "SOL") for v in VENUES} == before  # nothing was acted on


def test_secrets_never_in_api_answers_the_page_or_its_assets(secured: Any) -> None:
    bot = secured.bot
    _drive(secured)
    forms = secret_forms({k: v for k, v in secured.secret_values(bot.token).items() if k != "web token"})
    token_forms = secret_forms({"web token": bot.token})
    checked = 0
    # Path parameters filled with rows the drive made (a signal with its outcomes).
    newest_signal = bot.http.get("/api/signals", params={"limit": 1}).json()["signals"][0]["id"]
    for method, path in _app_routes():
        if method != "GET" or path == "/api/stream":
            continue
        response = bot.http.get(path.replace("{signal_id}", newest_signal))
        assert response.status_code == 200, (path, response.text)
        blob = response.content + str(response.headers).encode()
        assert leaks(blob, forms) == [], path
        assert leaks(blob, token_forms) == [], path
        checked += 1
    assert checked >= 8
    # The stream: its first events (hello, then what the bot publishes) carry no secret either.
    with bot.http.stream("GET", "/api/stream", timeout=10) as stream:
        seen = b""
        for chunk in stream.iter_bytes():
            seen += chunk
            if b"hello" in seen:
                break
    assert leaks(seen, {**forms, **token_forms}) == []
    # The page and every asset it loads, fetched without a token as a browser first does.
    page = httpx.get(bot.url + "/", trust_env=False)
    assets = sorted(p.name for p in STATIC_DIR.iterdir() if p.is_file())
    assert {"app.js", "index.html"} <= set(assets)
    for name in assets:
        asset = httpx.get(f"{bot.url}/static/{name}", trust_env=False)
        assert asset.status_code == 200, name
        assert leaks(asset.content, {**forms, **token_forms}) == [], name
    assert leaks(page.content, {**forms, **token_forms}) == []


def _listening(port: int) -> set[str]:
    """Local IPv4/IPv6 addresses with a socket listening on `port` (from /proc/net/tcp*)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A = LISTEN
                if len(address) == 8:
                    found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
                else:
                    found.add(address)
    return found


def test_the_bot_and_the_simulator_bind_loopback_unless_told_otherwise(secured: Any) -> None:
    bot = secured.bot
    config = (secured.workdir / f"bot-{len(secured.bots) - 1}.toml").read_text()
    assert "host" not in config.split("[web]")[1].split("[")[0]  # the bot was not told a host
    port = int(bot.url.rsplit(":", 1)[1])
    assert _listening(port) == {"127.0.0.1"}
    assert f"newstrader listening on http://127.0.0.1:{port}" in bot.log()
    assert _listening(secured.sim.port) == {"127.0.0.1"}  # started without --host

    # Told otherwise, it binds where it is told (another loopback address: nothing leaves the box).
    settings = settings_from_mapping({"web": {"host": "127.0.0.2", "port": 0}})
    assert settings_from_mapping({}).web.host == "127.0.0.1"

    async def serve_on_the_configured_host() -> set[str]:
        server = LoopbackServer(FastAPI(), settings.web.host, settings.web.port)
        await server.start()
        try:
            return _listening(server.port)
        finally:
            await server.stop()

    assert asyncio.run(serve_on_the_configured_host()) == {"127.0.0.2"}


def test_news_id_of_a_lying_content_length_is_never_journaled(secured: Any) -> None:
    bot = secured.bot
    host, port = "127.0.0.1", int(bot.url.rsplit(":", 1)[1])

    def exchange(raw: bytes, read_deadline_s: float = 20.0) -> bytes:
        with socket.create_connection((host, port), timeout=read_deadline_s) as conn:
            with contextlib.suppress(OSError):  # it may answer and close before taking it all
                conn.sendall(raw)
            answer = b""
            deadline = time.monotonic() + read_deadline_s
            while b"\r\n\r\n" not in answer and time.monotonic() < deadline:
                try:
                    chunk = conn.recv(65536)
                except (TimeoutError, ConnectionResetError):
                    break
                if not chunk:
                    break
                answer += chunk
            return answer

    def head(length: str, extra: str = "") -> bytes:
        return (
            f"POST /api/news HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {bot.token}\r\n"
            f"Content-Type: application/json\r\n{extra}Content-Length: {length}\r\n\r\n"
        ).encode()

    news_id = f"lying-{uuid.uuid4().hex[:8]}"
    payload = (
        b'{"title": "SOL up", "coin": "SOL", "side": "long", "id": "'
        + news_id.encode()
        + b'", "body": "'
        + b"x" * 70_000
        + b'"}'
    )
    # Declares 10 GB, sends nothing: refused at once from the header, the body never awaited.
    started = time.monotonic()
    answer = exchange(head(str(10 * 1024**3)))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 15
    # Declares 40 bytes, sends 70 KiB: only 40 are read as the body (not JSON: 422), the rest
    # is not a request; nothing is accepted.
    answer = exchange(head("40") + payload)
    assert answer.startswith(b"HTTP/1.1 4"), answer[:200]
    assert not answer.startswith(b"HTTP/1.1 202")
    # Content-Length and chunked together (request smuggling's shape): refused, never 202.
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (payload[:40_000], payload[40_000:]))
    answer = exchange(head("10", "Transfer-Encoding: chunked\r\n") + chunked + b"0\r\n\r\n")
    assert answer.startswith((b"HTTP/1.1 4", b"")) and not answer.startswith(b"HTTP/1.1 2"), answer[:200]
    assert bot.rows("SELECT id FROM news WHERE id = ?", news_id) == []
    assert httpx.get(bot.url + "/healthz", trust_env=False).status_code == 200  # still serving


def test_secrets_never_in_the_log_or_the_journal(secured: Any) -> None:
    """Last in the module: it stops the shared bot to read everything it wrote."""
    bot = secured.bot
    _drive(secured)  # again: the check must not depend on which tests ran before
    assert bot.stop() == 0  # a graceful stop: the log is flushed, the journal closed
    forms = secret_forms(secured.secret_values(bot.token))
    log = bot.log_path.read_bytes()
    for event in (b"venue_outcome", b"web_listening", b"stale_local_cleared", b"order_ambiguous"):
        assert event in log, event  # the log is full of the bot's work: the check is not on silence
    assert leaks(log, forms) == []
    journal_files = [p for p in bot.journal_path.parent.iterdir() if p.name.startswith(bot.journal_path.name)]
    assert bot.journal_path in journal_files
    blob = b"".join(p.read_bytes() for p in journal_files)
    assert len(blob) > 10_000
    assert blob.count(b"BTC") > 0  # the orders are there; the keys are not
    assert leaks(blob, forms) == []
    config_text = "".join(p.read_text() for p in secured.workdir.glob("bot-*.toml"))
    assert leaks(config_text.encode(), forms) == []  # secrets live in the environment only
