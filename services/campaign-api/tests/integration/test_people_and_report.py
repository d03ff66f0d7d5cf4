"""Accounts (made by the command's function), sessions, the recipients' pages and the
activity on the real PostgreSQL."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from campaign_api import handlers
from campaign_api.accounts import add_account
from campaign_api.adapters.passwords import Passwords
from campaign_api.adapters.postgres import (
    AccountRepository,
    CampaignRepository,
    CampaignTransaction,
    Recipients,
    SessionRepository,
)
from campaign_api.domain import Credentials, SignInRefused, session_key
from campaign_api.throttle import SignInThrottle
from contracts.enums import DeliveryStatus
from contracts.events import EmailStatus
from contracts.links import SendRef
from servicekit.uow import UnitOfWork

from .test_completion import active_campaign, api  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration
PASSWORD = "a long enough password"


async def test_an_account_made_by_the_command_signs_in_with_argon2(database_url, service_pool):
    account = await add_account(database_url, "Admin@Example.com", PASSWORD)
    assert account.password_hash.startswith("$argon2id$")
    assert await add_account(database_url, "other@example.com", PASSWORD, only_if_none=True) is None
    pool = await service_pool("campaign_api", "campaign_api")
    uow, accounts, passwords = UnitOfWork(pool, CampaignTransaction), AccountRepository(pool), Passwords()
    session, token = await handlers.sign_in(Credentials(email="admin@example.com", password=PASSWORD), "127.0.0.1",
                                            1, uow, accounts, passwords, SignInThrottle())
    assert session.email == "Admin@example.com", "the domain is kept in lower case"
    sessions = SessionRepository(pool)
    assert await handlers.session_of(token, sessions) == session
    stored = await pool.fetchval("SELECT token_hash FROM sessions")
    assert stored == session_key(token) and token.encode() not in stored
    with pytest.raises(SignInRefused):
        await handlers.sign_in(Credentials(email="admin@example.com", password="wrong"), "127.0.0.1", 1, uow, accounts,
                               passwords, SignInThrottle())
    await pool.execute("UPDATE sessions SET expires_at = now() - interval '1 second'")
    assert await handlers.session_of(token, sessions) is None
    await handlers.sign_out(token, uow)
    assert await pool.fetchval("SELECT count(*) FROM sessions") == 0


class Addresses:
    def __init__(self, emails: dict) -> None:
        self.emails = emails

    async def emails_of(self, contact_ids):
        return {c: self.emails[c] for c in contact_ids if c in self.emails}


async def test_recipients_and_activity_come_from_the_outcomes_and_engagements(api):  # noqa: F811
    campaign = await active_campaign(api)
    contacts = [uuid4() for _ in range(3)]
    events = [EmailStatus(send_id=uuid4(), campaign_id=campaign.id, run_id=campaign.run_id, step_index=0,
                          contact_id=contact, status=status, attempt=1, smtp_code=code, smtp_message=message)
              for contact, status, code, message in (
                  (contacts[0], DeliveryStatus.SENT, 250, "ok"),
                  (contacts[1], DeliveryStatus.FAILED, 550, "=no such user"),
                  (contacts[2], DeliveryStatus.SENT, 250, "ok"))]
    await handlers.record_outcomes(events, api.uow)
    await handlers.record_engagement(SendRef(campaign.id, campaign.run_id, 0, events[0].send_id, contacts[0]),
                                     "open", None, api.uow)
    recipients, campaigns = Recipients(api.pool), CampaignRepository(api.pool)
    upstreams = Addresses({contacts[0]: "ann@example.com"})
    first = await handlers.list_recipients(campaign.id, None, None, 2, campaigns, recipients, upstreams)
    rest = await handlers.list_recipients(campaign.id, None, (first[-1].updated_at, first[-1].send_id), 2,
                                          campaigns, recipients, upstreams)
    assert sorted(r.contact_id for r in first + rest) == sorted(contacts)
    by_contact = {r.contact_id: r for r in first + rest}
    assert by_contact[contacts[0]].email == "ann@example.com"
    assert (by_contact[contacts[1]].smtp_code, by_contact[contacts[1]].smtp_message) == (550, "=no such user")
    failed = await handlers.list_recipients(campaign.id, "failed", None, 50, campaigns, recipients, upstreams)
    assert [r.contact_id for r in failed] == [contacts[1]]

    activity = await handlers.campaign_activity(campaign.id, "minute", campaigns, recipients)
    assert sum(b.sent for b in activity.buckets) == 2 and sum(b.failed for b in activity.buckets) == 1
    assert sum(b.opens for b in activity.buckets) == 1
    now = datetime.now(UTC)
    assert all(now - timedelta(minutes=5) < b.at <= now for b in activity.buckets)


async def test_a_contacts_engagement_is_read_from_its_outcomes_and_engagements(service_pool):
    from campaign_api.adapters.postgres import ContactHistory

    pool = await service_pool("campaign_api", "campaign_api")
    ann, campaign_id, run_id = uuid4(), uuid4(), uuid4()
    at = datetime(2030, 1, 1, 9, tzinfo=UTC)
    for status in ("sent", "sent", "failed", "deferred"):
        await pool.execute("INSERT INTO send_outcomes (send_id, run_id, campaign_id, step_index, status, attempt,"
                           " contact_id) VALUES ($1, $2, $3, 0, $4, 1, $5)", uuid4(), run_id, campaign_id, status, ann)
    for minute, kind, url in ((0, "open", None), (1, "click", "https://shop.example/"), (2, "machine_open", None)):
        await pool.execute("INSERT INTO engagements (send_id, kind, campaign_id, step_index, contact_id, url, at)"
                           " VALUES ($1, $2, $3, 0, $4, $5, $6)", uuid4(), kind, campaign_id, ann, url,
                           at + timedelta(minutes=minute))
    report = await handlers.report_engagement(ann, ContactHistory(pool))
    assert (report.sent, report.failed, report.opens, report.clicks, report.unsubscribes) == (2, 1, 1, 1, 0)
    assert report.last_engaged_at == at + timedelta(minutes=1), "a machine's open is not the person's"
    assert [(e.kind, e.url) for e in report.recent] == [("click", "https://shop.example/"), ("open", None)]
    nobody = await handlers.report_engagement(uuid4(), ContactHistory(pool))
    assert (nobody.sent, nobody.opens, nobody.recent, nobody.last_engaged_at) == (0, 0, [], None)
