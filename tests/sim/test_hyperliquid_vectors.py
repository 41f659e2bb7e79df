"""Every Hyperliquid signing vector verifies in the simulator's own code; a tampered copy fails."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from newstrader.sim.hyperliquid_auth import (
    SignatureError,
    action_hash,
    l1_digest,
    parse_signature,
    recover_address,
    recover_l1_signer,
    user_signed_digest,
)

VECTORS = json.loads((Path(__file__).parent / "data" / "hl_vectors.json").read_text())
L1 = VECTORS["vectors"]
USER_SIGNED = VECTORS["user_signed_vectors"]


def _source(vector):
    return "a" if vector["is_mainnet"] else "b"


def _recover_l1(v):
    return recover_l1_signer(
        v["action"], v["signature"], v["vault_address"], v["nonce"], v["expires_after"], _source(v)
    )


def _recover_user(v):
    fields = [(t["name"], t["type"]) for t in v["types"]]
    digest = user_signed_digest(v["primary_type"], fields, v["message_as_signed"], v["domain"]["chainId"])
    return recover_address(digest, *parse_signature(v["signature"]))


def test_vector_file_is_not_empty():
    assert len(L1) >= 30 and len(USER_SIGNED) >= 2


@pytest.mark.parametrize("vector", L1, ids=[v["name"] for v in L1])
def test_l1_vector_recovers_the_signer(vector):
    digest_cid = action_hash(
        vector["action"], vector["vault_address"], vector["nonce"], vector["expires_after"]
    )
    assert "0x" + digest_cid.hex() == vector["connection_id"]
    if "eip712_digest" in vector:
        assert "0x" + l1_digest(digest_cid, _source(vector)).hex() == vector["eip712_digest"]
    assert _recover_l1(vector) == vector["address"].lower()


def _tampered_l1(vector):
    """Copies of the vector with one signed input changed each."""
    nonce = copy.deepcopy(vector)
    nonce["nonce"] += 1
    action = copy.deepcopy(vector)
    action["action"]["type"] = action["action"]["type"] + "x"
    network = copy.deepcopy(vector)
    network["is_mainnet"] = not network["is_mainnet"]
    vault = copy.deepcopy(vector)
    vault["vault_address"] = None if vector["vault_address"] else "0x" + "11" * 20
    sig = copy.deepcopy(vector)
    sig["signature"]["s"] = hex(int(sig["signature"]["s"], 16) ^ 1)
    return {"nonce": nonce, "action": action, "network": network, "vault": vault, "signature": sig}


@pytest.mark.parametrize("vector", L1, ids=[v["name"] for v in L1])
def test_tampered_l1_vector_does_not_recover_the_signer(vector):
    for what, tampered in _tampered_l1(vector).items():
        try:
            recovered = _recover_l1(tampered)
        except SignatureError:
            continue
        assert recovered != vector["address"].lower(), f"tampered {what} still recovers the signer"


def test_connection_id_vector():
    for v in VECTORS["connection_id_vectors"]:
        got = action_hash(v["action"], v["vault_address"], v["nonce"], v["expires_after"])
        assert "0x" + got.hex() == v["expected_connection_id"]
        assert bytes.fromhex(v["msgpack_hex"])  # the vector carries its msgpack bytes too


@pytest.mark.parametrize("vector", USER_SIGNED, ids=[v["name"] for v in USER_SIGNED])
def test_user_signed_vector_recovers_and_tampered_fails(vector):
    assert _recover_user(vector) == vector["address"].lower()
    amount = copy.deepcopy(vector)
    amount["message_as_signed"]["amount"] = "2"
    chain = copy.deepcopy(vector)
    chain["message_as_signed"]["hyperliquidChain"] = "Mainnet"
    for tampered in (amount, chain):
        assert _recover_user(tampered) != vector["address"].lower()
