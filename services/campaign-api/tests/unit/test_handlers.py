"""campaign-api's handlers on in-memory fakes: the decisions, without servers."""

from datetime import date, time
from uuid import UUID, uuid4

import pytest

from campaign_api import handlers
from campaign_api.domain import (
    CampaignDraft,
    CampaignPatch,
    ChangedDuringActivation,
    InvalidDraft,
    InvalidTransition,
    NotEditable,
    NothingToSend,
    SegmentNotFound,
)
from contracts.enums import CampaignStatus as S
from contracts.enums import DeliveryStatus, EngagementKind
from contracts.events import (
    CampaignActivated,
    CampaignScheduled,
    CampaignStatusChanged,
    EmailEngagement,
    EmailStatus,
)
from contracts.links import SendRef
from contracts.steps import EmailContent, SendEmailStep, WaitConfig, WaitStep

from .fakes import World

CONTENT = EmailContent(subject="Hello", text="Hi")
FLOW = [SendEmailStep(type="SEND_EMAIL", config=EmailContent(subject="One", text="1")),
        WaitStep(type="WAIT", config=WaitConfig(days=2)),
        SendEmailStep(type="SEND_EMAIL", config=EmailContent(subject="Two", text="2"))]


@pytest.fixture
def world() -> World:
    return World()


def a_draft(world: World, **fields) -> CampaignDraft:
    segment = uuid4()
    world.upstreams.segments.add(segment)
    values = {"name": "c", "segment_id": segment, "start_date": date(2030, 1, 1), "start_time_of_day": time(9),
              "content": CONTENT} | fields
    return CampaignDraft(**values)


async def a_campaign(world: World, **fields):
    return await handlers.create_campaign(a_draft(world, **fields), world.uow, world.upstreams)


async def an_active_campaign(world: World, sends: int | None = None, **fields):
    created = await a_campaign(world, **fields)
    active = await handlers.change_status(created.id, S.ACTIVE, world.uow, world.campaigns, world.upstreams)
    if sends is not None:
        await handlers.record_scheduled(CampaignScheduled(campaign_id=active.id, run_id=active.run_id,
                                                          recipients=sends, sends=sends), world.uow)
    return active


def outcome(campaign, status=DeliveryStatus.SENT, send_id: UUID | None = None, attempt=1, step_index=0,
            run_id: UUID | None = None) -> EmailStatus:
    return EmailStatus(send_id=send_id or uuid4(), campaign_id=campaign.id, run_id=run_id or campaign.run_id,
                       step_index=step_index, contact_id=uuid4(), status=status, attempt=attempt)


def statuses(world: World, campaign_id: UUID) -> list[tuple[S, S]]:
    return [(e.previous, e.status) for e in world.tx.outbox.of(CampaignStatusChanged) if e.campaign_id == campaign_id]


async def status_of(world: World, campaign_id: UUID) -> S:
    return (await world.campaigns.get(campaign_id)).status


# Drafts


async def test_a_draft_is_created_after_its_segment_is_found_outside_any_transaction(world):
    campaign = await a_campaign(world)
    assert campaign.status is S.DRAFT and campaign.warnings == []
    assert [(kind, open_) for kind, _, open_ in world.upstreams.calls] == [("segment", False)]
    assert [h.status for h in await world.campaigns.history(campaign.id)] == [S.DRAFT]


async def test_an_unknown_segment_stores_nothing(world):
    draft = a_draft(world).model_copy(update={"segment_id": uuid4()})
    with pytest.raises(SegmentNotFound):
        await handlers.create_campaign(draft, world.uow, world.upstreams)
    assert world.campaigns.rows == {} and world.uow.locks == []


async def test_an_unknown_flow_is_dropped_with_a_warning(world):
    flow_id = uuid4()
    campaign = await a_campaign(world, flow_id=flow_id)
    assert campaign.flow_id is None
    assert campaign.warnings == [f"flow {flow_id} was not found: the campaign was saved without a flow"]


async def test_a_patch_replaces_the_fields_it_names_and_keeps_the_others(world):
    campaign = await a_campaign(world, description="kept")

    async def patch():
        return CampaignPatch(name="renamed")

    updated = await handlers.update_campaign(campaign.id, patch, world.uow, world.campaigns, world.upstreams)
    assert (updated.name, updated.description) == ("renamed", "kept")
    assert world.campaigns.locks == [campaign.id]


async def test_a_patch_that_leaves_an_invalid_draft_names_the_field(world):
    campaign = await a_campaign(world)

    async def patch():
        return CampaignPatch.model_validate({"timezone": "Mars/Olympus"})

    with pytest.raises(InvalidDraft) as error:
        await handlers.update_campaign(campaign.id, patch, world.uow, world.campaigns, world.upstreams)
    assert error.value.error.errors()[0]["loc"] == ("timezone",)
    assert (await world.campaigns.get(campaign.id)).timezone == "UTC"


async def test_only_a_draft_can_be_patched_and_its_body_is_not_even_read_otherwise(world):
    campaign = await an_active_campaign(world)

    async def patch():
        raise AssertionError("the body of a patch to an active campaign is not read")

    with pytest.raises(NotEditable):
        await handlers.update_campaign(campaign.id, patch, world.uow, world.campaigns, world.upstreams)


async def test_a_draft_activated_while_its_patch_was_checked_is_not_changed(world):
    campaign = await a_campaign(world)
    world.campaigns.before_lock = lambda campaign_id: world.campaigns.change(campaign_id, status=S.ACTIVE)

    async def patch():
        return CampaignPatch(name="too late")

    with pytest.raises(NotEditable):
        await handlers.update_campaign(campaign.id, patch, world.uow, world.campaigns, world.upstreams)
    assert (await world.campaigns.get(campaign.id)).name == "c"


async def test_a_draft_can_be_deleted_and_an_active_campaign_cannot(world):
    draft, active = await a_campaign(world), await an_active_campaign(world)
    await handlers.delete_campaign(draft.id, world.uow)
    with pytest.raises(NotEditable):
        await handlers.delete_campaign(active.id, world.uow)
    assert set(world.campaigns.rows) == {active.id}


# Activation


async def test_activation_reads_the_flow_before_the_transaction_and_snapshots_its_steps(world):
    flow_id = uuid4()
    world.upstreams.flows[flow_id] = FLOW
    created = await a_campaign(world, flow_id=flow_id)
    world.upstreams.calls.clear()
    active = await handlers.change_status(created.id, S.ACTIVE, world.uow, world.campaigns, world.upstreams)

    assert world.upstreams.calls == [("flow", flow_id, False)], "no HTTP call under the row lock"
    assert active.status is S.ACTIVE and active.run_id is not None and active.activated_at is not None
    status, activated = world.emitted
    assert isinstance(status, CampaignStatusChanged) and isinstance(activated, CampaignActivated)
    assert (status.previous, status.status, status.status_seq, status.run_id) == (S.DRAFT, S.ACTIVE, 2, active.run_id)
    assert (activated.run_id, activated.steps, activated.status_seq) == (active.run_id, FLOW, 2)
    assert active.run_id in world.runs.rows


async def test_a_campaign_without_a_flow_sends_its_content_as_one_email(world):
    active = await an_active_campaign(world)
    (activated,) = world.tx.outbox.of(CampaignActivated)
    assert activated.steps == [SendEmailStep(type="SEND_EMAIL", config=CONTENT)]
    assert activated.segment_id == active.segment_id


async def test_a_campaign_with_neither_flow_nor_content_cannot_be_activated(world):
    created = await a_campaign(world, content=None)
    with pytest.raises(NothingToSend):
        await handlers.change_status(created.id, S.ACTIVE, world.uow, world.campaigns, world.upstreams)
    assert world.emitted == [] and await status_of(world, created.id) is S.DRAFT


async def test_a_flow_changed_between_the_read_and_the_lock_is_read_again(world):
    old_flow, new_flow = uuid4(), uuid4()
    world.upstreams.flows |= {old_flow: FLOW[:1], new_flow: FLOW}
    created = await a_campaign(world, flow_id=old_flow)
    world.upstreams.calls.clear()

    def edited_once(campaign_id):
        world.campaigns.before_lock = None
        world.campaigns.change(campaign_id, flow_id=new_flow)

    world.campaigns.before_lock = edited_once
    await handlers.change_status(created.id, S.ACTIVE, world.uow, world.campaigns, world.upstreams)
    assert [flow for _, flow, _ in world.upstreams.calls] == [old_flow, new_flow]
    assert world.tx.outbox.of(CampaignActivated)[0].steps == FLOW


async def test_a_draft_activated_by_another_request_meanwhile_is_a_409_and_one_activation(world):
    created = await a_campaign(world)
    world.campaigns.before_lock = lambda campaign_id: world.campaigns.change(campaign_id, status=S.ACTIVE)
    with pytest.raises(InvalidTransition) as error:
        await handlers.change_status(created.id, S.ACTIVE, world.uow, world.campaigns, world.upstreams)
    assert error.value.current is S.ACTIVE
    assert world.emitted == []


async def test_a_draft_activated_and_paused_meanwhile_is_resumed_not_activated_twice(world):
    created = await a_campaign(world)
    run_id = uuid4()
    world.campaigns.before_lock = lambda campaign_id: world.campaigns.change(campaign_id, status=S.PAUSED,
                                                                             run_id=run_id)
    resumed = await handlers.change_status(created.id, S.ACTIVE, world.uow, world.campaigns, world.upstreams)
    assert (resumed.status, resumed.run_id) == (S.ACTIVE, run_id)
    assert world.tx.outbox.of(CampaignActivated) == []
    assert statuses(world, created.id) == [(S.PAUSED, S.ACTIVE)]


async def test_a_draft_that_keeps_changing_is_refused_after_a_few_reads(world):
    created = await a_campaign(world)
    world.campaigns.before_lock = lambda campaign_id: world.campaigns.change(campaign_id, name="again")
    with pytest.raises(ChangedDuringActivation):
        await handlers.change_status(created.id, S.ACTIVE, world.uow, world.campaigns, world.upstreams)
    assert len(world.campaigns.locks) == handlers.ACTIVATION_ATTEMPTS
    assert world.emitted == []


# Other transitions


async def test_pause_resume_and_complete_by_hand_each_say_so_with_a_higher_sequence(world):
    active = await an_active_campaign(world)
    change = handlers.change_status
    await change(active.id, S.PAUSED, world.uow, world.campaigns, world.upstreams)
    await change(active.id, S.ACTIVE, world.uow, world.campaigns, world.upstreams)
    await change(active.id, S.PAUSED, world.uow, world.campaigns, world.upstreams)
    completed = await change(active.id, S.COMPLETED, world.uow, world.campaigns, world.upstreams)
    assert completed.status is S.COMPLETED and completed.completed_at is not None
    assert statuses(world, active.id) == [(S.DRAFT, S.ACTIVE), (S.ACTIVE, S.PAUSED), (S.PAUSED, S.ACTIVE),
                                          (S.ACTIVE, S.PAUSED), (S.PAUSED, S.COMPLETED)]
    assert [e.status_seq for e in world.tx.outbox.of(CampaignStatusChanged)] == [2, 3, 4, 5, 6]
    assert [h.status for h in await world.campaigns.history(active.id)] == [
        S.DRAFT, S.ACTIVE, S.PAUSED, S.ACTIVE, S.PAUSED, S.COMPLETED]


@pytest.mark.parametrize("target", [S.PAUSED, S.COMPLETED])
async def test_a_draft_can_only_be_activated(world, target):
    created = await a_campaign(world)
    with pytest.raises(InvalidTransition) as error:
        await handlers.change_status(created.id, target, world.uow, world.campaigns, world.upstreams)
    assert (error.value.current, error.value.allowed) == (S.DRAFT, [S.ACTIVE])
    assert world.emitted == []


async def test_sends_that_finished_while_paused_complete_the_campaign_on_resume(world):
    active = await an_active_campaign(world, sends=1)
    await handlers.change_status(active.id, S.PAUSED, world.uow, world.campaigns, world.upstreams)
    await handlers.record_outcomes([outcome(active)], world.uow)
    assert await status_of(world, active.id) is S.PAUSED, "a paused campaign does not complete by itself"
    resumed = await handlers.change_status(active.id, S.ACTIVE, world.uow, world.campaigns, world.upstreams)
    assert resumed.status is S.COMPLETED
    assert statuses(world, active.id)[-2:] == [(S.PAUSED, S.ACTIVE), (S.ACTIVE, S.COMPLETED)]


# Consumers


async def test_a_run_scheduled_with_no_sends_completes_at_once(world):
    active = await an_active_campaign(world, sends=0)
    assert await status_of(world, active.id) is S.COMPLETED
    assert world.runs.rows[active.run_id]["recipients"] == 0


async def test_a_run_completes_when_every_send_is_accounted_for_and_only_then(world):
    active = await an_active_campaign(world, sends=3)
    sent, deferred, skipped = outcome(active), outcome(active, DeliveryStatus.DEFERRED), \
        outcome(active, DeliveryStatus.SKIPPED_NO_CONSENT)
    await handlers.record_outcomes([sent, deferred, skipped], world.uow)
    assert await status_of(world, active.id) is S.ACTIVE, "a deferred send is still pending"
    await handlers.record_outcomes([outcome(active, DeliveryStatus.FAILED, deferred.send_id, attempt=2)], world.uow)
    assert await status_of(world, active.id) is S.COMPLETED
    assert statuses(world, active.id)[-1] == (S.ACTIVE, S.COMPLETED)


async def test_outcomes_are_counted_per_step_once_each_by_their_latest_news(world):
    active = await an_active_campaign(world, sends=4)
    retried, later = uuid4(), uuid4()
    batch = [outcome(active, DeliveryStatus.DEFERRED, retried), outcome(active, DeliveryStatus.SENT, retried, 2),
             outcome(active, DeliveryStatus.DEFERRED, later, step_index=1),
             outcome(active, DeliveryStatus.FAILED, step_index=1)]
    await handlers.record_outcomes(batch, world.uow)
    await handlers.record_outcomes(batch, world.uow)  # redelivered: nothing changes
    counters = world.counters.rows
    assert (counters[(active.id, 0)]["sent"], counters[(active.id, 0)]["deferred"]) == (1, 0)
    assert (counters[(active.id, 1)]["deferred"], counters[(active.id, 1)]["failed"]) == (1, 1)
    await handlers.record_outcomes([outcome(active, DeliveryStatus.SENT, later, 2, step_index=1)], world.uow)
    assert (counters[(active.id, 1)]["sent"], counters[(active.id, 1)]["deferred"]) == (1, 0)
    assert world.runs.rows[active.run_id]["terminal"] == 3


async def test_an_older_attempt_arriving_late_changes_nothing(world):
    active = await an_active_campaign(world, sends=2)
    send_id = uuid4()
    await handlers.record_outcomes([outcome(active, DeliveryStatus.DEFERRED, send_id, attempt=2)], world.uow)
    await handlers.record_outcomes([outcome(active, DeliveryStatus.SENT, send_id, attempt=1)], world.uow)
    assert world.counters.rows[(active.id, 0)]["sent"] == 0
    assert world.runs.rows[active.run_id]["terminal"] == 0


async def test_a_final_status_is_never_replaced(world):
    active = await an_active_campaign(world, sends=2)
    send_id = uuid4()
    await handlers.record_outcomes([outcome(active, DeliveryStatus.SENT, send_id)], world.uow)
    await handlers.record_outcomes([outcome(active, DeliveryStatus.FAILED, send_id, attempt=2)], world.uow)
    assert (world.counters.rows[(active.id, 0)]["sent"], world.counters.rows[(active.id, 0)]["failed"]) == (1, 0)


async def test_the_sends_of_a_batch_are_locked_in_one_order(world):
    active = await an_active_campaign(world, sends=5)
    batch = [outcome(active) for _ in range(5)]
    await handlers.record_outcomes(batch, world.uow)
    assert world.tx.outcomes.locked == [sorted(e.send_id for e in batch)]


async def test_a_previous_run_finishing_does_not_complete_the_campaign(world):
    active = await an_active_campaign(world, sends=1)
    old_run = uuid4()
    await world.runs.start(old_run, active.id)
    await world.runs.schedule(old_run, 1, 1)
    await handlers.record_outcomes([outcome(active, run_id=old_run)], world.uow)
    assert await status_of(world, active.id) is S.ACTIVE


async def test_the_first_engagement_of_each_kind_counts_and_is_published_and_a_repeat_not(world):
    active = await an_active_campaign(world, sends=1)
    ref = SendRef(campaign_id=active.id, run_id=active.run_id, step_index=0, send_id=uuid4(), contact_id=uuid4())
    assert await handlers.record_engagement(ref, "click", "https://example.com/a", world.uow)
    assert not await handlers.record_engagement(ref, "click", "https://example.com/b", world.uow)
    assert await handlers.record_engagement(ref, "machine_open", None, world.uow)
    counters = world.counters.rows[(active.id, 0)]
    assert (counters["clicks"], counters["machine_opens"], counters["opens"]) == (1, 1, 0)
    click, machine = world.tx.outbox.of(EmailEngagement)
    assert (click.kind, click.url, click.machine) == (EngagementKind.CLICK, "https://example.com/a", False)
    assert (machine.kind, machine.machine) == (EngagementKind.OPEN, True)


# Reads


async def test_stats_before_scheduling_know_nothing_of_the_run(world):
    active = await an_active_campaign(world)
    stats = await handlers.report_stats(active.id, world.campaigns, world.runs, world.counters)
    assert (stats.targeted, stats.scheduled, stats.not_yet_sent, stats.steps) == (None, None, None, [])


async def test_stats_reconcile_with_the_outcomes_recorded(world):
    active = await an_active_campaign(world, sends=3)
    await handlers.record_outcomes([outcome(active), outcome(active, DeliveryStatus.HELD)], world.uow)
    stats = await handlers.report_stats(active.id, world.campaigns, world.runs, world.counters)
    assert (stats.scheduled, stats.sent, stats.held, stats.not_yet_sent) == (3, 1, 1, 1)


async def test_a_campaign_is_shown_with_its_history(world):
    active = await an_active_campaign(world)
    detail = await handlers.show_campaign(active.id, world.campaigns)
    assert [(h.previous, h.status) for h in detail.status_history] == [(None, S.DRAFT), (S.DRAFT, S.ACTIVE)]


async def test_campaigns_are_listed_by_status(world):
    draft, active = await a_campaign(world), await an_active_campaign(world)
    assert [c.id for c in await handlers.list_campaigns(S.ACTIVE, None, 10, world.campaigns)] == [active.id]
    assert len(await handlers.list_campaigns(None, None, 10, world.campaigns)) == 2
    assert draft.id in world.campaigns.rows


async def test_the_schedule_preview_plans_each_email_of_the_flow(world):
    flow_id = uuid4()
    world.upstreams.flows[flow_id] = FLOW
    campaign = await a_campaign(world, flow_id=flow_id, start_date=date(2099, 3, 1), timezone="Europe/Paris")
    preview = await handlers.preview_schedule(campaign.id, world.campaigns, world.upstreams)
    assert [(s.step_index, s.local.day, s.local.hour) for s in preview.sends] == [(0, 1, 9), (2, 3, 9)]
    assert world.uow.locks == [()], "the preview changes nothing (one transaction: the creation)"


async def test_the_schedule_preview_of_a_campaign_with_nothing_to_send_is_empty(world):
    campaign = await a_campaign(world, content=None)
    assert (await handlers.preview_schedule(campaign.id, world.campaigns, world.upstreams)).sends == []
