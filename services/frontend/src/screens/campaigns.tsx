import { useEffect, useState } from "preact/hooks";
import {
  api,
  ApiError,
  withQuery,
  type ActivityBucket,
  type Campaign,
  type CampaignStats,
  type CampaignStatus,
  type Figures,
  type Flow,
  type Page as PageOf,
  type Preview,
  type Recipient,
  type SchedulePreview,
} from "../api";
import { href, navigate } from "../router";
import { Badge, Empty, ErrorMessage, Loading, number, Page, percent, Show, statusLabel, useResource, when } from "../ui";
import { stepSummary } from "./flows";

const STATUSES: CampaignStatus[] = ["draft", "active", "paused", "completed"];

export function CampaignList({ query }: { query: URLSearchParams }) {
  const status = query.get("status") ?? "";
  const cursor = query.get("cursor");
  const back = query.get("back")?.split(",").filter(Boolean) ?? [];
  const page = useResource(
    (signal) => api.get<PageOf<Campaign>>("/campaigns", { status, cursor, limit: 25 }, signal),
    [status, cursor],
  );
  return (
    <Page
      title="Campaigns"
      actions={
        <a class="button primary" href={href("/campaigns/new")}>
          New campaign
        </a>
      }
    >
      <nav class="tabs" aria-label="Campaigns by status">
        {["", ...STATUSES].map((value) => (
          <a key={value} href={href("/campaigns", { status: value })} aria-current={status === value ? "page" : undefined}>
            {value ? statusLabel(value) : "all"}
          </a>
        ))}
      </nav>
      <Show value={page.value} what="campaigns" retry={page.reload}>
        {(data) => (
          <>
            {data.items.length === 0 ? (
              <Empty>
                <p>
                  No {status ? `${status} ` : ""}campaigns. <a href={href("/campaigns/new")}>Create one</a>.
                </p>
              </Empty>
            ) : (
              <table class="data">
                <caption class="visually-hidden">Campaigns</caption>
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Status</th>
                    <th scope="col">Starts</th>
                    <th scope="col">Created</th>
                  </tr>
                </thead>
                <tbody>
                  {data.items.map((campaign) => (
                    <tr key={campaign.id}>
                      <td>
                        <a href={href(`/campaigns/${campaign.id}`)}>{campaign.name}</a>
                      </td>
                      <td>
                        <Badge status={campaign.status} />
                      </td>
                      <td>
                        {campaign.start_date} {campaign.start_time_of_day} {campaign.send_in_recipient_timezone ? "(recipients' time)" : campaign.timezone}
                      </td>
                      <td>{when(campaign.created_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            <nav class="pager" aria-label="Pages of campaigns">
              <button type="button" disabled={!cursor} onClick={() => navigate("/campaigns", { status, cursor: back[back.length - 1], back: back.slice(0, -1).join(",") })}>
                Previous page
              </button>
              <button type="button" disabled={!data.next_cursor} onClick={() => navigate("/campaigns", { status, cursor: data.next_cursor, back: [...back, cursor ?? ""].join(",") })}>
                Next page
              </button>
            </nav>
          </>
        )}
      </Show>
    </Page>
  );
}

// What a person may do in each status (campaign-api's TRANSITIONS), and how it is said.
const ACTIONS: Record<CampaignStatus, { to: CampaignStatus; label: string }[]> = {
  draft: [{ to: "active", label: "Activate" }],
  active: [{ to: "paused", label: "Pause" }],
  paused: [
    { to: "active", label: "Resume" },
    { to: "completed", label: "Complete" },
  ],
  completed: [],
};

const VERB: Record<string, string> = { active: "activated (or resumed)", paused: "paused", completed: "completed", draft: "edited" };

/** A 409 in words: what the campaign is now, and what can be done from there. */
export function explainConflict(error: ApiError, tried: string): string {
  const current = error.problem.current_status;
  const allowed = error.problem.allowed ?? [];
  if (!current) return error.message;
  const next = allowed.length ? `From ${current} it can only be ${allowed.map((s) => VERB[s] ?? s).join(" or ")}.` : `A ${current} campaign cannot change any more.`;
  return `The campaign could not be ${tried}: it is ${current} now (someone or the system changed it). ${next}`;
}

export function CampaignDetail({ id }: { id: string }) {
  const campaign = useResource((signal) => api.get<Campaign>(`/campaigns/${id}`, undefined, signal), [id]);
  const warning = new URLSearchParams(window.location.hash.split("?")[1] ?? "").get("warning");
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<{ error: ApiError; tried: string } | null>(null);
  const [confirmDelete, setConfirmDelete] = useState(false);

  async function changeTo(status: CampaignStatus, label: string) {
    setBusy(true);
    setProblem(null);
    try {
      await api.put<Campaign>(`/campaigns/${id}/status`, { status });
      campaign.reload();
    } catch (error) {
      setProblem({ error: error as ApiError, tried: `${label.toLowerCase()}d` });
      campaign.reload();
    } finally {
      setBusy(false);
    }
  }

  async function remove() {
    setBusy(true);
    try {
      await api.del(`/campaigns/${id}`);
      navigate("/campaigns");
    } catch (error) {
      setProblem({ error: error as ApiError, tried: "deleted" });
    } finally {
      setBusy(false);
    }
  }

  return (
    <Page title="Campaign">
      <p>
        <a href={href("/campaigns")}>← All campaigns</a>
      </p>
      <Show value={campaign.value} what="the campaign" retry={campaign.reload}>
        {(c) => (
          <>
            <section class="card" aria-labelledby="campaign-name">
              <div class="step-head">
                <h2 id="campaign-name">
                  {c.name} <Badge status={c.status} />
                </h2>
                <div class="actions lifecycle" role="group" aria-label="Lifecycle">
                  {c.status === "draft" && (
                    <a class="button" href={href(`/campaigns/${c.id}/edit`)}>
                      Edit
                    </a>
                  )}
                  {ACTIONS[c.status]
                    .filter((action) => c.status !== "draft" || action.to !== "active")
                    .map((action) => (
                      <button key={action.to} type="button" disabled={busy} onClick={() => changeTo(action.to, action.label)}>
                        {action.label}
                      </button>
                    ))}
                  {c.status === "draft" &&
                    (confirmDelete ? (
                      <>
                        <button type="button" class="danger" disabled={busy} onClick={remove}>
                          Yes, delete this draft
                        </button>
                        <button type="button" onClick={() => setConfirmDelete(false)}>
                          Keep it
                        </button>
                      </>
                    ) : (
                      <button type="button" class="danger" onClick={() => setConfirmDelete(true)}>
                        Delete
                      </button>
                    ))}
                </div>
              </div>
              {c.description && <p>{c.description}</p>}
              {warning && (
                <p class="state warning" role="status">
                  {warning}
                </p>
              )}
              {c.warnings.map((text) => (
                <p key={text} class="state warning">
                  {text}
                </p>
              ))}
              {problem && (
                <div class="state error" role="alert" data-testid="lifecycle-error">
                  {problem.error.status === 409 ? <p>{explainConflict(problem.error, problem.tried)}</p> : <ErrorMessage error={problem.error} />}
                </div>
              )}
              <dl class="facts">
                <dt>Starts</dt>
                <dd>
                  {c.start_date} at {c.start_time_of_day}{" "}
                  {c.send_in_recipient_timezone ? `in each recipient's time zone (else ${c.timezone})` : c.timezone}
                  {c.optimize_send_time && ", optimised per recipient"}
                </dd>
                <dt>Audience</dt>
                <dd>
                  <a href={href(`/segments/${c.segment_id}`)}>the segment</a>
                </dd>
                <dt>Content</dt>
                <dd>{c.flow_id ? <a href={href(`/flows/${c.flow_id}`)}>a flow</a> : c.content ? `one email: “${c.content.subject}”` : "none yet"}</dd>
                <dt>Activated</dt>
                <dd>{when(c.activated_at)}</dd>
                <dt>Completed</dt>
                <dd>{when(c.completed_at)}</dd>
              </dl>
              {c.status_history && c.status_history.length > 1 && (
                <details>
                  <summary>Status history</summary>
                  <ol>
                    {c.status_history.map((entry) => (
                      <li key={entry.at + entry.status}>
                        {when(entry.at)}: {entry.previous ? `${entry.previous} → ` : ""}
                        {entry.status}
                      </li>
                    ))}
                  </ol>
                </details>
              )}
            </section>
            {c.status === "draft" ? <Review campaign={c} busy={busy} activate={() => changeTo("active", "Activate")} /> : <Report campaign={c} onStatus={campaign.reload} />}
          </>
        )}
      </Show>
    </Page>
  );
}

function Review({ campaign, busy, activate }: { campaign: Campaign; busy: boolean; activate: () => void }) {
  const schedule = useResource((signal) => api.get<SchedulePreview>(`/campaigns/${campaign.id}/schedule-preview`, undefined, signal), [campaign.id, campaign.updated_at]);
  const audience = useResource((signal) => api.get<Preview>(`/segments/${campaign.segment_id}/preview`, undefined, signal), [campaign.segment_id]);
  const flow = useResource(
    (signal) => (campaign.flow_id ? api.get<Flow>(`/flows/${campaign.flow_id}`, undefined, signal) : Promise.resolve(null)),
    [campaign.flow_id],
  );
  const steps = flow.value.state === "ready" && flow.value.data ? flow.value.data.steps : null;
  return (
    <>
      <section class="card" aria-labelledby="schedule-title">
        <h2 id="schedule-title">When each email goes</h2>
        <Show value={schedule.value} what="the schedule preview" retry={schedule.reload}>
          {(preview) => <Timeline preview={preview} describe={(index) => (steps ? stepSummary(steps[index]) : campaign.content ? `“${campaign.content.subject}”` : `step ${index + 1}`)} />}
        </Show>
        {campaign.send_in_recipient_timezone && <p class="hint">Shown in the campaign's zone; each recipient with a zone of their own gets the same local time.</p>}
      </section>
      <section class="card activate" aria-labelledby="activate-title">
        <h2 id="activate-title">Activate</h2>
        <Show value={audience.value} what="the audience" retry={audience.reload}>
          {(preview) => (
            <>
              <p data-testid="activation-summary">
                {number(preview.count)} contacts match the segment; {number(preview.opted_in)} of them opted in to marketing and will
                receive it (consent is checked again as each email goes).
              </p>
              <button type="button" class="primary" disabled={busy} onClick={activate}>
                Activate and send to {number(preview.opted_in)} {preview.opted_in === 1 ? "recipient" : "recipients"}
              </button>
            </>
          )}
        </Show>
      </section>
    </>
  );
}

function Timeline({ preview, describe }: { preview: SchedulePreview; describe: (index: number) => string }) {
  if (preview.sends.length === 0) return <Empty><p>Nothing to send yet: give the campaign a flow or an email.</p></Empty>;
  const times = preview.sends.map((send) => new Date(send.utc).getTime());
  const first = Math.min(...times);
  const span = Math.max(...times) - first || 1;
  return (
    <div class="timeline">
      <div class="track" aria-hidden="true">
        {preview.sends.map((send, i) => (
          <span key={send.step_index} class="dot" style={{ left: `${preview.sends.length === 1 ? 0 : ((times[i] - first) / span) * 100}%` }} title={describe(send.step_index)}>
            {i + 1}
          </span>
        ))}
      </div>
      <ol class="timeline-list">
        {preview.sends.map((send) => (
          <li key={send.step_index}>
            <strong>{when(send.local, preview.timezone)}</strong> ({preview.timezone}) · {when(send.utc, "UTC")} UTC — step {send.step_index + 1}: {describe(send.step_index)}
          </li>
        ))}
      </ol>
    </div>
  );
}

const COLUMNS: [keyof Figures, string][] = [
  ["sent", "Sent"],
  ["failed", "Failed"],
  ["skipped_no_consent", "Skipped (no consent)"],
  ["deferred", "Deferred"],
  ["held", "Held"],
  ["cancelled", "Cancelled"],
  ["opens", "Opens"],
  ["clicks", "Clicks"],
  ["unsubscribes", "Unsubscribes"],
];
const RATES: [keyof Figures, string][] = [
  ["open_rate", "Open rate"],
  ["click_rate", "Click rate"],
  ["click_to_open_rate", "Click-to-open"],
  ["unsubscribe_rate", "Unsubscribe rate"],
  ["failure_rate", "Failure rate"],
];

function Report({ campaign, onStatus }: { campaign: Campaign; onStatus: () => void }) {
  const stats = useResource((signal) => api.get<CampaignStats>(`/campaigns/${campaign.id}/stats`, undefined, signal), [campaign.id]);
  const running = campaign.status === "active" || campaign.status === "paused";
  // While it runs, the figures move: read them again every few seconds (and the status, which the system completes).
  useEffect(() => {
    if (!running) return;
    const timer = setInterval(() => {
      stats.reload();
    }, 2000);
    return () => clearInterval(timer);
  }, [running, campaign.id]);
  useEffect(() => {
    if (stats.value.state === "ready" && stats.value.data.status !== campaign.status) onStatus();
  }, [stats.value]);

  return (
    <>
      <section class="card" aria-labelledby="report-title">
        <h2 id="report-title">Report</h2>
        <Show value={stats.value} what="the figures" retry={stats.reload}>
          {(s) => (
            <>
              <dl class="kpis">
                <div>
                  <dt>Recipients</dt>
                  <dd data-testid="kpi-targeted">{number(s.targeted)}</dd>
                </div>
                <div>
                  <dt>Emails scheduled</dt>
                  <dd data-testid="kpi-scheduled">{number(s.scheduled)}</dd>
                </div>
                <div>
                  <dt>Sent</dt>
                  <dd data-testid="kpi-sent">{number(s.sent)}</dd>
                </div>
                <div>
                  <dt>Not yet sent</dt>
                  <dd data-testid="kpi-not-yet-sent">{number(s.not_yet_sent)}</dd>
                </div>
                <div>
                  <dt>Open rate</dt>
                  <dd>{percent(s.open_rate)}</dd>
                </div>
                <div>
                  <dt>Click rate</dt>
                  <dd>{percent(s.click_rate)}</dd>
                </div>
              </dl>
              <div class="scroll" tabIndex={0} role="region" aria-label="Figures per step (scrolls sideways)">
                <table class="data numbers" data-testid="step-stats">
                  <caption>Per step</caption>
                  <thead>
                    <tr>
                      <th scope="col">Step</th>
                      {COLUMNS.map(([key, label]) => (
                        <th key={key} scope="col">
                          {label}
                        </th>
                      ))}
                      {RATES.map(([key, label]) => (
                        <th key={key} scope="col">
                          {label}
                        </th>
                      ))}
                    </tr>
                  </thead>
                  <tbody>
                    {s.steps.map((step) => (
                      <tr key={step.step_index} data-step={step.step_index}>
                        <th scope="row">{step.step_index + 1}</th>
                        {COLUMNS.map(([key]) => (
                          <td key={key} data-col={key}>
                            {number(step[key] as number)}
                          </td>
                        ))}
                        {RATES.map(([key]) => (
                          <td key={key}>{percent(step[key] as number | null)}</td>
                        ))}
                      </tr>
                    ))}
                  </tbody>
                  <tfoot>
                    <tr data-step="total">
                      <th scope="row">All</th>
                      {COLUMNS.map(([key]) => (
                        <td key={key} data-col={key}>
                          {number(s[key] as number)}
                        </td>
                      ))}
                      {RATES.map(([key]) => (
                        <td key={key}>{percent(s[key] as number | null)}</td>
                      ))}
                    </tr>
                  </tfoot>
                </table>
              </div>
              {s.steps.length === 0 && <p class="hint">No email has been answered yet.</p>}
            </>
          )}
        </Show>
      </section>
      {/* Both read again when the campaign's status changes: a report first read while it
          ran would otherwise keep showing no recipients once it completed. */}
      <Activity campaignId={campaign.id} running={running} campaignStatus={campaign.status} />
      <Recipients campaignId={campaign.id} campaignStatus={campaign.status} />
    </>
  );
}

function Activity({ campaignId, running, campaignStatus }: { campaignId: string; running: boolean; campaignStatus: string }) {
  const activity = useResource((signal) => api.get<{ buckets: ActivityBucket[] }>(`/campaigns/${campaignId}/activity`, { bucket: "minute" }, signal), [campaignId, campaignStatus]);
  useEffect(() => {
    if (!running || (activity.value.state === "error")) return;
    const timer = setInterval(activity.reload, 5000);
    return () => clearInterval(timer);
  }, [running, activity.value.state]);
  return (
    <section class="card" aria-labelledby="activity-title">
      <h2 id="activity-title">Sends and engagement over time</h2>
      <Show value={activity.value} what="activity" endpoint="GET /api/campaigns/{id}/activity">
        {(data) => (data.buckets.length === 0 ? <Empty><p>Nothing has happened yet.</p></Empty> : <Chart buckets={data.buckets} />)}
      </Show>
    </section>
  );
}

const SERIES: [keyof Omit<ActivityBucket, "at">, string, string][] = [
  ["sent", "Sent", "#2563eb"],
  ["failed", "Failed", "#b91c1c"],
  ["opens", "Opens", "#15803d"],
  ["clicks", "Clicks", "#a16207"],
];

export function Chart({ buckets }: { buckets: ActivityBucket[] }) {
  const width = 640;
  const height = 200;
  const pad = 32;
  const max = Math.max(1, ...buckets.flatMap((bucket) => SERIES.map(([key]) => bucket[key])));
  const x = (i: number) => pad + (buckets.length === 1 ? (width - 2 * pad) / 2 : (i * (width - 2 * pad)) / (buckets.length - 1));
  const y = (value: number) => height - pad - (value / max) * (height - 2 * pad);
  const label = SERIES.map(([key, name]) => `${name} ${buckets.reduce((sum, bucket) => sum + bucket[key], 0)}`).join(", ");
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`Per minute, in total: ${label}`}>
        <line x1={pad} y1={height - pad} x2={width - pad} y2={height - pad} stroke="#6b7280" />
        <line x1={pad} y1={pad} x2={pad} y2={height - pad} stroke="#6b7280" />
        <text x={pad - 4} y={pad + 4} text-anchor="end" font-size="11">
          {max}
        </text>
        <text x={pad - 4} y={height - pad} text-anchor="end" font-size="11">
          0
        </text>
        <text x={pad} y={height - 8} font-size="11">
          {when(buckets[0].at)}
        </text>
        <text x={width - pad} y={height - 8} font-size="11" text-anchor="end">
          {when(buckets[buckets.length - 1].at)}
        </text>
        {SERIES.map(([key, , color]) => (
          <g key={key}>
            <polyline fill="none" stroke={color} stroke-width="2" points={buckets.map((bucket, i) => `${x(i)},${y(bucket[key])}`).join(" ")} />
            {/* a mark on every bucket: a single minute is a point, not a line */}
            {buckets.map((bucket, i) => (
              <circle key={i} cx={x(i)} cy={y(bucket[key])} r="3.5" fill={color} />
            ))}
          </g>
        ))}
      </svg>
      <figcaption>
        <ul class="legend">
          {SERIES.map(([key, name, color]) => (
            <li key={key}>
              <span class="swatch" style={{ background: color }} aria-hidden="true" /> {name}
            </li>
          ))}
        </ul>
      </figcaption>
    </figure>
  );
}

const OUTCOMES = ["", "sent", "failed", "skipped_no_consent", "deferred", "held", "cancelled"];

function Recipients({ campaignId, campaignStatus }: { campaignId: string; campaignStatus: string }) {
  const [status, setStatus] = useState("");
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const cursor = cursors[cursors.length - 1];
  const page = useResource(
    (signal) => api.get<PageOf<Recipient>>(`/campaigns/${campaignId}/recipients`, { status, cursor, limit: 50 }, signal),
    [campaignId, status, cursor, campaignStatus],
  );
  const csv = withQuery(`/api/campaigns/${campaignId}/recipients`, { status, format: "csv" });
  const missing = page.value.state === "error" && page.value.error instanceof ApiError && page.value.error.missing;
  return (
    <section class="card" aria-labelledby="recipients-title">
      <div class="step-head">
        <h2 id="recipients-title">Recipients</h2>
        {!missing && (
          <div class="actions">
            <div class="field">
              <label for="recipients-outcome">Outcome</label>
              <select id="recipients-outcome" value={status} onChange={(e) => { setStatus(e.currentTarget.value); setCursors([null]); }}>
                {OUTCOMES.map((value) => (
                  <option key={value} value={value}>
                    {value ? statusLabel(value) : "all"}
                  </option>
                ))}
              </select>
            </div>
            <a class="button" href={csv} download={`recipients-${campaignId}.csv`}>
              Download CSV
            </a>
          </div>
        )}
      </div>
      <Show value={page.value} what="recipients" endpoint="GET /api/campaigns/{id}/recipients">
        {(data) => (
          <>
            {data.items.length === 0 ? (
              <Empty><p>No recipients{status ? ` with outcome ${statusLabel(status)}` : ""} yet.</p></Empty>
            ) : (
              <table class="data">
                <caption class="visually-hidden">Recipients and their outcome</caption>
                <thead>
                  <tr>
                    <th scope="col">Email</th>
                    <th scope="col">Step</th>
                    <th scope="col">Outcome</th>
                    <th scope="col">Updated</th>
                  </tr>
                </thead>
                <tbody>
                  {data.items.map((item) => (
                    <tr key={item.send_id}>
                      <td>
                        {item.contact_id && item.email ? (
                          <a href={href(`/contacts/${item.contact_id}`)}>{item.email}</a>
                        ) : (
                          <span class="hint">{item.contact_id ? "a contact that no longer exists" : "unknown contact"}</span>
                        )}
                      </td>
                      <td>{item.step_index + 1}</td>
                      <td>
                        <Badge status={item.status} />
                      </td>
                      <td>{when(item.updated_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            <nav class="pager" aria-label="Pages of recipients">
              <button type="button" disabled={cursors.length === 1} onClick={() => setCursors((all) => all.slice(0, -1))}>
                Previous page
              </button>
              <button type="button" disabled={!data.next_cursor} onClick={() => setCursors((all) => [...all, data.next_cursor])}>
                Next page
              </button>
            </nav>
          </>
        )}
      </Show>
      {page.value.state === "loading" && cursors.length > 1 && <Loading what="recipients" />}
    </section>
  );
}

