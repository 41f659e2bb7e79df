"""The simulator's websocket protocols in-process: framing, channels, listenKeys and the ws faults."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from newstrader.sim.app import SimConfig, create_app

USER = "0x" + "ab" * 20
API_KEY = "key-15"


def _client(**config: Any) -> TestClient:
    client = TestClient(create_app(7, SimConfig(**config)))
    body = {"venue": "all", "address": USER, "usd": "100000", "api_key": API_KEY, "secret": "s"}
    assert client.post("/admin/accounts", json=body).status_code == 200
    return client


@pytest.fixture
def client() -> Iterator[TestClient]:
    with _client() as c:
        yield c


def _send(ws: Any, message: dict[str, Any]) -> None:
    ws.send_text(json.dumps(message))


def _recv(ws: Any) -> Any:
    return json.loads(ws.receive_text())


def _subscribe(ws: Any, subscription: dict[str, Any]) -> None:
    _send(ws, {"method": "subscribe", "subscription": subscription})
    assert _recv(ws) == {
        "channel": "subscriptionResponse",
        "data": {"method": "subscribe", "subscription": subscription},
    }


def _admin(client: TestClient, path: str, **body: Any) -> Any:
    response = client.post(f"/admin/{path}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _ping_pong(ws: Any) -> None:
    """A ping answered proves nothing else was queued before it (the socket is in order)."""
    _send(ws, {"method": "ping"})
    assert _recv(ws) == {"channel": "pong"}


# ----- Hyperliquid --------------------------------------------------------------------------


def test_hl_subscribe_ack_duplicate_unsubscribe_and_bad_json(client: TestClient) -> None:
    with client.websocket_connect("/hyperliquid/ws") as ws:
        _ping_pong(ws)
        sub = {"type": "orderUpdates", "user": USER}
        _subscribe(ws, sub)
        _send(ws, {"method": "subscribe", "subscription": sub})
        assert _recv(ws) == {
            "channel": "error",
            "data": f"Already subscribed: {json.dumps(sub, separators=(',', ':'))}",
        }
        _send(ws, {"method": "unsubscribe", "subscription": sub})
        assert _recv(ws)["data"] == {"method": "unsubscribe", "subscription": sub}
        ws.send_text("{not json")
        error = _recv(ws)
        assert error["channel"] == "error" and error["data"].startswith("Error parsing JSON")
        _admin(client, "position", venue="hyperliquid", account=USER, coin="ETH", size="1")
        _ping_pong(ws)  # unsubscribed: the fill is not reported any more


def test_hl_channels_for_an_order_fill_and_liquidation(client: TestClient) -> None:
    with client.websocket_connect("/hyperliquid/ws") as ws:
        _subscribe(ws, {"type": "clearinghouseState", "user": USER})
        assert _recv(ws)["data"]["clearinghouseState"]["assetPositions"] == []
        _subscribe(ws, {"type": "userFills", "user": USER})
        assert _recv(ws)["data"] == {"isSnapshot": True, "user": USER, "fills": []}
        _subscribe(ws, {"type": "orderUpdates", "user": USER})
        _subscribe(ws, {"type": "userEvents", "user": USER})
        _ping_pong(ws)  # neither sends anything on subscribe

        _admin(client, "position", venue="hyperliquid", account=USER, coin="ETH", size="2")
        by_channel = {m["channel"]: m["data"] for m in (_recv(ws) for _ in range(3))}
        (position,) = by_channel["clearinghouseState"]["clearinghouseState"]["assetPositions"]
        assert position["position"]["szi"] == "2"
        assert [f["sz"] for f in by_channel["userFills"]["fills"]] == ["2"]
        assert "isSnapshot" not in by_channel["userFills"]
        assert [f["dir"] for f in by_channel["user"]["fills"]] == ["Open Long"]
        _ping_pong(ws)

        _admin(client, "liquidate", venue="hyperliquid", account=USER, coin="ETH")
        messages = [_recv(ws) for _ in range(4)]
        user_events = [m["data"] for m in messages if m["channel"] == "user"]
        assert any("liquidation" in e and e["liquidation"]["liquidated_user"] == USER for e in user_events)
        (state,) = [m["data"] for m in messages if m["channel"] == "clearinghouseState"]
        assert state["clearinghouseState"]["assetPositions"] == []  # a closed position just vanishes


def test_hl_all_mids_on_every_mark_move(client: TestClient) -> None:
    with client.websocket_connect("/hyperliquid/ws") as ws:
        _subscribe(ws, {"type": "allMids"})
        assert _recv(ws)["data"]["mids"]["ETH"] == "3200"
        _admin(client, "price", venue="hyperliquid", coin="ETH", price="3333")
        assert _recv(ws)["data"]["mids"]["ETH"] == "3333"


def test_hl_post_info_and_action_errors(client: TestClient) -> None:
    with client.websocket_connect("/hyperliquid/ws") as ws:
        _send(ws, {"method": "post", "id": 9, "request": {"type": "info", "payload": {"type": "allMids"}}})
        reply = _recv(ws)
        assert reply["channel"] == "post" and reply["data"]["id"] == 9
        assert reply["data"]["response"]["type"] == "info"
        assert reply["data"]["response"]["payload"]["data"]["ETH"] == "3200"
        bad = {"type": "action", "payload": {"action": {"type": "order"}, "nonce": "x"}}
        _send(ws, {"method": "post", "id": 10, "request": bad})
        reply = _recv(ws)["data"]
        assert reply["id"] == 10 and reply["response"]["type"] == "error"
        assert reply["response"]["payload"].startswith("422")
    stats = client.get("/admin/stats").json()["requests"]["hyperliquid"]
    assert stats["info:allMids"] == 1 and stats["exchange:order"] == 1


def test_hl_idle_timeout_closes_a_silent_socket() -> None:
    with _client(hl_ws_idle_timeout_s=0.3) as client, client.websocket_connect("/hyperliquid/ws") as ws:
        start = time.monotonic()
        with pytest.raises(WebSocketDisconnect):
            ws.receive_text()
        assert time.monotonic() - start >= 0.3


def test_reset_drops_every_socket(client: TestClient) -> None:
    with client.websocket_connect("/hyperliquid/ws") as ws:
        _ping_pong(ws)
        _admin(client, "reset")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 1012


# ----- websocket faults ---------------------------------------------------------------------


def test_ws_drop_message_loses_one_push(client: TestClient) -> None:
    with client.websocket_connect("/hyperliquid/ws") as ws:
        _subscribe(ws, {"type": "allMids"})
        _recv(ws)
        _admin(client, "faults", venue="hyperliquid", kind="ws_drop_message", count=1, endpoint="ws:allMids")
        _admin(client, "price", venue="hyperliquid", coin="ETH", price="3001")
        _admin(client, "price", venue="hyperliquid", coin="ETH", price="3002")
        assert _recv(ws)["data"]["mids"]["ETH"] == "3002"  # 3001 never arrived
    assert client.get("/admin/stats").json()["faults_fired"] == {"ws_drop_message": 1}


def test_ws_stall_holds_everything_then_delivers_in_order(client: TestClient) -> None:
    with client.websocket_connect("/hyperliquid/ws") as ws:
        _subscribe(ws, {"type": "allMids"})
        _recv(ws)
        _admin(
            client, "faults", venue="hyperliquid", kind="ws_stall_ms", ms=400, count=1, endpoint="ws:allMids"
        )
        start = time.monotonic()
        _admin(client, "price", venue="hyperliquid", coin="ETH", price="3001")
        _send(ws, {"method": "ping"})
        assert _recv(ws)["data"]["mids"]["ETH"] == "3001"
        assert _recv(ws) == {"channel": "pong"}  # the pong waited behind the stalled push
        assert time.monotonic() - start >= 0.4


def test_ws_disconnect_closes_instead_of_sending(client: TestClient) -> None:
    with client.websocket_connect("/hyperliquid/ws") as ws:
        _subscribe(ws, {"type": "allMids"})
        _recv(ws)
        _admin(client, "faults", venue="hyperliquid", kind="ws_disconnect", count=1)
        _admin(client, "price", venue="hyperliquid", coin="ETH", price="3001")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 1011


def test_ws_faults_never_touch_http(client: TestClient) -> None:
    _admin(client, "faults", venue="all", kind="ws_disconnect", count=1)
    assert client.post("/hyperliquid/info", json={"type": "allMids"}).status_code == 200
    assert client.get("/admin/faults").json()["faults"][0]["hits"] == 0


def test_ws_stall_needs_ms(client: TestClient) -> None:
    response = client.post("/admin/faults", json={"venue": "all", "kind": "ws_stall_ms", "count": 1})
    assert response.status_code == 400 and "ws_stall_ms needs ms" in response.text


# ----- Aster --------------------------------------------------------------------------------


def _listen_key(client: TestClient, method: str = "POST") -> Any:
    return client.request(method, "/aster/fapi/v1/listenKey", headers={"X-MBX-APIKEY": API_KEY})


def test_aster_listen_key_lifecycle(client: TestClient) -> None:
    first = _listen_key(client)
    assert first.status_code == 200 and len(first.json()["listenKey"]) == 64
    assert _listen_key(client).json() == first.json()  # POST while active returns the same key
    assert _listen_key(client, "PUT").json() == {}
    assert _listen_key(client, "DELETE").json() == {}
    refused = _listen_key(client, "PUT")
    assert refused.status_code == 400 and refused.json() == {
        "code": -1125,
        "msg": "This listenKey does not exist.",
    }
    assert _listen_key(client).json() != first.json()
    no_key = client.post("/aster/fapi/v1/listenKey")
    assert no_key.status_code == 401 and no_key.json()["code"] == -2014
    unsigned_v3 = client.post("/aster/fapi/v3/listenKey")
    assert unsigned_v3.status_code == 400


def test_aster_user_stream_order_fill_and_cancel(client: TestClient) -> None:
    key = _listen_key(client).json()["listenKey"]
    with client.websocket_connect(f"/aster/fstream/ws/{key}") as ws:
        _admin(client, "position", venue="aster", account=USER, coin="ETH", size="0.5")
        update = _recv(ws)
        assert update["e"] == "ACCOUNT_UPDATE" and update["a"]["m"] == "ORDER"
        assert [(p["s"], p["pa"], p["ps"]) for p in update["a"]["P"]] == [("ETHUSDT", "0.5000", "BOTH")]
        trade = _recv(ws)["o"]
        assert (trade["x"], trade["X"], trade["S"], trade["z"]) == ("TRADE", "FILLED", "BUY", "0.5000")

        _admin(client, "liquidate", venue="aster", account=USER, coin="ETH")
        closed = _recv(ws)
        assert closed["a"]["P"][0]["pa"] == "0.0000"  # a closed position appears once with pa 0
        liquidation = _recv(ws)["o"]
        assert liquidation["x"] == "CALCULATED" and liquidation["c"].startswith("autoclose-")


def test_aster_listen_key_expiry_is_pushed_and_stops_events() -> None:
    with _client(aster_listen_key_ttl_ms=300) as client:
        key = _listen_key(client).json()["listenKey"]
        with client.websocket_connect(f"/aster/fstream/ws/{key}") as ws:
            event = _recv(ws)  # the cadence check finds it expired within a second
            assert event["e"] == "listenKeyExpired"
            _admin(client, "position", venue="aster", account=USER, coin="ETH", size="0.5")
            _send(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 1})
            assert _recv(ws) == {"result": [key], "id": 1}  # no ACCOUNT_UPDATE came before it


def test_aster_unknown_listen_key_is_refused(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/aster/fstream/ws/" + "0" * 64):
        pass


def test_aster_mark_price_streams_and_control_frames(client: TestClient) -> None:
    with client.websocket_connect("/aster/fstream/ws") as ws:
        _send(ws, {"method": "SUBSCRIBE", "params": ["ethusdt@markPrice@1s"]})  # no id, as ccxt sends
        assert _recv(ws) == {"result": None, "id": None}
        assert _recv(ws)["p"] == "3200"
        _admin(client, "price", venue="aster", coin="ETH", price="3100")
        event = _recv(ws)
        assert (event["e"], event["s"], event["p"]) == ("markPriceUpdate", "ETHUSDT", "3100")
        _send(ws, {"method": "UNSUBSCRIBE", "params": ["ethusdt@markPrice@1s"], "id": 4})
        assert _recv(ws) == {"result": None, "id": 4}
        _send(ws, {"method": "SUBSCRIBE", "params": [], "id": -1})
        assert _recv(ws)["code"] == 2
    with client.websocket_connect("/aster/fstream/stream?streams=!markPrice@arr") as ws:
        wrapped = _recv(ws)
        assert wrapped["stream"] == "!markPrice@arr" and len(wrapped["data"]) >= 45
