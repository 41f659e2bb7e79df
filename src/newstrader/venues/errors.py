"""Per-venue error tables, as data: what the venue said → the error class the engine acts on.

Rules of thumb the tables encode: a refusal on the merits is `Rejected` (never retry); bad keys,
signers or an account mode we cannot trade is `AuthError` (stop the venue); 429 is `RateLimited`;
anything where the request may have executed without us hearing back is `Ambiguous` on an order
and `Transient` on a read (reads are always safe to repeat).
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from newstrader.venues.base import (
    Ambiguous,
    AuthError,
    Expired,
    RateLimited,
    Rejected,
    Transient,
    VenueError,
)

# Hyperliquid answers HTTP 200 with a text; match by prefix (live replies append " asset=<n>").
# Checked against the venue's docs and ccxt's `exceptions.broad` map (tests/venues/test_error_tables.py).
HYPERLIQUID_TEXT_PREFIXES: tuple[tuple[str, type[VenueError]], ...] = (
    ("Price must be divisible by tick size", Rejected),
    ("Order must have minimum value", Rejected),
    ("Insufficient margin", Rejected),
    ("Insufficient spot balance", Rejected),
    ("Reduce only order would increase position", Rejected),
    ("Post only order would have immediately matched", Rejected),
    ("Order could not immediately match", Rejected),
    ("Invalid TP/SL price", Rejected),
    ("No liquidity available for market order", Rejected),
    ("Order would increase open interest", Rejected),
    ("Order rejected due to price more aggressive", Rejected),
    ("Order price too far from oracle", Rejected),
    ("Order price cannot be more than", Rejected),
    ("Order would cause position to exceed", Rejected),
    ("Order has invalid size", Rejected),
    ("Order has zero size", Rejected),
    ("Order has invalid price", Rejected),
    ("Order was never placed, already canceled, or filled", Rejected),
    ("Signed action over weight limit", Rejected),
    ("Cannot set leverage", Rejected),
    ("Invalid leverage", Rejected),
    # ccxt calls this InvalidOrder; for us a signer the venue does not know is a key that cannot
    # trade (never approved, revoked, or signing for the other network): stop the venue.
    ("L1 error: User or API Wallet", AuthError),
    ("User or API Wallet", AuthError),
    ("Must deposit before performing actions", AuthError),
    ("Invalid signature", AuthError),
    # Our nonces are unique; a nonce refusal means the action was not executed: safe to re-sign and resend.
    ("Invalid nonce", Transient),
    # Past its `expiresAfter`: refused unexecuted. The text is the one the venue's GitBook FAQ
    # names ("What does 'Action already expired' mean?"); the simulator answers it verbatim.
    ("Action already expired", Expired),
    ("Too many cumulative requests sent", RateLimited),
)

# Aster (Binance-style) error codes whose class is not `Rejected`. Every other documented code
# (asterdex/api-docs "Error Codes") is a refusal on the merits: `Rejected`. Checked code by code
# against the docs and ccxt's `exceptions.exact` map in tests/venues/test_error_tables.py.
ASTER_CODES: Mapping[int, type[VenueError]] = {
    # Execution status unknown: re-query before retrying (mapped to Ambiguous on orders below).
    -1000: Transient,  # UNKNOWN
    -1001: Transient,  # DISCONNECTED
    -1006: Transient,  # UNEXPECTED_RESP
    -1007: Transient,  # TIMEOUT
    -1003: RateLimited,  # TOO_MANY_REQUESTS
    -1015: RateLimited,  # TOO_MANY_ORDERS (per-minute order budget)
    -1021: Expired,  # outside the timestamp/nonce window (or a reused nonce): resync, never resent
    -4225: Expired,  # v3 nonce below the user's last 100: expired
    -1125: Transient,  # INVALID_LISTEN_KEY: an expired stream key, make a new one (not a bad API key)
    -1002: AuthError,  # UNAUTHORIZED: e.g. a revoked API wallet
    -1011: AuthError,  # NON_WHITE_LIST: this IP may not use the key
    -1022: AuthError,  # INVALID_SIGNATURE
    -2014: AuthError,  # BAD_API_KEY_FMT
    -2015: AuthError,  # REJECTED_MBX_KEY
    -4056: AuthError,  # INVALID_API_KEY_TYPE
    -4057: AuthError,  # INVALID_RSA_PUBLIC_KEY
    -4087: AuthError,  # REDUCE_ONLY_ORDER_PERMISSION: the account may only reduce
    -4088: AuthError,  # NO_PLACE_ORDER_PERMISSION
    -4061: AuthError,  # positionSide does not match the account mode (hedge mode): a config problem
}
_ASTER_UNKNOWN_OUTCOME = frozenset({-1000, -1001, -1006, -1007})

# HTTP statuses when the body says nothing more useful.
HTTP_STATUSES: Mapping[int, type[VenueError]] = {
    401: AuthError,
    403: Transient,  # a WAF block, not our credentials
    408: Transient,
    418: RateLimited,  # IP ban after ignoring 429s
    429: RateLimited,
}
_UNKNOWN_OUTCOME_STATUSES = frozenset({500, 502, 503, 504})


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    raw = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


def _make(
    kind: type[VenueError], message: str, venue: str, code: str | int | None, retry: float | None
) -> VenueError:
    if issubclass(kind, Transient):
        return kind(message, venue=venue, code=code, retry_after=retry)
    return kind(message, venue=venue, code=code)


def classify_hyperliquid_text(text: str, *, venue: str, is_order: bool) -> VenueError:
    """A Hyperliquid `status:"err"` response or per-order `error` text → its class (unknown → Rejected)."""
    for prefix, kind in HYPERLIQUID_TEXT_PREFIXES:
        if text.startswith(prefix) or (kind is AuthError and prefix in text):
            return _make(kind, text, venue, None, None)
    return Rejected(text, venue=venue)


def classify_aster(
    code: int, msg: str, *, venue: str, is_order: bool, http_status: int | None = None
) -> VenueError:
    """An Aster `{code, msg}` error → its class; unknown codes with a 4xx are `Rejected`."""
    if is_order and code in _ASTER_UNKNOWN_OUTCOME:
        return Ambiguous(f"{code} {msg}", venue=venue, code=code)
    kind = ASTER_CODES.get(code)
    if kind is None:
        if http_status is not None and (http_status in HTTP_STATUSES or http_status >= 500):
            return classify_http(http_status, f"{code} {msg}", venue=venue, is_order=is_order)
        kind = Rejected
    return _make(kind, f"{code} {msg}", venue, code, None)


def classify_http(
    status: int, body: str, *, venue: str, is_order: bool, headers: Mapping[str, str] | None = None
) -> VenueError:
    """A non-2xx HTTP reply whose body carried no venue error → its class."""
    retry = _retry_after(headers)
    text = f"HTTP {status}: {body[:200]}"
    if status in _UNKNOWN_OUTCOME_STATUSES or status >= 500:
        if is_order:
            return Ambiguous(text, venue=venue, code=status)
        return Transient(text, venue=venue, code=status, retry_after=retry)
    kind = HTTP_STATUSES.get(status, Rejected)
    return _make(kind, text, venue, status, retry)


def classify_transport(exc: httpx.HTTPError, *, venue: str, is_order: bool) -> VenueError:
    """A transport failure: before the request left → `Transient`; after → `Ambiguous` on orders."""
    never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if is_order and not never_sent:
        return Ambiguous(text, venue=venue)
    return Transient(text, venue=venue)
