"""Applies every service's migrations (`make migrate`); the services also do it at start-up."""

import asyncio
import os
from importlib.resources import files

from servicekit.database import SHARED_SQL, migrate

SCHEMAS = {  # schema -> (package holding migrations/, uses the outbox)
    "campaign_api": ("campaign_api", True),
    "segment": ("segment_svc", True),
    "flow": ("flow_engine", False),
    "scheduler": ("scheduler", True),
    "mailer": ("mailer", True),
}


async def main() -> None:
    url = os.environ["DATABASE_URL"]
    for schema, (package, outbox) in SCHEMAS.items():
        directories = ([SHARED_SQL] if outbox else []) + [files(package) / "migrations"]
        applied = await migrate(url, schema, *directories)
        print(f"{schema}: {len(applied)} applied")


if __name__ == "__main__":
    asyncio.run(main())
