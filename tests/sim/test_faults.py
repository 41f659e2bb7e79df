"""Each fault kind, injected through /admin/faults, seen by real clients of the running simulator."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
import requests
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.error import ClientError, ServerError


def _mids(sim, client=None):
    return (client or sim.http).post(sim.hl_url + "/info", json={"type": "allMids"})


def test_latency_ms_delays_then_answers(sim):
    sim.admin.add_fault("hyperliquid", "latency_ms", count=1, ms=400, endpoint="info:allMids")
    started = time.monotonic()
    response = _mids(sim)
    assert response.status_code == 200 and "BTC" in response.json()
    assert time.monotonic() - started >= 0.4
    assert _mids(sim).status_code == 200
    assert sim.admin.stats()["faults_fired"] == {"latency_ms": 1}  # count spent: the second was not held


def test_http_429_with_retry_after_and_sdk_error(sim):
    sim.admin.add_fault("hyperliquid", "http_429", count=1, retry_after_s=3)
    response = _mids(sim)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.text == "null"  # not a JSON object: the SDK would KeyError on one
    sim.admin.add_fault("hyperliquid", "http_429", count=1)
    with pytest.raises(ClientError) as caught:
        Info(sim.hl_url, skip_ws=True)
    assert caught.value.status_code == 429
    assert _mids(sim).status_code == 200


def test_http_429_on_aster_is_binance_style(sim):
    sim.admin.add_fault("aster", "http_429", count=1)
    assert _mids(sim).status_code == 200  # the Hyperliquid side is untouched
    response = sim.http.get(sim.aster_url + "/fapi/v1/time")
    assert response.status_code == 429
    assert response.json()["code"] == -1003


def test_http_5xx_refuses_without_executing(sim, funded_account):
    sim.admin.add_fault("hyperliquid", "http_5xx", count=1, status=503, endpoint="exchange:order")
    exchange = Exchange(funded_account.wallet, sim.hl_url)
    with pytest.raises(ServerError) as caught:
        exchange.market_open("ETH", True, 0.5)
    assert caught.value.status_code == 503
    assert sim.admin.position("hyperliquid", funded_account.address, "ETH") == "0"
    exchange.market_open("ETH", True, 0.5)  # the next one goes through
    assert sim.admin.position("hyperliquid", funded_account.address, "ETH") == "0.5"


def test_timeout_holds_longer_than_the_client_waits(sim, funded_account):
    sim.admin.add_fault("hyperliquid", "timeout", count=1, ms=6000, endpoint="exchange:order")
    exchange = Exchange(funded_account.wallet, sim.hl_url, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        exchange.market_open("ETH", True, 0.5)
    assert time.monotonic() - started < 5  # the client gave up long before the 6 s hold ended
    assert sim.admin.position("hyperliquid", funded_account.address, "ETH") == "0"
    # A patient client sees the 504 the server sends at the end of the hold.
    sim.admin.add_fault("hyperliquid", "timeout", count=1, ms=300)
    response = _mids(sim)
    assert response.status_code == 504


def test_drop_response_after_execute_closes_the_connection(sim, funded_account):
    sim.admin.add_fault("hyperliquid", "drop_response_after_execute", count=1, endpoint="exchange:order")
    exchange = Exchange(funded_account.wallet, sim.hl_url)
    with pytest.raises(requests.exceptions.RequestException):
        exchange.market_open("ETH", True, 0.5)
    # The client could not know, but the order was executed.
    assert sim.admin.position("hyperliquid", funded_account.address, "ETH") == "0.5"
    mids_before = sim.admin.stats()["requests"]["hyperliquid"]["info:allMids"]  # market_open read one
    with httpx.Client() as client:
        sim.admin.add_fault("hyperliquid", "drop_response_after_execute", count=1)
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            _mids(sim, client)
    # On the wire: the connection closes and not one byte comes back.
    sim.admin.add_fault("hyperliquid", "drop_response_after_execute", count=1)
    body = b'{"type":"allMids"}'
    request = (
        b"POST /hyperliquid/info HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as raw:
        raw.sendall(request)
        try:
            received = raw.recv(65536)
        except ConnectionResetError:
            received = b""
    assert received == b""
    assert (
        sim.admin.stats()["requests"]["hyperliquid"]["info:allMids"] == mids_before + 2
    )  # both were handled


def test_drop_response_after_execute_as_502(sim, funded_account):
    sim.admin.add_fault(
        "hyperliquid", "drop_response_after_execute", count=1, endpoint="exchange:order", mode="502"
    )
    exchange = Exchange(funded_account.wallet, sim.hl_url)
    with pytest.raises(ServerError) as caught:
        exchange.market_open("SOL", False, 1)
    assert caught.value.status_code == 502 and caught.value.message == ""
    assert sim.admin.position("hyperliquid", funded_account.address, "SOL") == "-1"


def test_probability_is_seeded_and_endpoint_filters(sim):
    def run():
        sim.admin.reset()
        sim.admin.add_fault("all", "http_5xx", probability=0.5, endpoint="info:allMids")
        codes = [_mids(sim).status_code for _ in range(30)]
        other = sim.http.post(sim.hl_url + "/info", json={"type": "meta"})
        assert other.status_code == 200  # the endpoint filter spares other request types
        return codes

    first = run()
    assert 5 <= first.count(502) <= 25 and first.count(200) >= 5
    assert run() == first  # same seed, same pattern


def test_faults_are_listed_counted_and_cleared(sim):
    sim.admin.add_fault("hyperliquid", "http_5xx", count=2)
    assert _mids(sim).status_code == 502
    faults = sim.admin.state()["faults"]
    assert faults[0]["hits"] == 1 and faults[0]["count"] == 1
    assert sim.admin.stats()["faults_fired"] == {"http_5xx": 1}
    assert sim.admin.clear_faults() == {"removed": 1}
    assert _mids(sim).status_code == 200


def test_stats_count_requests_per_venue_and_type(sim, funded_account):
    Info(sim.hl_url, skip_ws=True).user_state(funded_account.address)
    sim.http.get(sim.aster_url + "/fapi/v1/time")
    requests_seen = sim.admin.stats()["requests"]
    assert requests_seen["hyperliquid"] == {"info:clearinghouseState": 1, "info:meta": 1, "info:spotMeta": 1}
    assert requests_seen["aster"] == {"GET /fapi/v1/time": 1}


def test_bad_fault_specs_are_refused(sim):
    for body, message in (
        ({"venue": "hyperliquid", "kind": "latency_ms"}, "latency_ms needs ms"),
        ({"venue": "hyperliquid", "kind": "http_429", "probability": 2}, "probability"),
        ({"venue": "moon", "kind": "http_429"}, "venue must be one of"),
        ({"venue": "aster", "kind": "http_5xx", "status": 404}, "status must be a 5xx"),
    ):
        response = sim.http.post(sim.url + "/admin/faults", json=body)
        assert response.status_code == 400 and message in response.json()["error"]
    assert sim.admin.state()["faults"] == []


def test_stacked_faults_spoil_one_request_each(sim):
    sim.admin.add_fault("hyperliquid", "http_429", count=1)
    sim.admin.add_fault("hyperliquid", "http_5xx", count=1, status=503)
    assert [_mids(sim).status_code for _ in range(3)] == [429, 503, 200]
