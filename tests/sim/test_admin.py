"""The simulator's admin API against a real server: accounts, prices, outside trades, state, reset."""

from __future__ import annotations

import pytest
from tests.harness.servers import SimAdminError


def test_account_price_position_and_state(sim, funded_account):
    addr = funded_account.address.lower()
    state = sim.admin.state()
    assert state["venues"]["hyperliquid"]["accounts"][addr]["balance"] == "100000"
    assert state["venues"]["aster"]["accounts"][addr]["balance"] == "100000"

    marks = sim.admin.set_price("ETH", "3000")["marks"]
    assert marks == {"hyperliquid": "3000", "aster": "3000"}

    out = sim.admin.set_position("hyperliquid", addr, "ETH", "-1.5")
    assert out["size"] == "-1.5"
    assert out["fill"]["outside"] is True and out["fill"]["px"] == "3000"
    assert sim.admin.position("hyperliquid", addr, "ETH") == "-1.5"
    assert sim.admin.position("aster", addr, "ETH") == "0"  # venues are separate worlds


def test_liquidation_removes_position_and_records_fill(sim, funded_account):
    addr = funded_account.address.lower()
    sim.admin.set_position("hyperliquid", addr, "BTC", "0.2")
    out = sim.admin.liquidate("hyperliquid", addr, "BTC")
    assert out["fill"]["liquidation"] is True
    assert out["fill"]["side"] == "sell" and out["fill"]["size"] == "0.2"
    assert sim.admin.position("hyperliquid", addr, "BTC") == "0"
    # The fill is on the exchange's record, as a client reading fills would see it.
    fills = sim.http.post(sim.hl_url + "/info", json={"type": "userFills", "user": addr}).json()
    assert any(f.get("liquidation") and f["coin"] == "BTC" for f in fills)


def test_fills_lists_an_accounts_executions_with_their_origin(sim, funded_account):
    addr = funded_account.address.lower()
    sim.admin.set_price("SOL", "100")
    sim.admin.set_position("aster", addr, "SOL", "3")
    sim.admin.liquidate("aster", addr, "SOL")
    fills = sim.admin.fills("aster", addr)
    assert [(f["side"], f["size"], f["outside"], f["liquidation"]) for f in fills] == [
        ("buy", "3", True, False),
        ("sell", "3", False, True),
    ]
    assert all(f["client_id"] is None for f in fills)  # not sent through the API
    assert sim.admin.fills("hyperliquid", addr) == []
    with pytest.raises(SimAdminError, match="venue must be one of"):
        sim.admin.fills("binance", addr)


def test_mark_crash_liquidates_by_itself(sim, make_account):
    account = make_account(usd=1_000)
    addr = account.address.lower()
    sim.admin.set_price("SOL", "100", venue="hyperliquid")
    sim.admin.set_position("hyperliquid", addr, "SOL", "150")  # $15k on $1k: 15x
    sim.admin.set_price("SOL", "94", venue="hyperliquid")  # lose $900 of $1k: under maintenance
    assert sim.admin.position("hyperliquid", addr, "SOL") == "0"


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/accounts", {"venue": "nowhere", "address": "0x" + "11" * 20, "usd": 1}, "venue must be one of"),
        ("/accounts", {"venue": "all", "address": "0x12", "usd": 1}, "address must be"),
        ("/accounts", {"venue": "all", "address": "0x" + "11" * 20, "usd": "lots"}, "usd is not a number"),
        ("/price", {"coin": "ETH", "price": -1}, "price must be positive"),
        ("/price", {"coin": "NOPE", "price": 1}, "unknown coin"),
        (
            "/position",
            {"venue": "aster", "account": "0x" + "22" * 20, "coin": "BTC", "size": "1"},
            "unknown account",
        ),
        ("/faults", {"venue": "aster", "kind": "meteor"}, "kind must be one of"),
        ("/settings", {"spreadd": 1}, "unknown setting 'spreadd'"),
    ],
)
def test_bad_input_is_refused_with_a_reason(sim, path, body, message):
    before = sim.admin.state()["venues"]
    response = sim.http.post(sim.url + "/admin" + path, json=body)
    assert 400 <= response.status_code < 500
    assert message in response.json()["error"]
    after = sim.admin.state()["venues"]
    for venue in ("hyperliquid", "aster"):
        assert after[venue]["accounts"] == before[venue]["accounts"]
        assert after[venue]["marks"] == before[venue]["marks"]


def test_reset_forgets_everything(sim, funded_account):
    sim.admin.set_price("BTC", "12345")
    sim.admin.add_fault("hyperliquid", "http_5xx", count=3)
    sim.admin.reset()
    state = sim.admin.state()
    assert state["venues"]["hyperliquid"]["accounts"] == {}
    assert state["venues"]["hyperliquid"]["marks"]["BTC"] == "95000"
    assert state["faults"] == []


def test_tick_walks_marks_deterministically(sim):
    first = sim.admin.tick(steps=5)
    sim.admin.reset()
    second = sim.admin.tick(steps=5)
    assert first == second
    assert first["hyperliquid"]["BTC"] != "95000"


def test_agents_and_settings(sim, funded_account):
    agent = "0x" + "ab" * 20
    sim.admin.add_agent(funded_account.address, agent, venue="hyperliquid")
    accounts = sim.admin.state()["venues"]["hyperliquid"]["accounts"]
    assert accounts[funded_account.address.lower()]["signers"] == [agent]
    settings = sim.admin.settings(partial_fill_probability=0.5, venue="aster")
    assert settings["venues"]["aster"]["partial_fill_probability"] == 0.5
    assert settings["venues"]["hyperliquid"]["partial_fill_probability"] == 0.0


def test_state_never_shows_credentials(sim):
    address = "0x" + "c3" * 20
    sim.admin.create_account(
        address, usd=10, venue="aster", api_key="my-api-key-123", secret="hmac-secret-456"
    )
    text = sim.http.get(sim.url + "/admin/state").text
    assert "hmac-secret-456" not in text and "my-api-key-123" not in text
    assert sim.admin.state()["venues"]["aster"]["accounts"][address]["api_keys"] == ["my-a…"]


def test_after_fill_arms_checks_its_input_and_disarms(sim, funded_account):
    addr = funded_account.address.lower()
    assert sim.admin.after_next_fill("aster", addr, "ETH", "0")["size"] == "0"
    assert sim.admin.after_next_fill("hyperliquid", addr, "BTC")["size"] is None  # a liquidation
    with pytest.raises(SimAdminError, match="multiple of"):
        sim.admin.after_next_fill("hyperliquid", addr, "ETH", "0.00001")
    with pytest.raises(SimAdminError, match="unknown account"):
        sim.admin.after_next_fill("aster", "0x" + "c3" * 20, "ETH", "0")
    # An outside trade is no API order: nothing fires.
    sim.admin.set_position("aster", addr, "ETH", "1")
    answer = sim.admin.disarm_after_fill()
    assert answer["fired"] == []
    assert sorted((u["venue"], u["coin"]) for u in answer["unfired"]) == [
        ("aster", "ETH"),
        ("hyperliquid", "BTC"),
    ]
    assert sim.admin.disarm_after_fill() == {"fired": [], "unfired": []}
