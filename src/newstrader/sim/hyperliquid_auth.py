"""Hyperliquid signature checks as the venue does them, written independently of any client.

Two schemes:

* L1 actions (orders, cancels, leverage, ...): `connectionId = keccak(msgpack(action) || nonce u64be
  || vault flag [|| 0x00 || expiresAfter u64be])`, signed as EIP-712 `Agent(string source,bytes32
  connectionId)` in domain `Exchange / 1 / chainId 1337 / 0x0`; source "a" (mainnet) or "b" (testnet).
* User-signed actions (approveAgent, usdSend, withdraw3, ...): EIP-712 `HyperliquidTransaction:<Name>`
  in domain `HyperliquidSignTransaction / 1 / signatureChainId / 0x0`, no msgpack.

The digest is built by hand and the signer **recovered** with coincurve: a bad signature does not
fail, it recovers some other address, which the caller then fails to find (as the venue does).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

import coincurve
import msgpack
from eth_hash.auto import keccak

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_DOMAIN_TYPE = b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
_AGENT_TYPE = b"Agent(string source,bytes32 connectionId)"
L1_CHAIN_ID = 1337

# Field lists of the user-signed actions the simulator accepts (name, EIP-712 type), in signing order.
USER_SIGNED_TYPES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "approveAgent": (
        "HyperliquidTransaction:ApproveAgent",
        [
            ("hyperliquidChain", "string"),
            ("agentAddress", "address"),
            ("agentName", "string"),
            ("nonce", "uint64"),
        ],
    ),
    "approveBuilderFee": (
        "HyperliquidTransaction:ApproveBuilderFee",
        [
            ("hyperliquidChain", "string"),
            ("maxFeeRate", "string"),
            ("builder", "address"),
            ("nonce", "uint64"),
        ],
    ),
    "usdSend": (
        "HyperliquidTransaction:UsdSend",
        [("hyperliquidChain", "string"), ("destination", "string"), ("amount", "string"), ("time", "uint64")],
    ),
    "withdraw3": (
        "HyperliquidTransaction:Withdraw",
        [("hyperliquidChain", "string"), ("destination", "string"), ("amount", "string"), ("time", "uint64")],
    ),
}


class SignatureError(ValueError):
    """The signature cannot be parsed or recovers no key at all."""


def action_hash(action: Any, vault_address: str | None, nonce: int, expires_after: int | None) -> bytes:
    """The L1 `connectionId`: keccak over msgpack(action), nonce, vault flag and expiry."""
    data = msgpack.packb(action)
    data += nonce.to_bytes(8, "big")
    if vault_address is None:
        data += b"\x00"
    else:
        data += b"\x01" + bytes.fromhex(vault_address.removeprefix("0x"))
    if expires_after is not None:
        data += b"\x00" + expires_after.to_bytes(8, "big")
    return bytes(keccak(data))


def _domain_separator(name: str, chain_id: int) -> bytes:
    return bytes(
        keccak(
            keccak(_DOMAIN_TYPE)
            + keccak(name.encode())
            + keccak(b"1")
            + chain_id.to_bytes(32, "big")
            + bytes(32)  # verifyingContract 0x0, left-padded
        )
    )


_L1_DOMAIN = _domain_separator("Exchange", L1_CHAIN_ID)
_AGENT_TYPEHASH = bytes(keccak(_AGENT_TYPE))


def l1_digest(connection_id: bytes, source: str) -> bytes:
    """EIP-712 digest of the phantom agent {source, connectionId}."""
    struct_hash = keccak(_AGENT_TYPEHASH + keccak(source.encode()) + connection_id)
    return bytes(keccak(b"\x19\x01" + _L1_DOMAIN + struct_hash))


def _encode_field(kind: str, value: Any) -> bytes:
    if kind == "string":
        return bytes(keccak(str(value).encode()))
    if kind == "address":
        return bytes(12) + bytes.fromhex(str(value).lower().removeprefix("0x").rjust(40, "0"))
    if kind.startswith("uint"):
        return int(value).to_bytes(32, "big")
    if kind == "bool":
        return (1 if value else 0).to_bytes(32, "big")
    if kind == "bytes32":
        return bytes.fromhex(str(value).removeprefix("0x")).rjust(32, b"\x00")
    raise SignatureError(f"unsupported EIP-712 type {kind}")


def user_signed_digest(
    primary_type: str, fields: Sequence[tuple[str, str]], message: dict[str, Any], chain_id: int
) -> bytes:
    """EIP-712 digest of a user-signed action (domain HyperliquidSignTransaction)."""
    type_string = f"{primary_type}({','.join(f'{t} {n}' for n, t in fields)})".encode()
    encoded = b"".join(_encode_field(t, message[n]) for n, t in fields)
    struct_hash = keccak(keccak(type_string) + encoded)
    return bytes(
        keccak(b"\x19\x01" + _domain_separator("HyperliquidSignTransaction", chain_id) + struct_hash)
    )


def parse_signature(signature: Any) -> tuple[int, int, int]:
    """(r, s, v) from `{"r": "0x…", "s": "0x…", "v": 27|28}`; r and s are unpadded hex integers."""
    if not isinstance(signature, dict):
        raise SignatureError("signature must be an object with r, s, v")
    try:
        r = int(str(signature["r"]), 16)
        s = int(str(signature["s"]), 16)
        v = int(signature["v"])
    except (KeyError, ValueError, TypeError):
        raise SignatureError("signature must have hex r, s and integer v") from None
    if v in (0, 1):
        v += 27
    if v not in (27, 28) or not (0 < r < SECP256K1_N) or not (0 < s < SECP256K1_N):
        raise SignatureError("signature values out of range")
    return r, s, v


def recover_address(digest: bytes, r: int, s: int, v: int) -> str:
    """The lowercase 0x address whose key made (r, s, v) over `digest`."""
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v - 27])
    try:
        public = coincurve.PublicKey.from_signature_and_message(raw, digest, hasher=None)
    except Exception as exc:  # coincurve raises a bare Exception when no key fits
        raise SignatureError("signature recovers no key") from exc
    return "0x" + bytes(keccak(public.format(compressed=False)[1:]))[-20:].hex()


def recover_l1_signer(
    action: Any,
    signature: Any,
    vault_address: str | None,
    nonce: int,
    expires_after: int | None,
    source: str,
) -> str:
    """Recover who signed an L1 action for the given phantom-agent source ("a" | "b")."""
    r, s, v = parse_signature(signature)
    return recover_address(
        l1_digest(action_hash(action, vault_address, nonce, expires_after), source), r, s, v
    )


def recover_user_signed(action: dict[str, Any], signature: Any) -> str:
    """Recover who signed a user-signed action (its type picks the field list)."""
    kind = action.get("type")
    if kind not in USER_SIGNED_TYPES:
        raise SignatureError(f"not a user-signed action: {kind}")
    primary_type, fields = USER_SIGNED_TYPES[kind]
    message = dict(action)
    if kind == "approveAgent":
        message.setdefault("agentName", "")  # the SDK signs "" then drops the key when unnamed
    try:
        chain_id = int(str(action["signatureChainId"]), 16)
        digest = user_signed_digest(primary_type, fields, message, chain_id)
    except (KeyError, ValueError) as exc:
        raise SignatureError(f"malformed user-signed action: {exc}") from None
    r, s, v = parse_signature(signature)
    return recover_address(digest, r, s, v)


class NonceBook:
    """Per-signer nonce rules: the highest `kept` nonces are remembered; a new one must be unused
    and, once the set is full, larger than the smallest kept."""

    def __init__(self, kept: int = 100) -> None:
        self.kept = kept
        self._heaps: dict[str, list[int]] = {}
        self._sets: dict[str, set[int]] = {}

    def check(self, signer: str, nonce: int) -> str | None:
        """The venue's error text if `nonce` is refused for `signer`, else None (nothing recorded)."""
        used = self._sets.get(signer)
        if used is None:
            return None
        if nonce in used:
            return f"Invalid nonce: duplicate nonce {nonce}"
        heap = self._heaps[signer]
        if len(heap) >= self.kept and nonce < heap[0]:
            return f"Invalid nonce: nonce too low {nonce} < {heap[0]}"
        return None

    def record(self, signer: str, nonce: int) -> None:
        """Remember `nonce` as used by `signer`, dropping the smallest beyond `kept`."""
        heap = self._heaps.setdefault(signer, [])
        used = self._sets.setdefault(signer, set())
        heapq.heappush(heap, nonce)
        used.add(nonce)
        if len(heap) > self.kept:
            used.discard(heapq.heappop(heap))

    def forget(self, signer: str) -> None:
        """Drop a deregistered signer's nonces (the venue prunes them too)."""
        self._heaps.pop(signer, None)
        self._sets.pop(signer, None)

    def clear(self) -> None:
        self._heaps.clear()
        self._sets.clear()
