"""Deterministic client order ids: the same news item always maps to the same orders.

A redelivered item (two feeds, a webhook retry, a restart) therefore cannot produce a
second order under a new name, and an ambiguous send can be looked up by its id.
"""

from __future__ import annotations

import hashlib

PREFIX = "nt"
_LEG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def client_id(operation_id: str, venue: str, leg: str) -> str:
    """`nt-<hash>-<leg>`: at most 36 chars of [a-z0-9-], valid on every venue we speak."""
    digest = hashlib.sha256(f"{operation_id}\n{venue}".encode()).hexdigest()[:20]
    safe_leg = "".join(ch for ch in leg.lower() if ch in _LEG_CHARS)[:10] or "x"
    return f"{PREFIX}-{digest}-{safe_leg}"
