"""The human-readable API page at /api/docs: Swagger UI 5 (the files of the swagger-ui-py
package, served from here, so it works offline) reading /api/openapi.json."""

from pathlib import Path

import swagger_ui
from aiohttp import web

ASSETS = Path(swagger_ui.__file__).parent / "static"
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


def routes() -> list[web.AbstractRouteDef]:
    return [web.get("/api/docs", docs), web.get("/api/docs/", docs), web.static("/api/docs/static", ASSETS)]
