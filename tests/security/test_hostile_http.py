"""Hostile requests against the `newstrader run` process, over raw sockets where framing matters.

Each refusal is checked against the journal (nothing recorded) and the bot's log (no ERROR
traceback); each has a control that the same socket code does get an accepted request through,
so a test cannot pass because the request never reached the bot.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
import uuid
from typing import Any

import httpx
import pytest

from newstrader.web.auth import STREAM_COOKIE, stream_cookie_value

# One worker runs the module in file order: the login-throttle test, last, locks logins.
pytestmark = [pytest.mark.xdist_group("hostile-http"), pytest.mark.timeout(300)]


def _port(bot: Any) -> int:
    return int(bot.url.rsplit(":", 1)[1])


def exchange(bot: Any, raw: bytes, deadline_s: float = 20.0) -> bytes:
    """Send raw bytes; return everything the bot answers until it closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", _port(bot)), timeout=deadline_s) as conn:
        with contextlib.suppress(OSError):
            conn.sendall(raw)
        conn.settimeout(2.0)
        answer = b""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                if b"\r\n\r\n" in answer:
                    break  # a keep-alive answer is complete; nothing more is coming
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
        return answer


def news_request(bot: Any, body: bytes, *, framing: str, host: str | None = None) -> bytes:
    """POST /api/news with `framing` = "length", "chunked" or "both" (Content-Length + chunked)."""
    host = host or f"127.0.0.1:{_port(bot)}"
    head = f"POST /api/news HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {bot.token}\r\n"
    head += "Content-Type: application/json\r\n"
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    if framing == "length":
        return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    if framing == "chunked":
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + chunked
    # Both: the length covers only the chunk-size line, so the two framings disagree.
    return (head + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n").encode() + chunked


def small_news(news_id: str) -> bytes:
    return json.dumps({"id": news_id, "title": f"SOL up {news_id}", "coin": "SOL", "side": "long"}).encode()


def journaled(bot: Any, news_id: str) -> bool:
    return bool(bot.rows("SELECT id FROM news WHERE id = ?", news_id))


def test_content_length_with_chunked_is_400_and_nothing_is_journaled(secured: Any) -> None:
    bot = secured.bot
    refused_id = f"clte-{uuid.uuid4().hex[:8]}"
    body = small_news(refused_id)
    assert len(body) < 100  # a small body: the refusal is about framing, not size
    answer = exchange(bot, news_request(bot, body, framing="both"))
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert b"Transfer-Encoding" in answer
    assert b"connection: close" in answer.lower()
    assert not journaled(bot, refused_id)
    # The controls: the same socket code and body, framed one way, are accepted and journaled.
    for framing in ("length", "chunked"):
        accepted_id = f"{framing}-{uuid.uuid4().hex[:8]}"
        answer = exchange(bot, news_request(bot, small_news(accepted_id), framing=framing))
        assert answer.startswith(b"HTTP/1.1 202"), answer[:300]
        assert journaled(bot, accepted_id)
    assert not journaled(bot, refused_id)


def test_a_foreign_host_header_is_refused(secured: Any) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends `Host: evil.example`."""
    bot = secured.bot
    for host, status in (
        (f"evil.example:{_port(bot)}", b"400"),
        ("evil.example", b"400"),
        (f"localhost:{_port(bot)}", b"202"),
        (f"127.0.0.1:{_port(bot)}", b"202"),
    ):
        news_id = f"host-{uuid.uuid4().hex[:8]}"
        answer = exchange(bot, news_request(bot, small_news(news_id), framing="length", host=host))
        assert answer.startswith(b"HTTP/1.1 " + status), (host, answer[:300])
        assert journaled(bot, news_id) == (status == b"202"), host
    page = exchange(bot, b"GET / HTTP/1.1\r\nHost: rebound.example\r\nConnection: close\r\n\r\n")
    assert page.startswith(b"HTTP/1.1 400")  # the dashboard page too


def test_deeply_nested_json_is_422_without_a_traceback(secured: Any) -> None:
    bot = secured.bot
    mark = len(bot.log())
    for body in (b"[" * 5000, b"[" * 5000 + b"]" * 5000, b'{"title": ' + b"[" * 5000 + b"]" * 5000 + b"}"):
        answer = bot.http.post("/api/news", content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 422, answer.text
        assert "nested too deeply" in answer.json()["detail"]
    assert bot.http.get("/healthz").status_code == 200
    later = bot.log()[mark:]
    assert "RecursionError" not in later and "Traceback" not in later


def test_sizing_keys_in_the_body_are_422_naming_them(secured: Any) -> None:
    bot = secured.bot
    news_id = f"sizing-{uuid.uuid4().hex[:8]}"
    body = {"id": news_id, "title": "SOL up", "coin": "SOL", "side": "long", "size": "5", "notional_usd": 1e6}
    answer = bot.http.post("/api/news", json=body)
    assert answer.status_code == 422, answer.text
    assert "notional_usd" in answer.json()["detail"] and "size" in answer.json()["detail"]
    assert not journaled(bot, news_id)


def test_a_client_leaving_mid_body_logs_no_error(secured: Any) -> None:
    bot = secured.bot
    mark = len(bot.log())
    news_id = f"left-{uuid.uuid4().hex[:8]}"
    body = small_news(news_id)
    head = (
        f"POST /api/news HTTP/1.1\r\nHost: 127.0.0.1:{_port(bot)}\r\nAuthorization: Bearer {bot.token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body) + 500}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", _port(bot)), timeout=10) as conn:
        conn.sendall(head + body)  # 500 bytes short; then the client goes away
    deadline = time.monotonic() + 30
    while "web_news_client_left" not in bot.log()[mark:]:
        assert time.monotonic() < deadline, bot.log()[mark:]
        time.sleep(0.05)  # poll interval
    later = bot.log()[mark:]
    assert "Traceback" not in later and "[error" not in later and "Exception in ASGI" not in later
    assert not journaled(bot, news_id)
    assert bot.http.get("/healthz").status_code == 200


def test_favicon_is_served_without_a_token(secured: Any) -> None:
    answer = httpx.get(secured.bot.url + "/favicon.ico", trust_env=False)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/x-icon"
    assert answer.content[:4] == b"\x00\x00\x01\x00"  # an ICO file


def test_the_stream_cookie_expires(secured: Any) -> None:
    bot = secured.bot
    login = httpx.post(bot.url + "/api/login", json={"token": bot.token}, trust_env=False)
    assert login.status_code == 204
    set_cookie = login.headers["set-cookie"].lower()
    assert "max-age=43200" in set_cookie and "httponly" in set_cookie and "samesite=strict" in set_cookie
    fresh = login.cookies[STREAM_COOKIE]

    def stream_status(cookie: str) -> int:
        with (
            httpx.Client(base_url=bot.url, cookies={STREAM_COOKIE: cookie}, trust_env=False) as client,
            client.stream("GET", "/api/stream", timeout=10) as response,
        ):
            return response.status_code

    assert stream_status(fresh) == 200
    expired = stream_cookie_value(bot.token, int(time.time()) - 1)  # issued by this token, but old
    assert stream_status(expired) == 401
    expires, _, mac = fresh.partition(".")
    stretched = f"{int(expires) + 10**6}.{mac}"  # a later expiry under the old MAC
    assert stream_status(stretched) == 401


def test_login_is_throttled_after_ten_wrong_tokens(secured: Any) -> None:
    """Last in the module: it locks logins on this bot for a minute."""
    bot = secured.bot
    with httpx.Client(base_url=bot.url, trust_env=False, timeout=10) as client:
        statuses = [
            client.post("/api/login", json={"token": f"wrong-{i:02d}-token-xx"}).status_code
            for i in range(10)
        ]
        assert statuses == [401] * 10
        locked = client.post("/api/login", json={"token": "wrong-11-token-xx"})
        assert locked.status_code == 429
        assert 1 <= int(locked.headers["retry-after"]) <= 60
        assert "too many failed logins" in locked.json()["detail"]
        # Even the right token waits: a guesser cannot tell a hit from the lock.
        assert client.post("/api/login", json={"token": bot.token}).status_code == 429
        # The bearer API itself is unaffected (the token is the guard there; it is ≥ 16 chars).
        assert (
            client.get("/api/positions", headers={"Authorization": f"Bearer {bot.token}"}).status_code == 200
        )
