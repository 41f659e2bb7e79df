"""Fault injection for the simulated venues, applied by path prefix (`/hyperliquid`, `/aster`).

Kinds (set through `POST /admin/faults`):

- `latency_ms`: hold the request `ms` milliseconds, then handle it normally.
- `http_429`: refuse with 429 and `Retry-After` (nothing executed). Hyperliquid: `null` body (the
  SDK chokes on a JSON object without `code`/`msg`); Aster: `{"code":-1003,...}`.
- `http_5xx`: refuse with `status` (default 502) before executing.
- `timeout`: hold the request `ms` (default 30 s, longer than a client waits), then answer 504;
  nothing is executed.
- `drop_response_after_execute`: execute the request, then close the connection without sending
  a single byte (`mode="close"`, default; in-process, where there is no connection, the status line
  goes out and the body never does) or answer 502 with an empty body (`mode="502"`). Either way
  the client cannot know the outcome.

Websocket kinds (they act on what the simulator pushes, never on HTTP requests; `endpoint`
matches the message label `ws:<channel>`, e.g. `ws:orderUpdates`, `ws:ORDER_TRADE_UPDATE`):

- `ws_disconnect`: close the connection instead of sending the matching message.
- `ws_stall_ms`: hold that message and everything after it on the connection for `ms`
  (pongs included, so the client sees silence), then send them in order.
- `ws_drop_message`: never send the matching message (a gap the client cannot see).

A fault fires with `probability` (seeded, so runs repeat) or for the next `count` matching
requests. `endpoint` narrows it: a substring of the request label (`exchange:order`,
`info:clearinghouseState`, `POST /fapi/v3/order`). `venue` is `hyperliquid`, `aster` or `all`.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

HTTP_FAULT_KINDS = ("latency_ms", "http_429", "http_5xx", "timeout", "drop_response_after_execute")
WS_FAULT_KINDS = ("ws_disconnect", "ws_stall_ms", "ws_drop_message")
FAULT_KINDS = HTTP_FAULT_KINDS + WS_FAULT_KINDS
VENUES = ("hyperliquid", "aster", "all")
DEFAULT_TIMEOUT_MS = 30_000


class FaultError(ValueError):
    """A fault specification that cannot be used; the message names the field."""


@dataclass(slots=True)
class Fault:
    """One injected misbehaviour and how often it has fired."""

    id: int
    venue: str
    kind: str
    probability: float | None = None
    count: int | None = None  # remaining firings; None with a probability
    endpoint: str | None = None
    ms: int | None = None
    status: int | None = None
    retry_after_s: float = 1.0
    mode: str = "close"
    hits: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultTable:
    """The active faults; `pick()` decides, per request, which of them fire."""

    def __init__(self, seed: int = 1) -> None:
        self._seed = seed
        self.rng = random.Random(seed * 7919 + 17)
        self.faults: list[Fault] = []
        self._next_id = 1

    def add(self, spec: dict[str, Any]) -> Fault:
        """Validate a spec from `POST /admin/faults` and activate it."""
        venue = spec.get("venue", "all")
        kind = spec.get("kind")
        if venue not in VENUES:
            raise FaultError(f"venue must be one of {', '.join(VENUES)}")
        if kind not in FAULT_KINDS:
            raise FaultError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        probability = spec.get("probability")
        count = spec.get("count")
        if probability is None and count is None:
            count = 1
        if probability is not None and (
            not isinstance(probability, int | float)
            or isinstance(probability, bool)
            or not 0 <= probability <= 1
        ):
            raise FaultError("probability must be a number in [0, 1]")
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
            raise FaultError("count must be a positive integer")
        ms = spec.get("ms")
        if ms is not None and (not isinstance(ms, int) or isinstance(ms, bool) or ms < 0):
            raise FaultError("ms must be a non-negative integer")
        if kind in ("latency_ms", "ws_stall_ms") and ms is None:
            raise FaultError(f"{kind} needs ms")
        status = spec.get("status")
        if status is not None and (not isinstance(status, int) or not 500 <= status <= 599):
            raise FaultError("status must be a 5xx code")
        mode = spec.get("mode", "close")
        if mode not in ("close", "502"):
            raise FaultError("mode must be 'close' or '502'")
        endpoint = spec.get("endpoint")
        if endpoint is not None and not isinstance(endpoint, str):
            raise FaultError("endpoint must be a string")
        retry_after = spec.get("retry_after_s", 1.0)
        if not isinstance(retry_after, int | float) or retry_after < 0:
            raise FaultError("retry_after_s must be a non-negative number")
        fault = Fault(
            id=self._next_id,
            venue=venue,
            kind=kind,
            probability=None if probability is None else float(probability),
            count=count,
            endpoint=endpoint,
            ms=ms,
            status=status,
            retry_after_s=float(retry_after),
            mode=mode,
        )
        self._next_id += 1
        self.faults.append(fault)
        return fault

    def clear(self, venue: str | None = None) -> int:
        """Remove every fault (or those of one venue); returns how many were removed."""
        before = len(self.faults)
        self.faults = [f for f in self.faults if venue is not None and f.venue != venue and venue != "all"]
        return before - len(self.faults)

    def reset(self) -> None:
        self.faults.clear()
        self.rng = random.Random(self._seed * 7919 + 17)
        self._next_id = 1

    def pick(self, venue: str, label: str, transport: str = "http") -> list[Fault]:
        """The faults that fire for this request (consuming counts), in the order they were added.

        Every matching latency fault applies; of the others (which decide the reply) only the
        first that fires does, so two `count=1` faults spoil the next two requests, one each.
        `transport="ws"` picks among the websocket kinds for one pushed message instead.
        """
        kinds = WS_FAULT_KINDS if transport == "ws" else HTTP_FAULT_KINDS
        fired: list[Fault] = []
        decided = False
        for fault in self.faults:
            if fault.venue not in (venue, "all") or fault.kind not in kinds:
                continue
            if decided and fault.kind != "latency_ms":
                continue
            if fault.endpoint is not None and fault.endpoint not in label:
                continue
            if fault.count is not None and fault.count <= 0:
                continue  # spent; kept so /admin/state still shows its hits
            if fault.probability is not None and self.rng.random() >= fault.probability:
                continue
            if fault.count is not None:
                fault.count -= 1
            fault.hits += 1
            fired.append(fault)
            decided = decided or fault.kind != "latency_ms"
        return fired
