"""Applies every service's migrations (`make migrate`), as each service's declaration
says (servicekit.wiring.Service); the services also do it at start-up."""

import asyncio
import os

from campaign_api.bootstrap import SERVICE as CAMPAIGN_API
from flow_engine.bootstrap import SERVICE as FLOW_ENGINE
from mailer.bootstrap import SERVICE as MAILER
from scheduler.bootstrap import SERVICE as SCHEDULER
from segment_svc.bootstrap import SERVICE as SEGMENT_SVC
from servicekit.database import migrate


async def main() -> None:
    url = os.environ["DATABASE_URL"]
    for service in (CAMPAIGN_API, SEGMENT_SVC, FLOW_ENGINE, SCHEDULER, MAILER):
        applied = await migrate(url, service.schema, *service.migration_owners())
        print(f"{service.schema}: {len(applied)} applied")


if __name__ == "__main__":
    asyncio.run(main())
