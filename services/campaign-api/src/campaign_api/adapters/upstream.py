"""segment-svc and flow-engine as seen from campaign-api: lookups, every service's health,
and the gateway proxy that streams requests and answers through unchanged."""

import asyncio
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
# Hop-by-hop headers (RFC 9110 7.6.1) and those aiohttp recomputes are not forwarded, nor
# the caller's credentials (API key, session cookie, CSRF token): they are the gateway's.
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host",
        "content-length", "proxy-authorization", "proxy-authenticate", "authorization", "cookie",
        "x-csrf-token", "set-cookie"}
REQUEST_ID = "X-Request-Id"
REQUEST_ID_KEY = web.RequestKey("request_id", str)  # the request's id, on the request


class Upstreams:
    def __init__(self, session: aiohttp.ClientSession, segment_svc_url: str, flow_engine_url: str,
                 scheduler_url: str = "http://127.0.0.1:8083", mailer_url: str = "http://127.0.0.1:8084") -> None:
        self._session = session
        self.segment_svc_url = segment_svc_url.rstrip("/")
        self.flow_engine_url = flow_engine_url.rstrip("/")
        self.scheduler_url = scheduler_url.rstrip("/")
        self.mailer_url = mailer_url.rstrip("/")

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

    async def flow(self, flow_id: UUID) -> dict | None:
        """The flow as flow-engine answers it (name, steps), or None."""
        return await self._get(f"{self.flow_engine_url}/api/flows/{flow_id}")

    async def contact(self, contact_id: UUID) -> dict | None:
        """The contact as segment-svc answers it, or None."""
        return await self._get(f"{self.segment_svc_url}/api/contacts/{contact_id}")

    async def emails_of(self, contact_ids: set[UUID]) -> dict[UUID, str]:
        """The addresses of these contacts now (a page's worth: one request each, ten at a
        time); contacts that are gone are left out."""
        gate = asyncio.Semaphore(10)

        async def one(contact_id: UUID) -> tuple[UUID, dict | None]:
            async with gate:
                return contact_id, await self.contact(contact_id)

        found = await asyncio.gather(*(one(contact_id) for contact_id in contact_ids))
        return {contact_id: contact["email"] for contact_id, contact in found if contact}

    async def healths(self, own: dict) -> dict[str, dict | None]:
        """Every service's /healthz answer (campaign-api's is `own`); None where a service
        did not answer, or not with JSON, within 3 seconds."""
        bases = {"segment-svc": self.segment_svc_url, "flow-engine": self.flow_engine_url,
                 "scheduler": self.scheduler_url, "mailer": self.mailer_url}

        async def one(base: str) -> dict | None:
            try:
                async with self._session.get(f"{base}/healthz", timeout=aiohttp.ClientTimeout(total=3)) as response:
                    body = await response.json(content_type=None)
                    return body if isinstance(body, dict) else None
            except (aiohttp.ClientError, TimeoutError, ValueError):
                return None

        answers = await asyncio.gather(*(one(base) for base in bases.values()))
        return {"campaign-api": own, **dict(zip(bases, answers, strict=True))}

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
        headers[REQUEST_ID] = request[REQUEST_ID_KEY]
        url = self.base_for(request.path) + request.path_qs
        try:
            async with self._session.request(
                request.method, url, headers=headers, data=request.content if request.body_exists else None
            ) as upstream:
                answer = web.StreamResponse(
                    status=upstream.status,
                    reason=upstream.reason,
                    headers={k: v for k, v in upstream.headers.items() if k.lower() not in _HOP}
                    | {REQUEST_ID: request[REQUEST_ID_KEY]},
                )
                await answer.prepare(request)
                async for chunk in upstream.content.iter_chunked(64 * 1024):
                    await answer.write(chunk)
                await answer.write_eof()
                return answer
        except (aiohttp.ClientConnectionError, TimeoutError) as error:
            raise Problem(503, "Service unavailable", f"{url} did not answer: {error!r}") from None
