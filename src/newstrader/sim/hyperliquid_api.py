"""The Hyperliquid HTTP API over `market.Exchange` (being built; see issue 4)."""

from __future__ import annotations

from fastapi import APIRouter

from newstrader.sim.app import Sim


def build_router(sim: Sim) -> APIRouter:
    """`/info` and `/exchange` routes for the Hyperliquid venue of `sim`."""
    return APIRouter()
