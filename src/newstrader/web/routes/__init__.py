"""The API's routers, one module per concern; `web.app.create_app` mounts them behind the token.

- `session`: health, the login shell and the stream cookie (public);
- `news`: the webhook and the news/signal history;
- `positions`: positions, orders, drift events, PnL stats;
- `control`: pause, resume, close, flatten, reconcile;
- `stream`: server-sent events;
- `metrics`: the Prometheus exposition.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from newstrader.web.sse import to_jsonable

LimitQ = Annotated[int, Query(ge=1, le=1000, description="How many rows, newest first.")]


def jsonable_rows(rows: Any) -> list[dict[str, Any]]:
    """Journal rows as JSON-friendly dicts (Decimals as strings)."""
    return [to_jsonable(r) for r in (rows or [])]
