"""Opt-in: the trade test of `newstrader check --trade-test` on the real Aster testnet (v3 keys).

Enabled only when NEWSTRADER_LIVE_ASTER_TESTNET_KEY holds the private key of an API wallet
approved on the Aster testnet and NEWSTRADER_LIVE_ASTER_TESTNET_ACCOUNT names its user (main
wallet). It places one post-only buy at half the mark and cancels it by client id.
"""

from __future__ import annotations

import os

import pytest

from .live import live_trade_test

KEY = os.environ.get("NEWSTRADER_LIVE_ASTER_TESTNET_KEY")
ACCOUNT = os.environ.get("NEWSTRADER_LIVE_ASTER_TESTNET_ACCOUNT")

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not (KEY and ACCOUNT),
        reason="live Aster testnet trade test: set NEWSTRADER_LIVE_ASTER_TESTNET_KEY (the API wallet's key) "
        "and NEWSTRADER_LIVE_ASTER_TESTNET_ACCOUNT (its user address) to run it",
    ),
]


async def test_aster_testnet_trade_test(monkeypatch: pytest.MonkeyPatch) -> None:
    assert KEY is not None
    result = await live_trade_test(monkeypatch, "aster", KEY, ACCOUNT)
    assert result.reachable and result.ok, result.problems
    assert result.trade_test.startswith("ok: post-only buy"), result.trade_test
