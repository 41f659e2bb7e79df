"""Opt-in: the trade test of `newstrader check --trade-test` on the real Hyperliquid testnet.

Enabled only when NEWSTRADER_LIVE_HL_TESTNET_KEY holds a testnet private key (of the account, or
of an agent wallet with NEWSTRADER_LIVE_HL_TESTNET_ACCOUNT naming the account). It places one
post-only buy at half the mark and cancels it by client id; it never opens a position.
"""

from __future__ import annotations

import os

import pytest

from .live import live_trade_test

KEY = os.environ.get("NEWSTRADER_LIVE_HL_TESTNET_KEY")
ACCOUNT = os.environ.get("NEWSTRADER_LIVE_HL_TESTNET_ACCOUNT")

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not KEY,
        reason="live Hyperliquid testnet trade test: set NEWSTRADER_LIVE_HL_TESTNET_KEY (and, for an agent "
        "key, NEWSTRADER_LIVE_HL_TESTNET_ACCOUNT) to run it",
    ),
]


async def test_hyperliquid_testnet_trade_test(monkeypatch: pytest.MonkeyPatch) -> None:
    assert KEY is not None
    result = await live_trade_test(monkeypatch, "hyperliquid", KEY, ACCOUNT)
    assert result.reachable and result.ok, result.problems
    assert result.trade_test.startswith("ok: post-only buy"), result.trade_test
