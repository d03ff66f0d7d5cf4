"""The report's recipients and activity, the status page, and a flow's email step rendered
for a contact and sent as a test: the handlers on in-memory fakes."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from pydantic import ValidationError

from campaign_api import handlers
from campaign_api.domain import (
    CampaignNotFound,
    ContactNotFound,
    FlowNotFound,
    StepNotFound,
    TemplateNotRenderable,
    TestSendRequest,
)
from contracts.events import EmailTest
from contracts.steps import EmailContent, SendEmailStep, WaitConfig, WaitStep

from .fakes import World
from .test_handlers import a_campaign

T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def world() -> World:
    return World()


def sends(world: World, campaign, *rows):
    for contact_id, status, at in rows:
        world.recipients.outcomes.append({
            "send_id": uuid4(), "campaign_id": campaign.id, "contact_id": contact_id, "step_index": 0,
            "status": status, "attempt": 1, "smtp_code": 250 if status == "sent" else None, "smtp_message": None,
            "updated_at": at})


async def test_recipients_come_a_page_at_a_time_with_their_addresses(world):
    campaign = await a_campaign(world)
    ann, gone = uuid4(), uuid4()
    world.upstreams.contacts[ann] = {"email": "ann@example.com"}
    sends(world, campaign, (ann, "sent", T0), (gone, "failed", T0 + timedelta(seconds=1)), (None, "sent", T0))
    first = await handlers.list_recipients(campaign.id, None, None, 2, world.campaigns, world.recipients,
                                           world.upstreams)
    assert len(first) == 2
    rest = await handlers.list_recipients(campaign.id, None, (first[-1].updated_at, first[-1].send_id), 2,
                                          world.campaigns, world.recipients, world.upstreams)
    everyone = first + rest
    assert len(everyone) == 3 and len({r.send_id for r in everyone}) == 3
    by_status = {r.status: r for r in everyone if r.contact_id}
    assert by_status["sent"].email == "ann@example.com"
    assert by_status["failed"].email is None, "a contact that is gone has no address"
    failed = await handlers.list_recipients(campaign.id, "failed", None, 10, world.campaigns, world.recipients,
                                            world.upstreams)
    assert [r.contact_id for r in failed] == [gone]
    with pytest.raises(CampaignNotFound):
        await handlers.list_recipients(uuid4(), None, None, 10, world.campaigns, world.recipients, world.upstreams)


async def test_activity_counts_sends_and_engagement_per_bucket(world):
    campaign = await a_campaign(world)
    sends(world, campaign, (uuid4(), "sent", T0), (uuid4(), "sent", T0 + timedelta(seconds=30)),
          (uuid4(), "failed", T0 + timedelta(minutes=1)), (uuid4(), "deferred", T0))
    world.recipients.engagements += [
        {"campaign_id": campaign.id, "kind": "open", "at": T0 + timedelta(minutes=1)},
        {"campaign_id": campaign.id, "kind": "machine_open", "at": T0 + timedelta(minutes=1)},
        {"campaign_id": campaign.id, "kind": "click", "at": T0 + timedelta(minutes=2)},
    ]
    minutes = await handlers.campaign_activity(campaign.id, "minute", world.campaigns, world.recipients)
    assert [(b.at.minute, b.sent, b.failed, b.opens, b.clicks) for b in minutes.buckets] == [
        (0, 2, 0, 0, 0), (1, 0, 1, 1, 0), (2, 0, 0, 0, 1)], "deferred is not a send yet, a machine open no open"
    hours = await handlers.campaign_activity(campaign.id, "hour", world.campaigns, world.recipients)
    assert [(b.sent, b.failed, b.opens, b.clicks) for b in hours.buckets] == [(2, 1, 1, 1)]


async def test_the_status_says_who_is_down_the_lag_and_the_rate(world):
    world.upstreams.health = {
        "segment-svc": {"status": "ok", "degraded": {}},
        "flow-engine": None,
        "scheduler": {"status": "degraded", "degraded": {"kafka": "refused"}, "lag_seconds": 1.5, "in_flight": 3},
        "mailer": {"status": "ok"},
    }
    status = await handlers.report_status({"status": "ok"}, world.upstreams)
    assert {name: s.status for name, s in status.services.items()} == {
        "campaign-api": "ok", "segment-svc": "ok", "flow-engine": "down", "scheduler": "degraded", "mailer": "ok"}
    assert (status.scheduler.lag_seconds, status.scheduler.in_flight) == (1.5, 3)
    assert status.mailer.emails_per_second is None, "the mailer does not report a rate"


FLOW = [SendEmailStep(type="SEND_EMAIL", config=EmailContent(
            subject="Hello {{ first_name }}", html="<p>Hi {{ first_name }} {{ attributes.plan }}</p>",
            text="Hi {{ first_name | default('there') }}")),
        WaitStep(type="WAIT", config=WaitConfig(days=1)),
        SendEmailStep(type="SEND_EMAIL", config=EmailContent(subject="{{ first_name + 1 }}", text="x"))]


def a_flow_and_contact(world: World):
    flow_id, contact_id = uuid4(), uuid4()
    world.upstreams.flows[flow_id] = FLOW
    world.upstreams.contacts[contact_id] = {"id": str(contact_id), "email": "ann@example.com",
                                            "first_name": "<Ann>", "attributes": {"plan": "pro"}}
    return flow_id, contact_id


async def test_a_step_renders_for_a_contact_as_the_mailer_renders_it(world):
    flow_id, contact_id = a_flow_and_contact(world)
    email = await handlers.render_step(flow_id, 0, contact_id, world.upstreams)
    assert email.subject == "Hello <Ann>"
    assert email.html == "<p>Hi &lt;Ann&gt; pro</p>", "the HTML part escapes what it inserts"
    assert email.text == "Hi <Ann>"


async def test_what_cannot_render_names_its_part_or_what_is_missing(world):
    flow_id, contact_id = a_flow_and_contact(world)
    with pytest.raises(TemplateNotRenderable) as error:
        await handlers.render_step(flow_id, 2, contact_id, world.upstreams)
    assert error.value.field == "steps[2].config.subject"
    with pytest.raises(StepNotFound):
        await handlers.render_step(flow_id, 1, contact_id, world.upstreams)  # a wait
    with pytest.raises(StepNotFound):
        await handlers.render_step(flow_id, 3, contact_id, world.upstreams)
    with pytest.raises(FlowNotFound):
        await handlers.render_step(uuid4(), 0, contact_id, world.upstreams)
    with pytest.raises(ContactNotFound):
        await handlers.render_step(flow_id, 0, uuid4(), world.upstreams)


async def test_a_test_send_publishes_email_test_for_the_mailer(world):
    flow_id, contact_id = a_flow_and_contact(world)
    ask = TestSendRequest(to=["qa@example.com", "lead@example.com"], contact_id=contact_id)
    accepted = await handlers.send_test(flow_id, 0, ask, "ann@example.com", world.uow, world.upstreams)
    [test] = world.tx.outbox.of(EmailTest)
    assert (test.test_id, test.to, test.step_index) == (accepted.test_id, ["qa@example.com", "lead@example.com"], 0)
    assert test.recipient.first_name == "<Ann>" and test.content.subject == "Hello {{ first_name }}"
    assert test.requested_by == "ann@example.com"
    with pytest.raises(TemplateNotRenderable):
        await handlers.send_test(flow_id, 2, ask, None, world.uow, world.upstreams)
    assert len(world.tx.outbox.of(EmailTest)) == 1, "a step that cannot render is not sent"


def test_a_test_goes_to_one_to_ten_valid_addresses():
    for to in ([], ["a@example.com"] * 11, ["not-an-address"]):
        with pytest.raises(ValidationError, match="to"):
            TestSendRequest(to=to)


async def test_a_contacts_engagement_counts_its_sends_and_lists_its_last_twenty_engagements(world):
    campaign = await a_campaign(world)
    ann, bob = uuid4(), uuid4()
    sends(world, campaign, (ann, "sent", T0), (ann, "sent", T0), (ann, "failed", T0), (bob, "sent", T0),
          (ann, "deferred", T0))
    for minute in range(25):
        world.recipients.engagements.append({"send_id": uuid4(), "campaign_id": campaign.id, "step_index": 0,
                                             "contact_id": ann, "kind": "click" if minute % 5 == 0 else "open",
                                             "url": "https://shop.example/" if minute % 5 == 0 else None,
                                             "at": T0 + timedelta(minutes=minute)})
    world.recipients.engagements.append({"send_id": uuid4(), "campaign_id": campaign.id, "step_index": 0,
                                         "contact_id": ann, "kind": "machine_open", "url": None,
                                         "at": T0 + timedelta(hours=1)})
    world.recipients.engagements.append({"send_id": uuid4(), "campaign_id": campaign.id, "step_index": 1,
                                         "contact_id": ann, "kind": "unsubscribe", "url": None,
                                         "at": T0 + timedelta(minutes=30)})

    report = await handlers.report_engagement(ann, world.contact_history)
    assert (report.sent, report.failed, report.opens, report.clicks, report.unsubscribes) == (2, 1, 20, 5, 1)
    assert report.last_engaged_at == T0 + timedelta(minutes=30), "a machine's open is not the person's"
    assert len(report.recent) == 20 and report.recent[0].kind == "unsubscribe"
    assert [e.at for e in report.recent] == sorted((e.at for e in report.recent), reverse=True)
    assert report.recent[1].at == T0 + timedelta(minutes=24) and report.recent[5].url == "https://shop.example/"

    nobody = await handlers.report_engagement(uuid4(), world.contact_history)
    assert (nobody.sent, nobody.failed, nobody.opens, nobody.clicks, nobody.unsubscribes, nobody.recent,
            nobody.last_engaged_at) == (0, 0, 0, 0, 0, [], None), "an id never sent to: zeros"
