"""The error tables themselves: venue texts, codes and HTTP statuses → the engine's error classes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ccxt
import httpx
import pytest

from newstrader.venues.base import Ambiguous, AuthError, Expired, RateLimited, Rejected, Transient
from newstrader.venues.errors import (
    classify_aster,
    classify_http,
    classify_hyperliquid_text,
    classify_transport,
)
from newstrader.venues.retry import READ_ATTEMPTS

from .conftest import VenueUnderTest
from .test_errors import read_endpoint

DOCUMENTED_ASTER = json.loads(
    (Path(__file__).parents[1] / "data" / "recorded" / "aster_error_codes.json").read_text()
)
CCXT_ASTER: dict[str, type] = ccxt.aster().describe()["exceptions"]["exact"]
CCXT_HYPERLIQUID: dict[str, type] = ccxt.hyperliquid().describe()["exceptions"]["broad"]

# Where we act differently from what ccxt's class implies, and why (everything else follows ccxt).
ASTER_DEVIATIONS: dict[int, type] = {
    -1000: Transient,  # "An unknown error occured": the outcome of an order is unknown, re-read it
    -1125: Transient,  # an expired listen key is renewed, it says nothing about the API key
    # Outside the timestamp / nonce window: refused unexecuted (a Transient), and an order that
    # arrives too late is never resent under its intent (design: the in-flight rule)
    -1021: Expired,
    -4225: Expired,
    -2023: Rejected,  # user in liquidation: refuse this order, the key itself is fine
    -2025: Rejected,  # max open orders: a count, not a per-minute budget; waiting does not help
    -4012: Rejected,
    -4032: Rejected,
    -4045: Rejected,
    -4077: Rejected,
    -4082: Rejected,
    -4033: Rejected,  # insurance account not found: not about our key
    -4061: AuthError,  # hedge mode on the account: a configuration problem, stop the venue
}
HYPERLIQUID_DEVIATIONS: dict[str, type] = {
    "User or API Wallet ": AuthError,  # unknown signer: the key cannot trade (ccxt: InvalidOrder)
}


def _ours_for_ccxt(kind: type) -> type:
    """The class the engine should see for a ccxt exception class."""
    if issubclass(kind, ccxt.AuthenticationError | ccxt.PermissionDenied):
        return AuthError
    if issubclass(kind, ccxt.RateLimitExceeded):
        return RateLimited
    if issubclass(kind, ccxt.InvalidNonce | ccxt.NetworkError | ccxt.BadResponse):
        return Transient
    return Rejected


def _aster_expected(code: int) -> type:
    if code in ASTER_DEVIATIONS:
        return ASTER_DEVIATIONS[code]
    if str(code) in CCXT_ASTER:
        return _ours_for_ccxt(CCXT_ASTER[str(code)])
    return Rejected


ALL_ASTER_CODES = sorted(
    {code for code, _name in DOCUMENTED_ASTER["codes"]} | {int(c) for c in CCXT_ASTER}, reverse=True
)


@pytest.mark.parametrize("code", ALL_ASTER_CODES)
def test_every_aster_code_against_docs_and_ccxt(code: int) -> None:
    """One row per code in the v3 docs or ccxt's map: a read sees the class the engine should act on."""
    error = classify_aster(code, "msg", venue="aster", is_order=False, http_status=400)
    assert type(error) is _aster_expected(code), f"{code}: ccxt says {CCXT_ASTER.get(str(code))}"


def test_unauthorized_is_auth_error() -> None:
    """-1002 (a revoked API wallet) quarantines the venue instead of being retried as a refusal."""
    assert type(classify_aster(-1002, "You are not authorized", venue="a", is_order=True)) is AuthError


@pytest.mark.parametrize("text", sorted(CCXT_HYPERLIQUID))
def test_every_hyperliquid_text_in_ccxt(text: str) -> None:
    """One row per message in ccxt's Hyperliquid map (as the venue sends it, with a suffix)."""
    expected = HYPERLIQUID_DEVIATIONS.get(text) or _ours_for_ccxt(CCXT_HYPERLIQUID[text])
    error = classify_hyperliquid_text(f"{text} asset=3", venue="hl", is_order=True)
    assert type(error) is expected


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Reduce only order would increase position. asset=4", Rejected),
        ("Order must have minimum value of $10.", Rejected),
        ("Insufficient margin to place order. asset=0", Rejected),
        ("Order could not immediately match against any resting orders. asset=1", Rejected),
        ("Post only order would have immediately matched, bbo was 1.0@1.1. asset=3", Rejected),
        ("Price must be divisible by tick size. asset=0", Rejected),
        ("L1 error: User or API Wallet 0xabc does not exist.", AuthError),
        ("Must deposit before performing actions. User: 0xabc", AuthError),
        ("Invalid nonce: duplicate nonce 1700000000000", Transient),
        ("Action already expired", Expired),
        ("Too many cumulative requests sent (10001 > 10000) for cumulative volume traded $0.", RateLimited),
        ("Something new the venue just invented", Rejected),
    ],
)
def test_hyperliquid_texts(text: str, kind: type) -> None:
    error = classify_hyperliquid_text(text, venue="hl", is_order=True)
    assert type(error) is kind and error.venue == "hl" and str(error) == text


@pytest.mark.parametrize(
    ("code", "is_order", "kind"),
    [
        (-1007, True, Ambiguous),  # "execution status unknown" on an order
        (-1007, False, Transient),
        (-1001, True, Ambiguous),
        (-1003, False, RateLimited),
        (-1015, True, RateLimited),
        (-1021, True, Expired),
        (-4225, True, Expired),
        (-1022, False, AuthError),
        (-2015, False, AuthError),
        (-4061, True, AuthError),
        (-2019, True, Rejected),
        (-2022, True, Rejected),
        (-4164, True, Rejected),
        (-2013, False, Rejected),
        (-9999, True, Rejected),
    ],
)
def test_aster_codes(code: int, is_order: bool, kind: type) -> None:
    error = classify_aster(code, "msg", venue="aster", is_order=is_order, http_status=400)
    assert type(error) is kind and error.code == code


@pytest.mark.parametrize(
    ("status", "is_order", "kind"),
    [
        (502, True, Ambiguous),
        (503, True, Ambiguous),
        (504, True, Ambiguous),
        (500, False, Transient),
        (503, False, Transient),
        (429, True, RateLimited),
        (418, False, RateLimited),
        (401, False, AuthError),
        (403, False, Transient),
        (422, True, Rejected),
    ],
)
def test_http_statuses(status: int, is_order: bool, kind: type) -> None:
    error = classify_http(status, "body", venue="v", is_order=is_order, headers={"retry-after": "3"})
    assert type(error) is kind
    if isinstance(error, Transient) and status in (429, 418):
        assert error.retry_after == 3.0


def test_transport_failures_before_and_after_sending() -> None:
    request = httpx.Request("POST", "http://127.0.0.1/x")
    never_sent = httpx.ConnectError("refused", request=request)
    after_send = [
        httpx.ReadTimeout("slow", request=request),
        httpx.RemoteProtocolError("dropped", request=request),
    ]
    assert type(classify_transport(never_sent, venue="v", is_order=True)) is Transient
    for exc in after_send:
        assert type(classify_transport(exc, venue="v", is_order=True)) is Ambiguous
        assert type(classify_transport(exc, venue="v", is_order=False)) is Transient


async def test_dropped_response_on_a_read_is_retried_then_transient(vut: VenueUnderTest, sim: Any) -> None:
    await vut.venue.positions()
    sim.admin.add_fault(vut.sim_venue, "drop_response_after_execute", count=1, endpoint=read_endpoint(vut))
    assert await vut.venue.positions() == {}  # a read is safe to repeat: the retry succeeds
    sim.admin.add_fault(
        vut.sim_venue, "drop_response_after_execute", count=READ_ATTEMPTS, endpoint=read_endpoint(vut)
    )
    with pytest.raises(Transient):  # after the retries, the read fails as Transient (never Ambiguous)
        await vut.venue.positions()
