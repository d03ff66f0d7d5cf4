"""Flows in Postgres (schema `flow`)."""

from uuid import UUID, uuid4

import asyncpg

from flow_engine.domain import Flow, FlowDraft, FlowNotFound
from servicekit.database import keyset_page

_COLUMNS = "id, name, steps, created_at, updated_at"


def _flow(row: asyncpg.Record) -> Flow:
    return Flow.model_validate(dict(row))


class FlowRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add(self, draft: FlowDraft) -> Flow:
        row = await self._pool.fetchrow(
            f"INSERT INTO flows (id, name, steps) VALUES ($1, $2, $3) RETURNING {_COLUMNS}",
            uuid4(),
            draft.name,
            draft.model_dump(mode="json")["steps"],
        )
        return _flow(row)

    async def get(self, flow_id: UUID) -> Flow:
        row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM flows WHERE id = $1", flow_id)
        if row is None:
            raise FlowNotFound(flow_id)
        return _flow(row)

    async def update(self, flow_id: UUID, draft: FlowDraft) -> Flow:
        row = await self._pool.fetchrow(
            f"UPDATE flows SET name = $2, steps = $3, updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
            flow_id,
            draft.name,
            draft.model_dump(mode="json")["steps"],
        )
        if row is None:
            raise FlowNotFound(flow_id)
        return _flow(row)

    async def delete(self, flow_id: UUID) -> None:
        if await self._pool.execute("DELETE FROM flows WHERE id = $1", flow_id) == "DELETE 0":
            raise FlowNotFound(flow_id)

    async def page(self, after: tuple | None, limit: int) -> list[Flow]:
        rows = await keyset_page(self._pool, f"SELECT {_COLUMNS} FROM flows WHERE true", after, limit)
        return [_flow(row) for row in rows]
