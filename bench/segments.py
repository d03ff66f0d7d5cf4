"""segment-svc at a million contacts: import, preview, evaluation.

    uv run python bench/segments.py [--contacts 1000000]

One real segment-svc process on the real Kafka and PostgreSQL. The bench writes an NDJSON
file of contacts with varied attributes (seeded: the same file every run), then times
  (a) `POST /api/contacts/import` of the whole file, streamed, until the report arrives;
  (b) `GET /api/segments/{id}/preview` of three representative criteria (median of 5);
  (c) a campaign.activated for a broad segment, until the last segment.evaluated batch is
      on the topic (matched contacts per second, publication included).
The contact.changed events of the import are relayed in between and timed too, so that
they do not share the CPU with (b) and (c). The service's peak RSS is sampled throughout, and
the CPU shares of the service, PostgreSQL and the Kafka broker (1.0 = one core of two), and
during the import those of the whole machine and of what the hypervisor stole.
Targets (issue 4): import >= 50,000 contacts/s, evaluation >= 200,000 matched/s, RSS < 300 MB.
"""

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import cpu_seconds_of, fresh_topics, machine_busy, message_count, report, running, servers, until  # noqa: E402

from contracts import topics  # noqa: E402
from servicekit.kafka import Topics  # noqa: E402
from tests.support.events import activation  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

ZONES = ["Europe/Paris", "Europe/Berlin", "America/New_York", "America/Los_Angeles", "Asia/Tokyo", "UTC", None]
COUNTRIES = ["FR", "DE", "US", "GB", "ES", "IT", "JP", "BR", "CA", "NL", "SE", "PL"]
TAGS = ["news", "sale", "beta", "events", "vip-club"]
DOMAINS = [f"mail{i}.example.com" for i in range(200)] + ["gmail.com", "outlook.com", "yahoo.fr"]

CRITERIA = {
    "one attribute (plan is pro)": {
        "operator": "AND", "conditions": [{"field": "attributes.plan", "op": "eq", "value": "pro"}]},
    "three conditions (FR or DE, 30 and over, opted in)": {
        "operator": "AND", "conditions": [
            {"field": "attributes.country", "op": "in", "value": ["FR", "DE"]},
            {"field": "attributes.age", "op": "gte", "value": 30},
            {"field": "marketing_opt_in", "op": "eq", "value": True}]},
    "nested groups with dates and arrays": {
        "operator": "OR", "conditions": [
            {"operator": "AND", "conditions": [
                {"field": "attributes.plan", "op": "eq", "value": "enterprise"},
                {"field": "attributes.signed_up", "op": "after", "value": "2025-06-01"}]},
            {"operator": "AND", "conditions": [
                {"field": "attributes.vip", "op": "eq", "value": True},
                {"field": "attributes.tags", "op": "contains", "value": "beta"}]}]},
}
# Evaluated in phase (c): most contacts, as a campaign to a whole list would be.
BROAD = {"operator": "AND", "conditions": [{"field": "attributes.age", "op": "gte", "value": 25}]}


def contacts_file(count: int) -> Path:
    path = Path(f"/tmp/bench-contacts-{count}.ndjson")
    if path.exists():
        return path
    rng = random.Random(7)
    first_day = date(2023, 1, 1)
    with path.open("w") as out:
        for i in range(count):
            attributes = {
                "plan": rng.choices(["free", "pro", "enterprise"], [6, 3, 1])[0],
                "age": rng.randint(18, 80), "country": rng.choice(COUNTRIES),
                "signed_up": (first_day + timedelta(days=rng.randrange(1000))).isoformat(),
                "score": round(rng.random() * 100, 2), "vip": rng.random() < 0.05,
                "tags": rng.sample(TAGS, rng.randint(0, 3)),
            }
            out.write(json.dumps({
                "email": f"contact{i}@{rng.choice(DOMAINS)}", "first_name": rng.choice(["Ada", "Grace", "Alan", "Edsger"]),
                "last_name": rng.choice(["Lovelace", "Hopper", "Turing", "Dijkstra"]),
                "timezone": rng.choice(ZONES), "marketing_opt_in": rng.random() < 0.65, "attributes": attributes,
            }) + "\n")
    return path


async def import_contacts(http: aiohttp.ClientSession, base: str, path: Path) -> tuple[float, dict]:
    started = time.monotonic()
    with path.open("rb") as body:
        async with http.post(f"{base}/api/contacts/import", data=body,
                             headers={"Content-Type": "application/x-ndjson"}) as answer:
            result = await answer.json()
    return time.monotonic() - started, result


async def preview(http: aiohttp.ClientSession, base: str, criteria: dict) -> dict:
    async with http.post(f"{base}/api/segments", json={"name": "bench", "criteria": criteria}) as answer:
        segment = await answer.json()
    timings = []
    for _ in range(5):
        started = time.monotonic()
        async with http.get(f"{base}/api/segments/{segment['id']}/preview") as answer:
            result = await answer.json()
        timings.append(time.monotonic() - started)
    return {"median_ms": round(statistics.median(timings) * 1000, 1), "max_ms": round(max(timings) * 1000, 1),
            "count": result["count"], "opted_in": result["opted_in"]}


async def main(count: int) -> None:
    admin_url, bootstrap = servers()
    prefix = await fresh_topics(bootstrap)
    print(f"writing {count:,} contacts ...", flush=True)
    path = contacts_file(count)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with running("segment_svc", "segment.contacts", admin_url, bootstrap, prefix,
                       HTTP_PORT=str(port)) as (service, publisher, db), \
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3600)) as http:
        await until(lambda: _healthy(http, base), "segment-svc healthy", 60)
        print("importing ...", flush=True)
        import_cpu, import_db_cpu, (busy, stolen) = service.cpu_seconds(), cpu_seconds_of("postgres"), machine_busy()
        import_seconds, imported = await import_contacts(http, base, path)
        import_cpu, import_db_cpu = service.cpu_seconds() - import_cpu, cpu_seconds_of("postgres") - import_db_cpu
        busy, stolen = (now - then for now, then in zip(machine_busy(), (busy, stolen), strict=True))
        assert imported["inserted"] == count and imported["rejected"] == 0, {k: imported[k] for k in list(imported)[:3]}

        print("relaying contact.changed ...", flush=True)
        started = time.monotonic()
        changed = Topics(prefix).physical(topics.CONTACT_CHANGED)
        await until(lambda: _at_least(bootstrap, changed, count), "contact.changed relayed", 1800, every=0.5)
        relay_seconds = time.monotonic() - started

        print("previewing ...", flush=True)
        previews = {name: await preview(http, base, criteria) for name, criteria in CRITERIA.items()}

        print("evaluating ...", flush=True)
        async with http.post(f"{base}/api/segments", json={"name": "broad", "criteria": BROAD}) as answer:
            segment_id = (await answer.json())["id"]
        run = activation(segment_id)
        evaluated_topic = Topics(prefix).physical(topics.SEGMENT_EVALUATED)
        started, cpu, db_cpu, broker_cpu = (time.monotonic(), service.cpu_seconds(), cpu_seconds_of("postgres"),
                                            cpu_seconds_of("java"))
        await publisher.publish(run)
        matched = await until(lambda: db.fetchval("SELECT total_matched FROM segment.evaluations WHERE run_id = $1",
                                                  run.run_id), "the last segment.evaluated batch", 1800, every=0.05)
        evaluate_seconds = time.monotonic() - started
        evaluate_cpu = service.cpu_seconds() - cpu
        evaluate_db_cpu, evaluate_broker_cpu = cpu_seconds_of("postgres") - db_cpu, cpu_seconds_of("java") - broker_cpu
        batches = await message_count(bootstrap, evaluated_topic)
    report("segments", {
        "contacts": count, "file_mb": round(path.stat().st_size / 2**20, 1),
        "import_seconds": round(import_seconds, 2), "imported_per_second": round(count / import_seconds),
        "import_service_cpu_share": round(import_cpu / import_seconds, 2),
        "import_postgres_cpu_share": round(import_db_cpu / import_seconds, 2),
        "import_machine_cpu_share": round(busy / import_seconds, 2),
        "import_stolen_cpu_share": round(stolen / import_seconds, 2),
        "contact_changed_relay_seconds": round(relay_seconds, 2),
        "contact_changed_per_second": round(count / relay_seconds),
        "previews": previews,
        "evaluation": {"matched": matched, "batches": batches, "seconds": round(evaluate_seconds, 2),
                       "matched_per_second": round(matched / evaluate_seconds),
                       "service_cpu_share": round(evaluate_cpu / evaluate_seconds, 2),
                       "postgres_cpu_share": round(evaluate_db_cpu / evaluate_seconds, 2),
                       "kafka_cpu_share": round(evaluate_broker_cpu / evaluate_seconds, 2)},
        "peak_rss_mb": round(service.peak_rss_mb, 1),
        "targets": {"imported_per_second": 50000, "preview_ms": 1000, "matched_per_second": 200000,
                    "peak_rss_mb": 300},
    })


async def _healthy(http: aiohttp.ClientSession, base: str) -> bool:
    try:
        async with http.get(f"{base}/healthz") as answer:
            return answer.status == 200
    except aiohttp.ClientError:
        return False


async def _at_least(bootstrap: str, topic: str, expected: int) -> bool:
    return await message_count(bootstrap, topic) >= expected


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    asyncio.run(main(parser.parse_args().contacts))
