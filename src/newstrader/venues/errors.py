"""Per-venue error tables, as data: what the venue said → the error class the engine acts on.

Rules of thumb the tables encode: a refusal on the merits is `Rejected` (never retry); bad keys,
signers or an account mode we cannot trade is `AuthError` (stop the venue); 429 is `RateLimited`;
anything where the request may have executed without us hearing back is `Ambiguous` on an order
and `Transient` on a read (reads are always safe to repeat).
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from newstrader.venues.base import Ambiguous, AuthError, RateLimited, Rejected, Transient, VenueError

# Hyperliquid answers HTTP 200 with a text; match by prefix (live replies append " asset=<n>").
HYPERLIQUID_TEXT_PREFIXES: tuple[tuple[str, type[VenueError]], ...] = (
    ("Price must be divisible by tick size", Rejected),
    ("Order must have minimum value", Rejected),
    ("Insufficient margin", Rejected),
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
    ("Order has invalid price", Rejected),
    ("Order was never placed, already canceled, or filled", Rejected),
    ("Signed action over weight limit", Rejected),
    ("Cannot set leverage", Rejected),
    ("Invalid leverage", Rejected),
    ("L1 error: User or API Wallet", AuthError),
    ("User or API Wallet", AuthError),
    ("Must deposit before performing actions", AuthError),
    ("Invalid signature", AuthError),
    # Our nonces are unique; a nonce refusal means the action was not executed: safe to re-sign and resend.
    ("Invalid nonce", Transient),
    ("Too many cumulative requests sent", RateLimited),
)

# Aster (Binance-style) error codes.
ASTER_CODES: Mapping[int, type[VenueError]] = {
    # Execution status unknown: re-query before retrying (mapped to Ambiguous on orders below).
    -1000: Transient,
    -1001: Transient,
    -1006: Transient,
    -1007: Transient,
    -1003: RateLimited,
    -1015: RateLimited,
    -1021: Transient,  # clock/nonce window: resync and re-sign
    -4225: Transient,  # v3 nonce expired
    -1022: AuthError,
    -2014: AuthError,
    -2015: AuthError,
    -4061: AuthError,  # positionSide does not match the account mode (hedge mode): a config problem
    -1102: Rejected,
    -1106: Rejected,
    -1111: Rejected,
    -1116: Rejected,
    -1117: Rejected,
    -1121: Rejected,
    -2010: Rejected,
    -2011: Rejected,
    -2013: Rejected,
    -2018: Rejected,
    -2019: Rejected,
    -2021: Rejected,
    -2022: Rejected,
    -2027: Rejected,
    -2028: Rejected,
    -4003: Rejected,
    -4004: Rejected,
    -4005: Rejected,
    -4013: Rejected,
    -4014: Rejected,
    -4015: Rejected,
    -4016: Rejected,
    -4023: Rejected,
    -4024: Rejected,
    -4028: Rejected,
    -4118: Rejected,
    -4131: Rejected,
    -4137: Rejected,
    -4138: Rejected,
    -4164: Rejected,
    -5076: Rejected,
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
