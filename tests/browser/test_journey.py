"""The journey of issue 14, in the browser, against the real stack: sign in, import a CSV with
one bad row, search the contacts by part of a name and by the start of an email, build a nested segment and watch its count change, write a two-email flow with a
wait, preview it and send a test, create and activate a campaign, pause and resume it, and
read its report, its recipients and their CSV once it completes, and a recipient's profile with
what the campaign sent them and the email they opened, all through the gateway,
which serves the app; the test email is awaited at the SMTP server.
The tests run in order and share what they made (`journey`)."""

import asyncio
import html
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.browser.accessibility import check_screen
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def journey() -> dict:
    tag = uuid.uuid4().hex[:12]
    return {"tag": tag, "emails": [f"ann.{tag}@example.com", f"bob.{tag}@example.com", f"cy.{tag}@example.com"]}


async def test_a_person_signs_in_and_out(anonymous_page, stack):
    page = anonymous_page
    _, _, _, person = stack
    await page.goto("/#/contacts")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")  # sent there: no session
    await expect(page).to_have_url(re.compile(r"#/sign-in\?next="))
    await page.get_by_label("Email", exact=True).fill(person.email)
    await page.get_by_label("Password", exact=True).fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("That email and password do not match an account.")
    await check_screen(page, "sign-in")

    await page.get_by_label("Password", exact=True).fill(person.password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Contacts")  # back where they were going
    cookie = next(c for c in await page.context.cookies() if c["name"] == "session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    answer = await page.context.request.get("/api/campaigns")
    assert answer.status == 401, "signed out: the API is closed to this browser"


async def test_import_of_a_csv_reports_its_bad_row(page, journey):
    ann, bob, cy = journey["emails"]
    tag = journey["tag"]
    csv = (
        "email,first_name,last_name,timezone,marketing_opt_in,attributes.tag\n"
        f"{ann},Ann,Archer,Europe/Paris,true,{tag}\n"
        f"not-an-email,Bad,Row,,true,{tag}\n"
        f"{bob},Bob,Baker,America/New_York,true,{tag}\n"
        f"{cy},Cy,Cole,,false,{tag}\n"
    )
    await page.goto("/#/contacts/import")
    await page.get_by_label("File", exact=True).set_input_files({"name": "contacts.csv", "mimeType": "text/csv", "buffer": csv.encode()})
    await page.get_by_role("button", name="Import", exact=True).click()
    report = page.get_by_test_id("import-report")
    await expect(report.get_by_role("status")).to_have_text("3 added, 0 updated, 1 rejected.")
    await expect(report.get_by_role("row")).to_have_count(2)  # the header and the bad row
    await expect(report.locator("tbody tr td").first).to_have_text("3")  # line 3: the header is line 1
    await expect(report.locator("tbody tr td").nth(1)).to_contain_text("email")
    await check_screen(page, "contacts-import-report")

    await page.goto("/#/contacts")
    rows = page.locator("table.data tbody tr")
    await expect(rows).to_have_count(3)
    search = page.get_by_role("searchbox", name="Search by email or name")
    await search.fill("arch")  # the start of Ann Archer's last name, in lower case: the API searches
    await page.get_by_role("button", name="Search", exact=True).click()
    await expect(page).to_have_url(re.compile(r"#/contacts\?q=arch$"))
    await expect(rows).to_have_count(1)
    await expect(page.get_by_role("link", name=ann)).to_be_visible()
    await expect(page.get_by_role("note")).to_have_count(0)  # no "the API does not search yet"
    await check_screen(page, "contacts")
    await search.fill(f"BOB.{tag}")  # the start of an email, in any case
    await page.get_by_role("button", name="Search", exact=True).click()
    await expect(page.get_by_role("link", name=bob)).to_be_visible()
    await expect(rows).to_have_count(1)
    await search.fill(f"nobody.{tag}")
    await page.get_by_role("button", name="Search", exact=True).click()
    await expect(page.locator(".state.empty")).to_contain_text(f"starts with “nobody.{tag}”")
    await check_screen(page, "contacts-search-empty")
    await search.fill("Ann Arch")  # first and last name
    await page.get_by_role("button", name="Search", exact=True).click()
    await page.get_by_role("link", name=ann).click()
    await expect(page.get_by_role("heading", name=ann)).to_be_visible()
    await expect(page.get_by_test_id("consent")).to_contain_text("Opted in")
    await expect(page.get_by_test_id("engagement")).to_contain_text("No campaign has sent this contact an email yet.")
    await expect(page.get_by_test_id("engagement-sent")).to_have_text("0")


async def test_a_nested_segment_counts_live_and_shows_a_422_on_its_node(page, journey):
    tag = journey["tag"]
    await page.goto("/#/segments/new")
    await page.get_by_label("Name", exact=True).fill(f"Journey {tag}")
    await page.get_by_label("Condition 1: field", exact=True).select_option("attributes")
    await page.get_by_label("Condition 1: attribute name", exact=True).fill("tag")
    await page.get_by_label("Condition 1: operator", exact=True).select_option("eq")
    await page.get_by_label("Condition 1: value", exact=True).fill(tag)
    count = page.get_by_test_id("segment-count")
    await expect(count).to_have_text("3 contacts", timeout=20_000)
    await expect(page.get_by_test_id("segment-opted-in")).to_have_text("2 of them opted in to marketing")

    # A nested OR group: its first condition starts empty, which the API refuses (422) on that node.
    await page.get_by_role("button", name="Add group").click()
    node = page.locator('.condition[data-path="1.0"]')
    await expect(node.locator(".node-error")).to_contain_text("non-empty string")
    await expect(node).to_have_class(re.compile("invalid"))
    await check_screen(page, "segment-builder-422")

    await page.get_by_label("Condition 2.1: field", exact=True).select_option("first_name")
    await page.get_by_label("Condition 2.1: operator", exact=True).select_option("eq")
    await page.get_by_label("Condition 2.1: value", exact=True).fill("Ann")
    await expect(count).to_have_text("1 contact")
    await expect(node.locator(".node-error")).to_have_count(0)
    await page.locator('fieldset[data-path="1"] > .group-actions').get_by_role("button", name="Add condition").click()
    await page.get_by_label("Condition 2.2: field", exact=True).select_option("first_name")
    await page.get_by_label("Condition 2.2: operator", exact=True).select_option("eq")
    await page.get_by_label("Condition 2.2: value", exact=True).fill("Cy")
    await expect(count).to_have_text("2 contacts")
    await expect(page.get_by_test_id("segment-opted-in")).to_have_text("1 of them opted in to marketing")
    await page.get_by_label("Condition 2.2: value", exact=True).fill("Bob")
    await expect(count).to_have_text("2 contacts")
    await expect(page.get_by_test_id("segment-opted-in")).to_have_text("2 of them opted in to marketing")
    await expect(page.locator(".save-state")).to_have_text("Saved.")
    journey["segment_id"] = page.url.rsplit("/", 1)[-1]
    journey["segment_name"] = f"Journey {tag}"
    await check_screen(page, "segment-builder")


async def test_a_two_email_flow_with_a_wait(page, journey):
    await page.goto("/#/flows/new")
    await page.get_by_label("Name", exact=True).fill(f"Welcome {journey['tag']}")
    first = page.locator('li.step[data-step="0"]')
    await first.get_by_label("Subject", exact=True).fill("Hello ")
    await first.get_by_label("Contact field", exact=True).select_option("first_name")
    await first.get_by_label("into", exact=True).select_option("subject")
    await first.get_by_role("button", name="Insert field").click()
    await expect(first.get_by_label("Subject", exact=True)).to_have_value("Hello {{ first_name }}")
    await first.get_by_label("Text body", exact=True).fill("Welcome aboard, {{ first_name | default('there') }}.")
    await page.get_by_role("button", name="Add wait").click()
    wait = page.locator('li.step[data-step="1"]')
    await wait.get_by_label("Days", exact=True).fill("0")
    await wait.get_by_label("Seconds", exact=True).fill("3")
    await page.get_by_role("button", name="Add email").click()
    second = page.locator('li.step[data-step="2"]')
    await second.get_by_label("Subject", exact=True).fill("Still there, {{ first_name }}?")
    await second.get_by_label("HTML body", exact=True).fill("<p>Two things to try, {{ first_name }}.</p>")
    await page.get_by_role("button", name="Save flow").click()
    await expect(page.get_by_text("Flow saved.")).to_be_visible()
    journey["flow_id"] = page.url.rsplit("/", 1)[-1]
    await expect(page.locator(".state.loading")).to_have_count(0)
    await check_screen(page, "flow-editor")


async def test_the_flow_previews_as_a_contact(page, journey):
    await page.goto(f"/#/flows/{journey['flow_id']}")
    await page.get_by_label("Preview as contact", exact=True).select_option(label=journey["emails"][0])
    first = page.locator('li.step[data-step="0"]')
    await first.get_by_role("button", name=re.compile("^Preview as")).click()
    rendered = first.get_by_test_id("rendered-0")
    await expect(rendered).to_contain_text("Hello Ann")
    await expect(rendered.locator("pre")).to_have_text("Welcome aboard, Ann.")
    await check_screen(page, "flow-preview")


async def test_a_test_email_reaches_the_smtp_server(page, journey, stack):
    _, _, smtp, _ = stack
    await page.goto(f"/#/flows/{journey['flow_id']}")
    await page.get_by_label("Preview as contact", exact=True).select_option(label=journey["emails"][0])
    first = page.locator('li.step[data-step="0"]')
    address = f"tester.{journey['tag']}@example.com"
    await first.get_by_label("Send a test of step 1 to", exact=True).fill(address)
    await first.get_by_role("button", name="Send test").click()
    await expect(first.locator(".test-send [role='status']")).to_have_text("Test email on its way.")
    # The gateway has published email.test (202); the mailer renders it as Ann and sends it.
    arrived = await eventually(lambda: [r for r in smtp.handler.received if address in r.envelope_to],
                               f"a test email reaches {address}", timeout=30)
    [email] = arrived
    assert email.subject == "[Test] Hello Ann", email.subject
    assert "Welcome aboard, Ann." in email.text()
    assert email.message["List-Unsubscribe"] is None, "a test has no send to unsubscribe from"


async def test_a_campaign_is_created_activated_paused_resumed_and_reported(page, journey, stack):
    _, gateway, smtp, _ = stack
    await page.goto("/#/campaigns/new")
    await page.get_by_label("Campaign name", exact=True).fill(f"Welcome {journey['tag']}")
    await page.get_by_label("Segment", exact=True).select_option(journey["segment_id"])
    await expect(page.get_by_test_id("wizard-audience")).to_have_text("2 contacts match, 2 of them opted in.")
    await page.get_by_label("Flow", exact=True).select_option(journey["flow_id"])
    await page.get_by_label("Time zone", exact=True).select_option("UTC")
    await page.get_by_label("Start date", exact=True).fill(datetime.now(UTC).date().isoformat())
    await page.get_by_label("Time of day", exact=True).fill("00:00")  # already past: it means now
    await expect(page.get_by_test_id("send-time-suggestion")).to_contain_text("too little history")
    await check_screen(page, "campaign-wizard")
    await page.get_by_role("button", name="Save draft and review").click()

    await expect(page.get_by_role("heading", name=re.compile(f"Welcome {journey['tag']}"))).to_be_visible()
    campaign_id = page.url.split("#/campaigns/")[1].split("?")[0]
    await expect(page.locator(".timeline-list li")).to_have_count(2)
    activate = page.get_by_role("button", name="Activate and send to 2 recipients")
    await expect(activate).to_be_visible()
    await expect(page.locator(".state.loading")).to_have_count(0)
    await check_screen(page, "campaign-review")

    await activate.click()
    badge = page.locator("#campaign-name .badge")
    await expect(badge).to_have_text("active")
    await page.get_by_role("button", name="Pause").click()
    await expect(badge).to_have_text("paused")
    await check_screen(page, "campaign-paused")
    await page.get_by_role("button", name="Resume").click()
    await expect(badge).to_have_text(re.compile("active|completed"))
    await expect(badge).to_have_text("completed", timeout=90_000)

    stats = await gateway.ok("GET", f"/api/campaigns/{campaign_id}/stats")
    assert (stats["targeted"], stats["sent"]) == (2, 4), stats
    await expect(page.get_by_test_id("kpi-sent")).to_have_text(str(stats["sent"]))
    await expect(page.get_by_test_id("kpi-targeted")).to_have_text(str(stats["targeted"]))
    await expect(page.get_by_test_id("kpi-scheduled")).to_have_text(str(stats["scheduled"]))
    table = page.get_by_test_id("step-stats")
    for step in stats["steps"]:
        row = table.locator(f'tr[data-step="{step["step_index"]}"]')
        for column in ("sent", "failed", "skipped_no_consent", "deferred", "opens", "clicks", "unsubscribes"):
            await expect(row.locator(f'td[data-col="{column}"]')).to_have_text(str(step[column]))
    await expect(table.locator('tr[data-step="total"] td[data-col="sent"]')).to_have_text(str(stats["sent"]))
    ours = [r for r in smtp.handler.received if any(to in journey["emails"] for to in r.envelope_to)]
    assert sorted(r.subject for r in ours) == sorted(
        ["Hello Ann", "Hello Bob", "Still there, Ann?", "Still there, Bob?"])
    status = await gateway.ok("GET", "/api/status")
    assert status["mailer"]["emails_per_second"] > 0, "the mailer's pace over the last minute, sends just made"
    await expect(page.locator(".state.loading")).to_have_count(0)
    # The report was open while the campaign ran: once it completes it lists its recipients
    # without a reload (it used to keep the empty list it first read).
    await expect(page.locator("section[aria-labelledby='recipients-title'] tbody tr")).to_have_count(4)
    await check_screen(page, "campaign-report")
    journey["campaign_id"] = campaign_id

    await page.goto("/#/campaigns?status=completed")
    await expect(page.get_by_role("link", name=f"Welcome {journey['tag']}")).to_be_visible()
    await check_screen(page, "campaigns")


async def test_the_report_lists_recipients_downloadable_as_csv(page, journey):
    await page.goto(f"/#/campaigns/{journey['campaign_id']}")
    await expect(page.locator(".state.loading")).to_have_count(0)
    rows = page.locator("section[aria-labelledby='recipients-title'] tbody tr")
    await expect(rows).to_have_count(4)  # two recipients, two emails each
    ann, bob = journey["emails"][:2]
    await expect(rows.filter(has_text=ann)).to_have_count(2)
    await expect(rows.filter(has_text=bob)).to_have_count(2)
    await expect(page.get_by_role("img", name=re.compile("Sent 4"))).to_be_visible()  # the activity chart
    async with page.expect_download() as download:
        await page.get_by_role("link", name="Download CSV").click()
    path = await (await download.value).path()
    lines = (await asyncio.to_thread(Path(path).read_text)).splitlines()
    assert lines[0].startswith("send_id,contact_id,email,step_index,status"), lines[0]
    assert len(lines) == 5 and sum(ann in line for line in lines) == 2, lines
    await check_screen(page, "campaign-recipients")


async def test_a_recipients_profile_shows_what_the_campaign_sent_and_the_email_they_opened(page, journey, stack):
    _, _, smtp, _ = stack
    ann = journey["emails"][0]
    [second] = [r for r in smtp.handler.received if ann in r.envelope_to and r.subject == "Still there, Ann?"]
    body = second.message.get_body(("html",)).get_content()
    pixel = html.unescape(re.search(r'<img src="([^"]+)"', body).group(1))
    person = {"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Mail"}
    opened = await page.context.request.get(pixel, headers=person)  # Ann's mail client shows the email
    assert opened.status == 200, await opened.text()

    await page.goto("/#/contacts?q=" + ann.split("@")[0])
    await page.get_by_role("link", name=ann).click()
    await expect(page.get_by_role("heading", name=ann)).to_be_visible()
    await expect(page.get_by_test_id("engagement-sent")).to_have_text("2")  # the flow's two emails
    await expect(page.get_by_test_id("engagement-failed")).to_have_text("0")
    await expect(page.get_by_test_id("engagement-opens")).to_have_text("1")
    recent = page.get_by_test_id("engagement-recent").locator("tbody tr")
    await expect(recent).to_have_count(1)
    await expect(recent.first).to_contain_text("Opened")
    await expect(recent.first.get_by_role("link", name="its report, step 3")).to_have_attribute(  # wait is step 2
        "href", f"#/campaigns/{journey['campaign_id']}")
    await expect(page.locator(".state.loading")).to_have_count(0)
    await check_screen(page, "contact-profile")


async def test_a_refused_transition_is_explained_in_words(page, stack, journey):
    _, gateway, _, _ = stack
    campaign = await gateway.ok("POST", "/api/campaigns", {
        "name": f"Stale {journey['tag']}", "segment_id": journey["segment_id"], "start_date": "2099-01-01",
        "start_time_of_day": "09:00", "content": {"subject": "Later", "text": "Not yet"}}, expect=201)
    await page.goto(f"/#/campaigns/{campaign['id']}")
    activate = page.get_by_role("button", name=re.compile("^Activate and send"))
    await expect(activate).to_be_visible()
    await gateway.ok("PUT", f"/api/campaigns/{campaign['id']}/status", {"status": "active"})  # someone else, meanwhile
    await activate.click()
    error = page.get_by_test_id("lifecycle-error")
    await expect(error).to_have_text(
        "The campaign could not be activated: it is active now (someone or the system changed it)."
        " From active it can only be paused.")
    await expect(page.locator("#campaign-name .badge")).to_have_text("active")
    await expect(page.get_by_role("button", name="Pause")).to_be_visible()
    await check_screen(page, "campaign-409")
    await gateway.ok("PUT", f"/api/campaigns/{campaign['id']}/status", {"status": "paused"})
    await gateway.ok("PUT", f"/api/campaigns/{campaign['id']}/status", {"status": "completed"})
