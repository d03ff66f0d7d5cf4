"""One running system for the end-to-end tests of a module: five service processes on a
database and topics of their own, and an SMTP server of the test's. Each test makes its
own contacts and campaigns, and looks only at its own recipients."""

import pytest

from tests.support.stack import running_system


@pytest.fixture(scope="module")
async def system(postgres_url, kafka_bootstrap, tmp_path_factory):
    """Retries a second apart, for the tests of deferrals."""
    async with running_system(postgres_url, kafka_bootstrap, tmp_path_factory.mktemp("logs"),
                              SMTP_RETRY_INITIAL_SECONDS="1", SMTP_RETRY_MAX_SECONDS="2") as running:
        yield running
