"""Wires flow-engine together: its repository and its routes."""

from contextlib import asynccontextmanager
from pathlib import Path

from flow_engine import http
from flow_engine.adapters.postgres import FlowRepository
from servicekit.wiring import Service


@asynccontextmanager
async def adapters(settings, pool, publisher):
    yield {"flows": FlowRepository(pool)}


SERVICE = Service(
    name="flow-engine", schema="flow", migrations=Path(__file__).parent / "migrations", adapters=adapters,
    routes=http.routes, errors=http.ERRORS, kafka=False,
)
