"""The human-readable API page at /api/docs: Swagger UI 5 (the files of the swagger-ui-py
package, served from here, so it works offline) reading /api/openapi.json."""

from pathlib import Path

import swagger_ui
from aiohttp import web

from servicekit.routes import Routes

ASSETS = Path(swagger_ui.__file__).parent / "static"
_FILES = frozenset(path.name for path in ASSETS.iterdir() if path.is_file())
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8"><title>Campaigns API</title>
  <link rel="stylesheet" href="/api/docs/static/swagger-ui.css">
  <link rel="icon" href="/api/docs/static/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/api/docs/static/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({url: "/api/openapi.json", dom_id: "#swagger-ui", deepLinking: true});
  </script>
</body>
</html>
"""


async def docs(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


async def asset(request: web.Request) -> web.FileResponse:
    # Only the package's own files, by name: nothing else on the disk can be reached.
    if request.match_info["name"] not in _FILES:
        raise web.HTTPNotFound()
    return web.FileResponse(ASSETS / request.match_info["name"])


def declare(routes: Routes) -> None:
    routes.get("/api/docs")(docs)
    routes.get("/api/docs/")(docs)
    routes.get("/api/docs/static/{name}")(asset)
