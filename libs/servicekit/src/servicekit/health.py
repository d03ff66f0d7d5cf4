"""What a service says of itself: on /healthz, the conditions that degrade it now (the
database away, the broker unreachable, SMTP refusing), set by whoever meets one and
cleared when it passes; on /metrics (Prometheus), how often each was met.

One registry per process: `HEALTH.degraded("database", "connection refused")` where a
failure is met and retried, `HEALTH.recovered("database")` once it passes. A degraded
service still answers 200: it is alive and catching up, not to be restarted."""

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

REGISTRY = CollectorRegistry()
RETRIES = Counter("infrastructure_retries", "Work retried because a server it needs failed", ["component"],
                  registry=REGISTRY)
DEGRADED = Gauge("degraded", "1 while the component is failing and its work is being retried", ["component"],
                 registry=REGISTRY)


class Health:
    def __init__(self) -> None:
        self._degraded: dict[str, str] = {}

    def degraded(self, component: str, reason: str) -> None:
        """`component` failed and what needs it is being retried; counted once per call."""
        self._degraded[component] = reason[:500]
        RETRIES.labels(component).inc()
        DEGRADED.labels(component).set(1)

    def recovered(self, component: str) -> None:
        if self._degraded.pop(component, None) is not None:
            DEGRADED.labels(component).set(0)

    def report(self) -> dict:
        return {"status": "degraded" if self._degraded else "ok", "degraded": dict(self._degraded)}


HEALTH = Health()


async def serve_metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})
