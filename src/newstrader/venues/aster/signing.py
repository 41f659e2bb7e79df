"""Aster request signing: v3 EIP-712 (`AsterSignTransaction`, `Message{msg}`) and legacy HMAC-SHA256.

Both sign the exact urlencoded parameter string that goes on the wire, so `encode_params` is the
one place that string is built, and the signature is appended last.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import deque
from collections.abc import Iterable
from urllib.parse import quote

from newstrader.venues.hyperliquid.signing import L1Signer, eip712_domain_separator, keccak256

MAINNET_CHAIN_ID = 1666
TESTNET_CHAIN_ID = 714
_MESSAGE_TYPE = keccak256(b"Message(string msg)")


def encode_params(params: Iterable[tuple[str, str]]) -> str:
    """`k=v&…` in the given order, values percent-encoded with RFC 3986 rules (as the vectors)."""
    return "&".join(f"{key}={quote(str(value), safe='')}" for key, value in params)


def hmac_signature(secret: str, payload: str) -> str:
    """Legacy v1 signature: lowercase hex HMAC-SHA256 of the parameter string."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


class V3Signer:
    """An Aster API wallet (agent) key signing for `user`; `address` is the signer."""

    def __init__(self, private_key: str, *, chain_id: int = MAINNET_CHAIN_ID) -> None:
        self._key = L1Signer(private_key)
        self.address = self._key.address
        self._prefix = b"\x19\x01" + eip712_domain_separator("AsterSignTransaction", "1", chain_id)

    def __repr__(self) -> str:  # never print the key
        return f"V3Signer({self.address})"

    def sign_message(self, msg: str) -> str:
        """0x + r ‖ s ‖ v hex (65 bytes, v = 27/28) of the EIP-712 `Message{msg}`."""
        digest = keccak256(self._prefix + keccak256(_MESSAGE_TYPE + keccak256(msg.encode())))
        r, s, v = self._key.sign_digest(digest)
        return "0x" + r.to_bytes(32, "big").hex() + s.to_bytes(32, "big").hex() + f"{v:02x}"

    def signed_params(self, user: str, nonce_us: int, params: Iterable[tuple[str, str]]) -> str:
        """`nonce&user&signer&<params>&signature` (ccxt's order), ready to send as query or form body."""
        body = encode_params([("nonce", str(nonce_us)), ("user", user), ("signer", self.address), *params])
        return f"{body}&signature={self.sign_message(body)}"


class MicrosecondNonces:
    """v3 nonces: µs on the server's clock (local time corrected by the measured offset), never
    handed out twice (thread-safe).

    The venue refuses a nonce more than 10 s from its clock, so a nonce is also an order's
    validity window: `at` gives one anchored at an earlier instant (the order's intent time).
    """

    RECENT = 1024  # anchored nonces lie within seconds of `next()`'s: this many cover any overlap

    def __init__(self) -> None:
        self.offset_us = 0
        self._last = 0
        self._lock = threading.Lock()
        self._recent: deque[int] = deque()
        self._recent_set: set[int] = set()

    def next(self) -> int:
        """Now, strictly above the last `next()`."""
        with self._lock:
            nonce = self._unused(max(time.time_ns() // 1000 + self.offset_us, self._last + 1))
            self._last = nonce
            return nonce

    def at(self, local_us: int) -> int:
        """The nonce for local time `local_us` (µs since the epoch), or the next unused after it."""
        with self._lock:
            return self._unused(local_us + self.offset_us)

    def _unused(self, nonce: int) -> int:
        while nonce in self._recent_set:
            nonce += 1
        self._recent.append(nonce)
        self._recent_set.add(nonce)
        if len(self._recent) > self.RECENT:
            self._recent_set.discard(self._recent.popleft())
        return nonce
