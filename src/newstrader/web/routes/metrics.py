"""`GET /metrics`: the Prometheus exposition (token required like every data route)."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Response

from newstrader.botapi import BotApi
from newstrader.web import metrics

log = structlog.get_logger(__name__)


def router(bot: BotApi) -> APIRouter:
    routes = APIRouter()
    latency_sync = metrics.LatencySync()

    @routes.get("/metrics", response_class=Response)
    async def prometheus() -> Response:
        """Prometheus exposition (token required like every data route)."""
        try:
            await latency_sync.sync(bot.journal)
        except Exception as exc:  # the other metrics are still worth serving
            log.warning("metrics_latency_sync_failed", error=repr(exc))
        metrics.set_paused(await bot.paused())
        try:
            cluster = await bot.cluster_state()
        except Exception as exc:  # the stream may be unreachable; the rest still serves
            log.warning("metrics_cluster_failed", error=repr(exc))
            cluster = None
        if cluster is not None:
            metrics.set_cluster(cluster.instance, cluster.configured, cluster.owned, cluster.bus_lag)
        body, content_type = metrics.render()
        return Response(content=body, media_type=content_type)

    return routes
