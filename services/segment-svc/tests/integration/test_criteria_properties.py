"""Random criteria trees evaluated by the real PostgreSQL (the SQL the service compiles)
and by an independent Python evaluator of their documented meaning: the same contacts."""

import asyncio
import json
import random
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import segment_svc
from segment_svc.adapters.postgres import Evaluations
from segment_svc.criteria import Group
from servicekit.database import create_pool, migrate
from tests.support.servers import create_database, drop_database

from .reference import matches

pytestmark = pytest.mark.integration

FIELDS = ["email", "first_name", "last_name", "timezone", "marketing_opt_in", "created_at", "attributes.plan",
          "attributes.age", "attributes.tags", "attributes.joined", "attributes.vip", "attributes.missing"]
OPS = ["eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "starts_with", "exists", "not_exists",
       "before", "after", "within_last_days"]
VALUES = ["pro", "a", "Ada", "Ad", "ada", "c1", 30, 18.5, 0, -1, True, False, None, ["pro", "free"], [18, 30],
          ["a", "Ada"], "2024-06-01", "2025-01-01T00:00:00Z", 7, 45]


def contacts(now: datetime) -> list[dict]:
    rng = random.Random(4)  # random, and the same every run
    people = []
    for i in range(160):
        attributes = {}
        for key, pool in {
            "plan": ["pro", "free", "Pro", ""],
            "age": [18, 30, 30.0, 45.5, -1, "30", True],
            "tags": [["a", "b"], ["b"], [], "a", ["a", 1], [["a"]]],
            "joined": ["2024-01-15", "2025-06-01T10:00:00Z", "now", "not a date", 20240115, None],
            "vip": [True, False, None, "true"],
        }.items():
            if rng.random() < 0.7:
                attributes[key] = rng.choice(pool)
        people.append({
            "id": uuid.uuid4(), "email": f"c{i}@{rng.choice(['example.com', 'mail.test'])}",
            "first_name": rng.choice(["Ada", "ada", "Grace", "Adam", "", None]),
            "last_name": rng.choice(["Lovelace", "Hopper", None]), "timezone": rng.choice(["Europe/Paris", "UTC", None]),
            "marketing_opt_in": rng.random() < 0.5, "created_at": now - timedelta(days=rng.uniform(0, 60)),
            "attributes": attributes,
        })
    return people


class Database:
    """A database with the contacts, driven from a loop of its own (hypothesis runs the test
    synchronously, many times)."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.now = datetime.now(UTC)
        self.contacts = contacts(self.now)
        self.url, self.pool = self.run(self._open())

    def run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    async def _open(self):
        url = await create_database(self.admin_url)
        await migrate(url, "segment", Path(segment_svc.__file__).parent / "migrations")
        pool = await create_pool(url, "segment")
        await pool.executemany(
            "INSERT INTO contacts (id, email, first_name, last_name, timezone, marketing_opt_in, attributes,"
            " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            [(c["id"], c["email"], c["first_name"], c["last_name"], c["timezone"], c["marketing_opt_in"],
              c["attributes"], c["created_at"]) for c in self.contacts],
        )
        return url, pool

    async def matching(self, criteria: Group) -> set:
        found = set()
        async for rows in Evaluations(self.pool).matches(criteria, 1000, now=self.now):
            found |= {uuid.UUID(json.loads(row["recipient"])["contact_id"]) for row in rows}
        return found

    def close(self) -> None:
        self.run(self.pool.close())
        self.run(drop_database(self.admin_url, self.url))
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture(scope="module")
def database(postgres_url):
    db = Database(postgres_url)
    yield db
    db.close()


conditions = st.fixed_dictionaries({"field": st.sampled_from(FIELDS), "op": st.sampled_from(OPS),
                                    "value": st.sampled_from(VALUES)})
trees = st.recursive(
    conditions,
    lambda children: st.fixed_dictionaries({"operator": st.sampled_from(["AND", "OR"]),
                                            "conditions": st.lists(children, min_size=1, max_size=4)}),
    max_leaves=8,
).map(lambda node: node if "operator" in node else {"operator": "AND", "conditions": [node]})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                   HealthCheck.function_scoped_fixture])
@given(tree=trees)
def test_sql_and_the_reference_evaluator_pick_the_same_contacts(database, tree):
    try:
        criteria = Group.model_validate(tree)
    except ValidationError:
        assume(False)  # the API refuses such trees with a 422; only valid ones are evaluated
    # The compiler reads the validated tree; the reference reads the JSON a client sent.
    plain = json.loads(json.dumps(tree))
    expected = {c["id"] for c in database.contacts if matches(plain, c, database.now)}
    assert database.run(database.matching(criteria)) == expected, tree
