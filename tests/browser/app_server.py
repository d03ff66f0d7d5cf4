"""The built app served as the gateway will serve it, until it does: `services/frontend/dist`
at `/` (index.html for any other path that is not under /api), and `/api` proxied to the
System's gateway with the test's API key (the browser has no session to offer yet).
Test support only: replaced by the gateway serving the app in the next phase."""

from pathlib import Path

import aiohttp
from aiohttp import web

from tests.support.ports import free_port
from tests.support.system import API_KEY

DIST = Path(__file__).resolve().parents[2] / "services" / "frontend" / "dist"
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length",
        "content-encoding"}


class AppServer:
    def __init__(self, gateway: str, dist: Path = DIST) -> None:
        self.gateway = gateway.rstrip("/")
        self.dist = dist
        self.port = free_port()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> "AppServer":
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{tail:.*}", self._proxy)
        app.router.add_static("/assets", self.dist / "assets")
        app.router.add_get("/{tail:.*}", self._index)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
        if self._session:
            await self._session.close()

    async def _index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(self.dist / "index.html", headers={"Cache-Control": "no-store"})

    async def _proxy(self, request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        headers["Authorization"] = f"Bearer {API_KEY}"
        body = await request.read() if request.body_exists else None
        async with self._session.request(request.method, self.gateway + request.path_qs, headers=headers,
                                         data=body) as upstream:
            payload = await upstream.read()
            return web.Response(status=upstream.status, body=payload,
                                headers={k: v for k, v in upstream.headers.items() if k.lower() not in _HOP})
