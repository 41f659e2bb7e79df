"""Signing is proven, not assumed: shared vectors, and the official SDK as the oracle on random actions."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from eth_account import Account
from hyperliquid.utils import signing as sdk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newstrader.venues.aster.signing import MicrosecondNonces, V3Signer, encode_params, hmac_signature
from newstrader.venues.hyperliquid.signing import (
    L1Signer,
    NonceSource,
    action_hash,
    cancel_action,
    cancel_by_cloid_action,
    cloid_for,
    decimal_to_wire,
    limit_order_wire,
    order_action,
    trigger_order_wire,
    update_leverage_action,
)

VECTORS = Path("/work/shared/docs/vectors")
if not VECTORS.exists():  # the vectors also travel with the repo's docs when present
    VECTORS = Path(__file__).resolve().parents[2] / "docs" / "vectors"
HL = json.loads((VECTORS / "hl_vectors.json").read_text())
ASTER = json.loads((VECTORS / "aster_vectors.json").read_text())


@pytest.mark.parametrize("vector", HL["vectors"], ids=lambda v: v["name"])
def test_hl_vectors_bit_identical(vector: dict) -> None:
    signer = L1Signer(vector["private_key"])
    assert signer.address.lower() == vector["address"].lower()
    got = signer.sign_l1_action(
        vector["action"],
        vector["nonce"],
        is_mainnet=vector["is_mainnet"],
        vault_address=vector["vault_address"],
        expires_after=vector["expires_after"],
    )
    assert got == vector["signature"]


def test_hl_connection_id_vector() -> None:
    for vector in HL["connection_id_vectors"]:
        got = action_hash(vector["action"], vector["vault_address"], vector["nonce"], vector["expires_after"])
        assert "0x" + got.hex() == vector["expected_connection_id"]


# --- property tests against the official SDK ---------------------------------------------------

KEYS = st.binary(min_size=32, max_size=32).filter(lambda b: 0 < int.from_bytes(b, "big") < 2**256 - 2**129)
ADDRESSES = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
# Wire numbers: positive with at most 8 decimals, as the SDK's float_to_wire accepts them.
WIRE_DECIMALS = st.builds(
    lambda units, places: Decimal(units).scaleb(-places),
    st.integers(min_value=1, max_value=10**12),
    st.integers(min_value=0, max_value=8),
).filter(lambda d: abs(float(d) - float(format(float(d), ".8f"))) < 1e-12 and d < 10**7)
CLOIDS = st.one_of(st.none(), st.binary(min_size=16, max_size=16).map(lambda b: "0x" + b.hex()))
TIFS = st.sampled_from(["Gtc", "Ioc", "Alo"])


@st.composite
def order_wires(draw: st.DrawFn) -> dict:
    asset = draw(st.integers(min_value=0, max_value=200_000))
    is_buy, reduce_only = draw(st.booleans()), draw(st.booleans())
    price, size, cloid = draw(WIRE_DECIMALS), draw(WIRE_DECIMALS), draw(CLOIDS)
    if draw(st.booleans()):
        ours = limit_order_wire(asset, is_buy, price, size, reduce_only, draw(TIFS), cloid)
        order_type: dict = {"limit": {"tif": ours["t"]["limit"]["tif"]}}
    else:
        trigger, is_market, tpsl = (
            draw(WIRE_DECIMALS),
            draw(st.booleans()),
            draw(st.sampled_from(["tp", "sl"])),
        )
        ours = trigger_order_wire(asset, is_buy, price, size, reduce_only, trigger, is_market, tpsl, cloid)
        order_type = {"trigger": {"triggerPx": float(trigger), "isMarket": is_market, "tpsl": tpsl}}
    request = {
        "coin": "X",
        "is_buy": is_buy,
        "sz": float(size),
        "limit_px": float(price),
        "order_type": order_type,
        "reduce_only": reduce_only,
        "cloid": sdk.Cloid(cloid) if cloid else None,
    }
    theirs = sdk.order_request_to_order_wire(request, asset)
    assert msgpack_equal(ours, theirs)
    return ours


def msgpack_equal(a: dict, b: dict) -> bool:
    import msgpack

    return msgpack.packb(a) == msgpack.packb(b)


@st.composite
def actions(draw: st.DrawFn) -> dict:
    kind = draw(st.sampled_from(["order", "cancel", "cancelByCloid", "updateLeverage"]))
    if kind == "order":
        orders = draw(st.lists(order_wires(), min_size=1, max_size=4))
        grouping = draw(st.sampled_from(["na", "normalTpsl", "positionTpsl"]))
        ours = order_action(orders, grouping)
        assert msgpack_equal(ours, sdk.order_wires_to_order_action(orders, None, grouping))
        return ours
    if kind == "cancel":
        pairs = draw(
            st.lists(st.tuples(st.integers(0, 300), st.integers(0, 2**63 - 1)), min_size=1, max_size=5)
        )
        return cancel_action(pairs)
    if kind == "cancelByCloid":
        pairs = draw(
            st.lists(
                st.tuples(st.integers(0, 300), CLOIDS.filter(lambda c: c is not None)), min_size=1, max_size=5
            )
        )
        return cancel_by_cloid_action(pairs)
    return update_leverage_action(draw(st.integers(0, 300)), draw(st.integers(1, 50)), draw(st.booleans()))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=KEYS,
    action=actions(),
    nonce=st.integers(min_value=0, max_value=2**64 - 1),
    vault=st.one_of(st.none(), ADDRESSES),
    expires_after=st.one_of(st.none(), st.integers(min_value=0, max_value=2**64 - 1)),
    is_mainnet=st.booleans(),
)
def test_hl_signature_identical_to_sdk(key, action, nonce, vault, expires_after, is_mainnet) -> None:
    wallet = Account.from_key(key)
    expected = sdk.sign_l1_action(wallet, action, vault, nonce, expires_after, is_mainnet)
    signer = L1Signer(key)
    assert signer.address == wallet.address
    got = signer.sign_l1_action(
        action, nonce, is_mainnet=is_mainnet, vault_address=vault, expires_after=expires_after
    )
    assert got == expected


@given(WIRE_DECIMALS)
def test_decimal_to_wire_matches_float_to_wire(value: Decimal) -> None:
    assert decimal_to_wire(value) == sdk.float_to_wire(float(value))


def test_decimal_to_wire_refuses_silent_rounding() -> None:
    assert decimal_to_wire(Decimal("1670.10")) == "1670.1"
    assert decimal_to_wire(Decimal("65000.0")) == "65000"
    assert decimal_to_wire(Decimal("1E-8")) == "0.00000001"
    with pytest.raises(ValueError, match="8 decimals"):
        decimal_to_wire(Decimal("0.000000001"))


def test_cloid_is_deterministic_16_bytes() -> None:
    cloid = cloid_for("sig-1:hl:open")
    assert cloid == cloid_for("sig-1:hl:open") != cloid_for("sig-1:hl:close")
    assert sdk.Cloid(cloid).to_raw() == cloid and len(cloid) == 34


def test_nonces_strictly_increase_across_threads_and_tasks() -> None:
    frozen = NonceSource(clock_ms=lambda: 1_700_000_000_000)  # a stuck clock is the worst case
    seen: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        got = [frozen.next() for _ in range(500)]
        assert got == sorted(got)
        with lock:
            seen.extend(got)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 4000 and min(seen) == 1_700_000_000_000

    async def tasks() -> list[int]:
        async def one() -> int:
            await asyncio.sleep(0)
            return frozen.next()

        return list(await asyncio.gather(*(one() for _ in range(200))))

    got = asyncio.run(tasks())
    assert len(set(got)) == 200 and min(got) > max(seen)


def test_signer_repr_hides_key() -> None:
    key = "0x" + "11" * 32
    assert "11" * 8 not in repr(L1Signer(key)) and "11" * 8 not in repr(V3Signer(key))


# --- Aster ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", ASTER["v1_hmac"], ids=lambda v: v["name"])
def test_aster_hmac_vectors(vector: dict) -> None:
    if "params" in vector:
        payload = encode_params(vector["params"])
        assert payload == vector["query_string"]
    else:  # mixed query + body: the signed payload is their plain concatenation
        payload = encode_params(vector["params_query"]) + encode_params(vector["params_body"])
        assert payload == vector["signed_payload"]
    assert hmac_signature(vector["secret"], payload) == vector["signature"]


@pytest.mark.parametrize("vector", ASTER["v3_eip712"], ids=lambda v: v["name"])
def test_aster_v3_vectors(vector: dict) -> None:
    signer = V3Signer(vector["private_key"], chain_id=vector["eip712_domain"]["chainId"])
    assert signer.address.lower() == vector["signer"].lower()
    assert signer.sign_message(vector["msg"]).lower() == vector["signature"].lower()
    if f"signer={signer.address}" in vector["msg"]:  # checksummed addresses as we send them: the full request
        nonce = int(vector["nonce"])
        assert signer.signed_params(vector["user"], nonce, vector["params"]).lower() == (
            vector["signed_request"].lower()
        )


def test_aster_v3_testnet_chain_differs_and_recovers() -> None:
    from eth_account.messages import encode_typed_data

    key = "0x" + "22" * 32
    for chain_id in (1666, 714):
        signer = V3Signer(key, chain_id=chain_id)
        sig = signer.sign_message("nonce=1&user=0xabc")
        typed = encode_typed_data(
            full_message={
                "domain": {
                    "name": "AsterSignTransaction",
                    "version": "1",
                    "chainId": chain_id,
                    "verifyingContract": "0x0000000000000000000000000000000000000000",
                },
                "types": {
                    "EIP712Domain": [
                        {"name": "name", "type": "string"},
                        {"name": "version", "type": "string"},
                        {"name": "chainId", "type": "uint256"},
                        {"name": "verifyingContract", "type": "address"},
                    ],
                    "Message": [{"name": "msg", "type": "string"}],
                },
                "primaryType": "Message",
                "message": {"msg": "nonce=1&user=0xabc"},
            }
        )
        assert Account.recover_message(typed, signature=bytes.fromhex(sig[2:])) == signer.address
        assert sig == "0x" + Account.sign_message(typed, key).signature.hex().removeprefix("0x")


def test_aster_microsecond_nonces_increase() -> None:
    nonces = MicrosecondNonces()
    got = [nonces.next() for _ in range(1000)]
    assert all(b > a for a, b in itertools.pairwise(got))
    nonces.offset_us = -5_000_000
    assert nonces.next() > got[-1]  # a clock correction never moves nonces backwards


def test_aster_nonces_anchored_at_an_intent_are_on_the_server_clock_and_never_reused() -> None:
    """An order's v3 nonce opens its window at its intent time: earlier than `next()`'s, and
    never one handed out before (the venue refuses a reused nonce)."""
    nonces = MicrosecondNonces()
    nonces.offset_us = 2_000
    intent_us = time.time_ns() // 1000 - 3_000_000
    first, second = nonces.at(intent_us), nonces.at(intent_us)
    assert first == intent_us + 2_000 and second == first + 1
    now = nonces.next()
    assert now > second and nonces.at(now - nonces.offset_us) == now + 1


def test_signing_is_thread_safe() -> None:
    """The reusable keccak state is per thread: signatures made in parallel threads stay exact."""
    vector = HL["vectors"][0]
    signer = L1Signer(vector["private_key"])
    expected = {n: signer.sign_l1_action(vector["action"], n, is_mainnet=True) for n in range(1, 201)}
    mismatches: list[int] = []

    def work() -> None:
        for n in range(1, 201):  # one signer shared by every thread, as a venue's would be
            if signer.sign_l1_action(vector["action"], n, is_mainnet=True) != expected[n]:
                mismatches.append(n)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert mismatches == []
