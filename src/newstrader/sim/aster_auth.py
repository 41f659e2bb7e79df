"""Aster request authentication as the exchange checks it, written independently of the client.

Two generations share the business paths:

* legacy (``/fapi/v1``, ``/fapi/v2``, ``/fapi/v4``): ``X-MBX-APIKEY`` header, ``timestamp`` and
  ``recvWindow`` params, ``signature`` = hex HMAC-SHA256 over the raw received query string
  directly followed by the raw body (no ``&`` between them), minus the ``signature`` param.
* v3 (``/fapi/v3``): ``user``, ``signer`` and ``nonce`` (microseconds) params; ``signature`` is an
  EIP-712 signature (domain ``AsterSignTransaction`` v1, ``Message{msg: string}``) of the raw
  param string minus ``signature``.

Choices where the public documentation is silent (documented here so clients can rely on them):

* chain id: only the simulated network's (714 testnet, the default, or 1666 mainnet: `newstrader
  sim --network`), as on the real venue; `SimConfig.aster_chain_ids` overrides that.
* v3 nonce outside +-10 s of server time → ``-1021`` (the code, with Binance's timestamp texts,
  ccxt met for a v3 nonce off the server clock: ccxt/ccxt PR #27682). A nonce this user already
  spent → ``-4225`` "Nonce Expired", as the v3 docs' noop demo prints for the order that lost the
  race to a noop carrying the same nonce; a nonce below the oldest of a full window of 100 kept
  nonces → ``-4225`` "Nonce Expired" too ("V3 Nonce Mechanism"). An older nonce that is neither
  is accepted: the docs ask for no increasing order.
* v3 with params both in query and body: the signed string is ``query + "&" + body``.

The digest is built by hand (keccak of the EIP-712 encoding) and the signer recovered with
coincurve, so neither ccxt's nor eth_account's signing code is trusted by the verifier.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import coincurve
from eth_hash.auto import keccak

MAINNET_CHAIN_ID = 1666
TESTNET_CHAIN_ID = 714
DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000
V3_NONCE_TOLERANCE_US = 10_000_000
V3_NONCES_KEPT = 100

_EIP712_DOMAIN_TYPE = b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
_MESSAGE_TYPE = b"Message(string msg)"
_ZERO_ADDRESS = bytes(20)


class AsterAuthError(Exception):
    """A request the exchange refuses before looking at its business params; carries the Binance code."""

    def __init__(self, code: int, msg: str, http_status: int = 400) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status


def api_key_owner(owners: Mapping[str, str], api_key: str | None) -> str:
    """The account an `X-MBX-APIKEY` acts for (HMAC requests, listenKey calls), or the venue's refusal."""
    if not api_key:
        raise AsterAuthError(-2014, "API-key format invalid.", 401)
    owner = owners.get(api_key)
    if owner is None:
        raise AsterAuthError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
    return owner


def strip_signature(raw: str) -> tuple[str, str | None]:
    """Split a raw urlencoded string into (the string without its ``signature`` param, the signature).

    The signed bytes are exactly what was received, so no decoding or re-encoding happens here.
    """
    if not raw:
        return "", None
    kept: list[str] = []
    signature: str | None = None
    for part in raw.split("&"):
        if part.startswith("signature="):
            signature = part[len("signature=") :]
        else:
            kept.append(part)
    return "&".join(kept), signature


def hmac_signature(secret: str, payload: str) -> str:
    """Lowercase hex HMAC-SHA256 of ``payload`` keyed by ``secret`` (the legacy scheme)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def hmac_payload(raw_query: str, raw_body: str) -> tuple[str, str | None]:
    """The legacy signed payload (query directly followed by body) and the signature that came with it."""
    query, sig_q = strip_signature(raw_query)
    body, sig_b = strip_signature(raw_body)
    return query + body, sig_q if sig_q is not None else sig_b


def verify_hmac(secret: str, payload: str, signature: str | None) -> None:
    """Raise -1022 unless ``signature`` is the HMAC of ``payload`` (hex case ignored)."""
    if not signature:
        raise AsterAuthError(
            -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."
        )
    expected = hmac_signature(secret, payload)
    if not hmac.compare_digest(expected, signature.lower()):
        raise AsterAuthError(-1022, "Signature for this request is not valid.")


def check_timestamp(params: dict[str, str], server_ms: int) -> None:
    """Apply the legacy ``timestamp``/``recvWindow`` rule: not > 1 s ahead, not older than recvWindow."""
    raw_ts = params.get("timestamp")
    if raw_ts is None or raw_ts == "":
        raise AsterAuthError(
            -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
        )
    try:
        timestamp = int(raw_ts)
    except ValueError as exc:
        raise AsterAuthError(-1102, "Mandatory parameter 'timestamp' was malformed.") from exc
    raw_window = params.get("recvWindow")
    recv_window = DEFAULT_RECV_WINDOW_MS
    if raw_window not in (None, ""):
        try:
            recv_window = int(str(raw_window))
        except ValueError as exc:
            raise AsterAuthError(-1102, "Parameter 'recvWindow' was malformed.") from exc
        if recv_window <= 0 or recv_window > MAX_RECV_WINDOW_MS:
            raise AsterAuthError(-1130, f"recvWindow must be in 1..{MAX_RECV_WINDOW_MS}.")
    if timestamp >= server_ms + 1000 or server_ms - timestamp > recv_window:
        raise AsterAuthError(-1021, "Timestamp for this request is outside of the recvWindow.")


def _domain_separator(chain_id: int) -> bytes:
    return keccak(
        keccak(_EIP712_DOMAIN_TYPE)
        + keccak(b"AsterSignTransaction")
        + keccak(b"1")
        + chain_id.to_bytes(32, "big")
        + _ZERO_ADDRESS.rjust(32, b"\0")
    )


_DOMAIN_SEPARATORS = {cid: _domain_separator(cid) for cid in (MAINNET_CHAIN_ID, TESTNET_CHAIN_ID)}
_MESSAGE_TYPE_HASH = keccak(_MESSAGE_TYPE)


def eip712_digest(msg: str, chain_id: int) -> bytes:
    """The 32-byte EIP-712 digest of ``Message{msg}`` under the AsterSignTransaction domain."""
    domain = _DOMAIN_SEPARATORS.get(chain_id) or _domain_separator(chain_id)
    struct_hash = keccak(_MESSAGE_TYPE_HASH + keccak(msg.encode()))
    return keccak(b"\x19\x01" + domain + struct_hash)


def recover_address(digest: bytes, signature: str) -> str:
    """Recover the lowercase 0x address that produced a 65-byte r||s||v signature over ``digest``."""
    text = signature[2:] if signature[:2].lower() == "0x" else signature
    try:
        raw = bytes.fromhex(text)
    except ValueError as exc:
        raise AsterAuthError(-1022, "Signature for this request is not valid.") from exc
    if len(raw) != 65:
        raise AsterAuthError(-1022, "Signature for this request is not valid.")
    v = raw[64]
    recid = v - 27 if v >= 27 else v
    if recid not in (0, 1):
        raise AsterAuthError(-1022, "Signature for this request is not valid.")
    try:
        pub = coincurve.PublicKey.from_signature_and_message(raw[:64] + bytes([recid]), digest, hasher=None)
    except Exception as exc:  # coincurve raises plain Exception/ValueError for invalid points
        raise AsterAuthError(-1022, "Signature for this request is not valid.") from exc
    return "0x" + keccak(pub.format(compressed=False)[1:])[-20:].hex()


def v3_signers(msg: str, signature: str, chain_ids: Iterable[int]) -> list[str]:
    """Every address that could have signed ``msg`` under one of the accepted chain ids."""
    return [recover_address(eip712_digest(msg, cid), signature) for cid in chain_ids]


def v3_payload(raw_query: str, raw_body: str) -> tuple[str, str | None]:
    """The v3 signed string (query, body, or both joined by ``&``) and the signature that came with it."""
    query, sig_q = strip_signature(raw_query)
    body, sig_b = strip_signature(raw_body)
    msg = "&".join(p for p in (query, body) if p)
    return msg, sig_q if sig_q is not None else sig_b


@dataclass
class _UserNonces:
    heap: list[int] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)


class NonceBook:
    """Per-user v3 nonces: within +-10 s of server time, never reused, the last 100 remembered."""

    def __init__(self, keep: int = V3_NONCES_KEPT, tolerance_us: int = V3_NONCE_TOLERANCE_US) -> None:
        self._keep = keep
        self._tolerance_us = tolerance_us
        self._users: dict[str, _UserNonces] = {}

    def spend(self, user: str, raw_nonce: str | None, server_us: int) -> None:
        """Accept and record ``raw_nonce`` for ``user`` or raise the exchange's refusal."""
        if raw_nonce in (None, ""):
            raise AsterAuthError(
                -1102, "Mandatory parameter 'nonce' was not sent, was empty/null, or malformed."
            )
        try:
            nonce = int(str(raw_nonce))
        except ValueError as exc:
            raise AsterAuthError(-1102, "Parameter 'nonce' was malformed.") from exc
        if abs(nonce - server_us) > self._tolerance_us:
            raise AsterAuthError(-1021, "Nonce is outside of the +-10 s window of server time.")
        book = self._users.setdefault(user.lower(), _UserNonces())
        if nonce in book.seen:
            raise AsterAuthError(-4225, "Nonce Expired")
        if len(book.heap) >= self._keep and nonce < book.heap[0]:
            raise AsterAuthError(-4225, "Nonce Expired")
        heapq.heappush(book.heap, nonce)
        book.seen.add(nonce)
        if len(book.heap) > self._keep:
            book.seen.discard(heapq.heappop(book.heap))

    def reset(self) -> None:
        """Forget every nonce (admin reset)."""
        self._users.clear()


def parse_params(raw_query: str, raw_body: str) -> dict[str, str]:
    """Decode query and form body into one dict; a key present in both takes the query's value."""
    params: dict[str, str] = {}
    for key, value in parse_qsl(raw_body, keep_blank_values=True):
        params[key] = value
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        params[key] = value
    params.pop("signature", None)
    return params
