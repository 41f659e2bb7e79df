"""The shared Aster signing vectors verify in the simulator's own auth code; tampered copies fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from newstrader.sim.aster_auth import (
    MAINNET_CHAIN_ID,
    TESTNET_CHAIN_ID,
    AsterAuthError,
    NonceBook,
    check_timestamp,
    eip712_digest,
    hmac_payload,
    recover_address,
    v3_payload,
    v3_signers,
    verify_hmac,
)

VECTORS_PATH = Path("/work/shared/docs/vectors/aster_vectors.json")
if not VECTORS_PATH.exists():  # a checkout without the shared docs uses the copy kept beside this test
    VECTORS_PATH = Path(__file__).resolve().parent / "data" / "aster_vectors.json"
VECTORS = json.loads(VECTORS_PATH.read_text())
V1 = VECTORS["v1_hmac"]
V3 = VECTORS["v3_eip712"]


def _v1_transport(vector: dict) -> tuple[str, str]:
    """(raw query, raw body) as the vector would arrive on the wire."""
    if "body" in vector:
        return vector["query_string"], vector["body"] + "&signature=" + vector["signature"]
    return vector["signed_request"], ""


def _flip_char(text: str, index: int) -> str:
    ch = text[index]
    return text[:index] + ("1" if ch != "1" else "2") + text[index + 1 :]


@pytest.mark.parametrize("vector", V1, ids=[v["name"] for v in V1])
def test_v1_vector_verifies(vector: dict) -> None:
    query, body = _v1_transport(vector)
    payload, signature = hmac_payload(query, body)
    assert signature == vector["signature"]
    verify_hmac(vector["secret"], payload, signature)
    verify_hmac(vector["secret"], payload, signature.upper())  # hex case is not significant


@pytest.mark.parametrize("vector", V1, ids=[v["name"] for v in V1])
def test_v1_vector_tampered_fails(vector: dict) -> None:
    query, body = _v1_transport(vector)
    payload, signature = hmac_payload(query, body)
    assert signature is not None
    # a changed param value, a changed signature, a wrong secret: each must be refused with -1022
    tampered_payload = payload.replace("timestamp=1", "timestamp=2", 1)
    assert tampered_payload != payload
    for secret, body_text, sig in (
        (vector["secret"], tampered_payload, signature),
        (vector["secret"], payload, _flip_char(signature, 5)),
        (vector["secret"][:-1] + "0", payload, signature),
    ):
        with pytest.raises(AsterAuthError) as err:
            verify_hmac(secret, body_text, sig)
        assert err.value.code == -1022


def test_v1_mixed_query_and_body_concatenates_without_ampersand() -> None:
    vector = next(v for v in V1 if "body" in v)
    payload, _ = hmac_payload(vector["query_string"], vector["body"] + "&signature=" + vector["signature"])
    assert payload == vector["signed_payload"]


@pytest.mark.parametrize("vector", V3, ids=[v["name"] for v in V3])
def test_v3_vector_verifies(vector: dict) -> None:
    raw = vector["signed_request"]
    query, body = (raw, "") if vector["method"] == "GET" else ("", raw)
    msg, signature = v3_payload(query, body)
    assert msg == vector["msg"]
    assert signature is not None
    recovered = recover_address(eip712_digest(msg, vector["eip712_domain"]["chainId"]), signature)
    assert recovered == vector["signer"].lower()
    # the hand-built digest equals eth_account's EIP-712 encoding of the same message
    typed = encode_typed_data(
        full_message={
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
            "domain": vector["eip712_domain"],
            "message": {"msg": msg},
        }
    )
    assert Account.recover_message(typed, signature=signature).lower() == recovered
    # the v byte may come in either case (ccxt writes 1B/1C)
    assert recover_address(eip712_digest(msg, 1666), signature.lower()) == recovered


@pytest.mark.parametrize("vector", V3, ids=[v["name"] for v in V3])
def test_v3_vector_tampered_fails(vector: dict) -> None:
    signer = vector["signer"].lower()
    msg, signature = vector["msg"], vector["signature"]
    assert signature is not None
    tampered_msg = msg.replace("nonce=1", "nonce=2", 1)
    tampered_sig = _flip_char(signature, 10)
    for text, sig, chain in (
        (tampered_msg, signature, MAINNET_CHAIN_ID),
        (msg, tampered_sig, MAINNET_CHAIN_ID),
        (msg, signature, TESTNET_CHAIN_ID),  # signed for mainnet, checked as testnet
    ):
        try:
            recovered = recover_address(eip712_digest(text, chain), sig)
        except AsterAuthError as err:
            assert err.code == -1022
        else:
            assert recovered != signer


def test_v3_accepts_either_configured_chain() -> None:
    vector = V3[0]
    signers = v3_signers(vector["msg"], vector["signature"], (MAINNET_CHAIN_ID, TESTNET_CHAIN_ID))
    assert vector["signer"].lower() in signers
    assert vector["signer"].lower() not in v3_signers(vector["msg"], vector["signature"], (TESTNET_CHAIN_ID,))


def test_nonce_book_rules() -> None:
    book = NonceBook()
    now = 1_750_000_000_000_000
    book.spend("0xAbc", str(now), now)
    with pytest.raises(AsterAuthError) as reused:
        book.spend("0xabc", str(now), now)
    # a reused nonce is what the docs' noop demo answers with -4225 "Nonce Expired"
    assert (reused.value.code, reused.value.msg) == (-4225, "Nonce Expired")
    with pytest.raises(AsterAuthError) as stale:
        book.spend("0xabc", str(now - 10_000_001), now)
    assert stale.value.code == -1021
    book.spend("0xother", str(now), now)  # nonces are per user
    for i in range(1, 101):
        book.spend("0xabc", str(now + i), now)
    # the window now holds now+1..now+100; anything below its minimum is expired
    with pytest.raises(AsterAuthError) as expired:
        book.spend("0xabc", str(now - 5), now)
    assert expired.value.code == -4225
    book.spend("0xabc", str(now + 500), now)
    # not increasing: an older unused nonce above the kept window's minimum is accepted
    book.spend("0xabc", str(now + 250), now)


def test_timestamp_rules() -> None:
    server = 1_750_000_000_000
    check_timestamp({"timestamp": str(server - 4999)}, server)
    check_timestamp({"timestamp": str(server + 999)}, server)
    check_timestamp({"timestamp": str(server - 59_000), "recvWindow": "60000"}, server)
    for params in (
        {"timestamp": str(server - 5001)},
        {"timestamp": str(server + 1000)},
        {"timestamp": str(server - 2000), "recvWindow": "1000"},
    ):
        with pytest.raises(AsterAuthError) as err:
            check_timestamp(params, server)
        assert err.value.code == -1021
    with pytest.raises(AsterAuthError) as missing:
        check_timestamp({}, server)
    assert missing.value.code == -1102
