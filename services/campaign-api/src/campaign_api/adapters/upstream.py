"""segment-svc and flow-engine as seen from campaign-api: lookups, and the gateway proxy
that streams requests and answers through unchanged."""

from uuid import UUID

import aiohttp
import structlog
from aiohttp import web
from pydantic import TypeAdapter

from campaign_api.domain import SegmentNotFound, UpstreamUnavailable
from contracts.steps import Step
from servicekit.http import Problem

log = structlog.get_logger()
_STEPS = TypeAdapter(list[Step])
# Hop-by-hop headers (RFC 9110 7.6.1) and those aiohttp recomputes are not forwarded.
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host",
        "content-length", "proxy-authorization", "proxy-authenticate", "authorization"}
REQUEST_ID = "X-Request-Id"


class Upstreams:
    def __init__(self, session: aiohttp.ClientSession, segment_svc_url: str, flow_engine_url: str) -> None:
        self._session = session
        self.segment_svc_url = segment_svc_url.rstrip("/")
        self.flow_engine_url = flow_engine_url.rstrip("/")

    async def _get(self, url: str) -> dict | None:
        try:
            async with self._session.get(url) as response:
                if response.status == 404:
                    return None
                if response.status >= 400:
                    raise UpstreamUnavailable(f"{url} answered {response.status}")
                return await response.json()
        except (aiohttp.ClientError, TimeoutError) as error:
            raise UpstreamUnavailable(f"{url}: {error!r}") from None

    async def require_segment(self, segment_id: UUID) -> None:
        if await self._get(f"{self.segment_svc_url}/api/segments/{segment_id}") is None:
            raise SegmentNotFound(segment_id)

    async def flow_steps(self, flow_id: UUID) -> list | None:
        """The flow's steps, or None when there is no such flow."""
        flow = await self._get(f"{self.flow_engine_url}/api/flows/{flow_id}")
        return None if flow is None else _STEPS.validate_python(flow["steps"])

    async def openapi_documents(self) -> list[dict]:
        """segment-svc's and flow-engine's own OpenAPI documents; those that do not answer
        are left out (the gateway's document then lacks their routes)."""
        documents = []
        for base in (self.segment_svc_url, self.flow_engine_url):
            try:
                if document := await self._get(f"{base}/api/openapi.json"):
                    documents.append(document)
            except UpstreamUnavailable as error:
                log.warning("openapi_upstream_unavailable", error=str(error))
        return documents

    def base_for(self, path: str) -> str:
        if path.startswith("/api/flows"):
            return self.flow_engine_url
        return self.segment_svc_url

    async def proxy(self, request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        headers[REQUEST_ID] = request[REQUEST_ID]
        url = self.base_for(request.path) + request.path_qs
        try:
            async with self._session.request(
                request.method, url, headers=headers, data=request.content if request.body_exists else None
            ) as upstream:
                answer = web.StreamResponse(
                    status=upstream.status,
                    reason=upstream.reason,
                    headers={k: v for k, v in upstream.headers.items() if k.lower() not in _HOP}
                    | {REQUEST_ID: request[REQUEST_ID]},
                )
                await answer.prepare(request)
                async for chunk in upstream.content.iter_chunked(64 * 1024):
                    await answer.write(chunk)
                await answer.write_eof()
                return answer
        except (aiohttp.ClientConnectionError, TimeoutError) as error:
            raise Problem(503, "Service unavailable", f"{url} did not answer: {error!r}") from None
