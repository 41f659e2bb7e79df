"""Hyperliquid L1-action signing: a fast path bit-identical to the official SDK's `sign_l1_action`.

The SDK rebuilds the EIP-712 typed data and its domain on every call (~0.3 ms); here the domain
separator, the Agent type hash and the hashes of the two `source` strings are computed once, so a
signature costs one msgpack, three keccaks and one libsecp256k1 recoverable signature, all through
pycryptodome's and coincurve's public APIs.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import coincurve
import msgpack
from Crypto.Hash import keccak as _keccak_mod

_WIRE_QUANTUM = Decimal("0.00000001")


def keccak256(data: bytes) -> bytes:
    """Ethereum's keccak-256 (not SHA3-256)."""
    digest: bytes = _keccak_mod.new(data=data, digest_bits=256).digest()
    return digest


def _type_hash(signature: str) -> bytes:
    return keccak256(signature.encode())


_EIP712_DOMAIN_TYPE = _type_hash(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)


def eip712_domain_separator(
    name: str, version: str, chain_id: int, verifying_contract: bytes = bytes(20)
) -> bytes:
    """hashStruct(EIP712Domain) for the given domain fields."""
    return keccak256(
        _EIP712_DOMAIN_TYPE
        + keccak256(name.encode())
        + keccak256(version.encode())
        + chain_id.to_bytes(32, "big")
        + verifying_contract.rjust(32, b"\x00")
    )


_EXCHANGE_DOMAIN = eip712_domain_separator("Exchange", "1", 1337)
_AGENT_TYPE = _type_hash("Agent(string source,bytes32 connectionId)")
# The phantom agent's source: "a" on mainnet, "b" everywhere else (testnet and local simulators).
_SOURCE_HASH = {True: keccak256(b"a"), False: keccak256(b"b")}
_DIGEST_PREFIX = {net: b"\x19\x01" + _EXCHANGE_DOMAIN for net in (True, False)}


def decimal_to_wire(value: Decimal) -> str:
    """The SDK's `float_to_wire` on a Decimal: at most 8 decimals, no trailing zeros, no exponent."""
    rounded = value.quantize(_WIRE_QUANTUM)
    if rounded != value:
        raise ValueError(f"{value} has more than 8 decimals; round it to the market's rules first")
    if not rounded:
        return "0"
    return format(rounded.normalize(), "f")


def address_bytes(address: str) -> bytes:
    """20 raw bytes of a hex address (case-insensitive, with or without 0x)."""
    raw = bytes.fromhex(address[2:] if address[:2].lower() == "0x" else address)
    if len(raw) != 20:
        raise ValueError(f"not a 20-byte address: {address!r}")
    return raw


def action_hash(
    action: Mapping[str, Any], vault_address: str | None, nonce: int, expires_after: int | None
) -> bytes:
    """keccak256(msgpack(action) ‖ nonce ‖ vault ‖ [expiresAfter]): the phantom agent's connectionId."""
    data = msgpack.packb(action)
    data += nonce.to_bytes(8, "big")
    data += b"\x00" if vault_address is None else b"\x01" + address_bytes(vault_address)
    if expires_after is not None:
        data += b"\x00" + expires_after.to_bytes(8, "big")
    return keccak256(data)


def l1_digest(connection_id: bytes, is_mainnet: bool) -> bytes:
    """The EIP-712 digest of the phantom agent {source, connectionId}."""
    struct_hash = keccak256(_AGENT_TYPE + _SOURCE_HASH[is_mainnet] + connection_id)
    return keccak256(_DIGEST_PREFIX[is_mainnet] + struct_hash)


class L1Signer:
    """A private key that signs Hyperliquid L1 actions; `address` is the signer (account or agent wallet)."""

    __slots__ = ("_key", "address")

    def __init__(self, private_key: str | bytes) -> None:
        raw = (
            bytes.fromhex(private_key[2:] if private_key[:2] == "0x" else private_key)
            if isinstance(private_key, str)
            else private_key
        )
        if len(raw) != 32:
            raise ValueError("a private key is 32 bytes of hex")
        self._key = coincurve.PrivateKey(raw)
        public = self._key.public_key.format(compressed=False)[1:]
        self.address = to_checksum_address(keccak256(public)[-20:])

    def __repr__(self) -> str:  # never print the key
        return f"L1Signer({self.address})"

    def sign_digest(self, digest: bytes) -> tuple[int, int, int]:
        """(r, s, v) of a 32-byte digest, v = 27/28, low-s (RFC 6979, as eth_account via coincurve)."""
        if len(digest) != 32:
            raise ValueError("a digest is 32 bytes")
        compact = self._key.sign_recoverable(digest, hasher=None)  # r ‖ s ‖ recovery id
        return int.from_bytes(compact[:32], "big"), int.from_bytes(compact[32:64], "big"), compact[64] + 27

    def sign_l1_action(
        self,
        action: Mapping[str, Any],
        nonce: int,
        *,
        is_mainnet: bool,
        vault_address: str | None = None,
        expires_after: int | None = None,
    ) -> dict[str, Any]:
        """The `signature` object of an /exchange envelope, identical to the SDK's `sign_l1_action`."""
        digest = l1_digest(action_hash(action, vault_address, nonce, expires_after), is_mainnet)
        r, s, v = self.sign_digest(digest)
        return {"r": hex(r), "s": hex(s), "v": v}


def to_checksum_address(raw: bytes) -> str:
    """EIP-55 mixed-case hex of a 20-byte address."""
    lower = raw.hex()
    hashed = keccak256(lower.encode()).hex()
    return "0x" + "".join(c.upper() if int(hashed[i], 16) >= 8 else c for i, c in enumerate(lower))


class NonceSource:
    """Per-signer nonces: current ms, but always strictly above the last one handed out (thread-safe)."""

    def __init__(self, clock_ms: Callable[[], int] | None = None) -> None:
        self._last = 0
        self._lock = threading.Lock()
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)

    def next(self) -> int:
        with self._lock:
            nonce = max(int(self._clock_ms()), self._last + 1)
            self._last = nonce
            return nonce


def cloid_for(client_id: str) -> str:
    """Our 16-byte cloid for a client id: the first 16 bytes of sha256(client_id), as 0x + 32 hex."""
    return "0x" + hashlib.sha256(client_id.encode()).digest()[:16].hex()


# --- action builders: dicts in the venue's wire key order (msgpack keeps insertion order) ---


def limit_order_wire(
    asset: int, is_buy: bool, price: Decimal, size: Decimal, reduce_only: bool, tif: str, cloid: str | None
) -> dict[str, Any]:
    """One order `W` with a limit type: keys a, b, p, s, r, t, [c]."""
    return _order_wire(asset, is_buy, price, size, reduce_only, {"limit": {"tif": tif}}, cloid)


def trigger_order_wire(
    asset: int,
    is_buy: bool,
    price: Decimal,
    size: Decimal,
    reduce_only: bool,
    trigger_price: Decimal,
    is_market: bool,
    tpsl: str,
    cloid: str | None,
) -> dict[str, Any]:
    """One trigger order `W`; inside `trigger` the keys go isMarket, triggerPx, tpsl (as the SDK)."""
    trigger = {"isMarket": is_market, "triggerPx": decimal_to_wire(trigger_price), "tpsl": tpsl}
    return _order_wire(asset, is_buy, price, size, reduce_only, {"trigger": trigger}, cloid)


def _order_wire(
    asset: int,
    is_buy: bool,
    price: Decimal,
    size: Decimal,
    reduce_only: bool,
    order_type: dict[str, Any],
    cloid: str | None,
) -> dict[str, Any]:
    """An order `W` in the wire key order a, b, p, s, r, t, [c]: the signed hash depends on it."""
    wire: dict[str, Any] = {
        "a": asset,
        "b": is_buy,
        "p": decimal_to_wire(price),
        "s": decimal_to_wire(size),
        "r": reduce_only,
        "t": order_type,
    }
    if cloid is not None:
        wire["c"] = cloid
    return wire


def order_action(orders: list[dict[str, Any]], grouping: str = "na") -> dict[str, Any]:
    """An `order` action; never a builder fee."""
    return {"type": "order", "orders": orders, "grouping": grouping}


def cancel_action(cancels: list[tuple[int, int]]) -> dict[str, Any]:
    """A `cancel` action from (asset, oid) pairs."""
    return {"type": "cancel", "cancels": [{"a": asset, "o": oid} for asset, oid in cancels]}


def cancel_by_cloid_action(cancels: list[tuple[int, str]]) -> dict[str, Any]:
    """A `cancelByCloid` action from (asset, cloid) pairs (note the long key names)."""
    return {
        "type": "cancelByCloid",
        "cancels": [{"asset": asset, "cloid": cloid} for asset, cloid in cancels],
    }


def update_leverage_action(asset: int, leverage: int, is_cross: bool) -> dict[str, Any]:
    """An `updateLeverage` action."""
    return {"type": "updateLeverage", "asset": asset, "isCross": is_cross, "leverage": leverage}
