"""What the mailer counts for ops dashboards, served at /metrics (Prometheus text)."""

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

REGISTRY = CollectorRegistry()
SENDS = Counter("mailer_sends", "Sends handled, by outcome", ["status"], registry=REGISTRY)
RESENT_AFTER_CRASH = Counter(
    "mailer_resent_after_crash", "Sends found mid-transaction after a crash and sent again", registry=REGISTRY
)


async def serve_metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})
