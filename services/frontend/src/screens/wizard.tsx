import { useEffect, useState } from "preact/hooks";
import {
  api,
  ApiError,
  type Campaign,
  type EmailContent,
  type Flow,
  type Page as PageOf,
  type Preview,
  type Segment,
  type SendTimeSuggestion,
} from "../api";
import { href, navigate } from "../router";
import { ErrorMessage, Loading, number, Page, percent, Show, useResource, zones } from "../ui";

interface Draft {
  name: string;
  description: string;
  segment_id: string;
  source: "flow" | "content";
  flow_id: string;
  content: EmailContent;
  start_date: string;
  start_time_of_day: string;
  timezone: string;
  send_in_recipient_timezone: boolean;
  optimize_send_time: boolean;
}

function today(): string {
  const now = new Date();
  return `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, "0")}-${String(now.getDate()).padStart(2, "0")}`;
}

function blank(): Draft {
  return {
    name: "",
    description: "",
    segment_id: "",
    source: "flow",
    flow_id: "",
    content: { subject: "", html: "", text: "" },
    start_date: today(),
    start_time_of_day: "09:00",
    timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC",
    send_in_recipient_timezone: false,
    optimize_send_time: false,
  };
}

function fromCampaign(campaign: Campaign): Draft {
  return {
    ...blank(),
    name: campaign.name,
    description: campaign.description,
    segment_id: campaign.segment_id,
    source: campaign.flow_id ? "flow" : "content",
    flow_id: campaign.flow_id ?? "",
    content: campaign.content ?? { subject: "", html: "", text: "" },
    start_date: campaign.start_date,
    start_time_of_day: campaign.start_time_of_day,
    timezone: campaign.timezone,
    send_in_recipient_timezone: campaign.send_in_recipient_timezone,
    optimize_send_time: campaign.optimize_send_time,
  };
}

function body(draft: Draft) {
  return {
    name: draft.name.trim(),
    description: draft.description,
    segment_id: draft.segment_id,
    flow_id: draft.source === "flow" ? draft.flow_id || null : null,
    content: draft.source === "content" ? draft.content : null,
    start_date: draft.start_date,
    start_time_of_day: draft.start_time_of_day,
    timezone: draft.timezone,
    send_in_recipient_timezone: draft.send_in_recipient_timezone,
    optimize_send_time: draft.optimize_send_time,
  };
}

function fieldError(problem: ApiError | null, field: string): string | undefined {
  const found = problem?.problem.errors?.filter((item) => item.path === `$.${field}` || item.path.startsWith(`$.${field}.`));
  return found?.length ? found.map((item) => item.message).join("; ") : undefined;
}

/** `#/campaigns/new` and `#/campaigns/{id}/edit`: audience, content, schedule; then the review on the campaign's page. */
export function CampaignWizard({ id }: { id: string | null }) {
  const [draft, setDraft] = useState<Draft>(blank);
  const [loaded, setLoaded] = useState<"loading" | "ready" | ApiError>(id ? "loading" : "ready");
  const [problem, setProblem] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const segments = useResource((signal) => api.get<PageOf<Segment>>("/segments", { limit: 200 }, signal), []);
  const flows = useResource((signal) => api.get<PageOf<Flow>>("/flows", { limit: 200 }, signal), []);
  const [audience, setAudience] = useState<Preview | ApiError | null>(null);
  const [suggestion, setSuggestion] = useState<SendTimeSuggestion | ApiError | null>(null);

  useEffect(() => {
    if (!id) return;
    api.get<Campaign>(`/campaigns/${id}`).then(
      (campaign) => {
        setDraft(fromCampaign(campaign));
        setLoaded("ready");
      },
      (error) => setLoaded(error),
    );
  }, [id]);

  useEffect(() => {
    setAudience(null);
    if (!draft.segment_id) return;
    api.get<Preview>(`/segments/${draft.segment_id}/preview`).then(setAudience, setAudience);
  }, [draft.segment_id]);

  useEffect(() => {
    setSuggestion(null);
    if (!draft.segment_id) return;
    const timer = setTimeout(() => {
      api
        .get<SendTimeSuggestion>("/send-time-suggestion", {
          segment_id: draft.segment_id,
          timezone: draft.timezone,
          default_time_of_day: draft.start_time_of_day,
        })
        .then(setSuggestion, setSuggestion);
    }, 300);
    return () => clearTimeout(timer);
  }, [draft.segment_id, draft.timezone, draft.start_time_of_day]);

  const set = (patch: Partial<Draft>) => setDraft((current) => ({ ...current, ...patch }));

  async function submit(event: Event) {
    event.preventDefault();
    setBusy(true);
    setProblem(null);
    try {
      const saved = id ? await api.patch<Campaign>(`/campaigns/${id}`, body(draft)) : await api.post<Campaign>("/campaigns", body(draft));
      navigate(`/campaigns/${saved.id}`, saved.warnings.length ? { warning: saved.warnings.join(" ") } : undefined);
    } catch (error) {
      setProblem(error as ApiError);
    } finally {
      setBusy(false);
    }
  }

  if (loaded === "loading") return <Loading what="the campaign" />;
  if (loaded instanceof ApiError) return <ErrorMessage error={loaded} />;

  const err = (field: string) => fieldError(problem, field);
  const ErrorFor = ({ field }: { field: string }) => {
    const text = err(field);
    return text ? (
      <span class="field-error" id={`err-${field}`} role="alert">
        {text}
      </span>
    ) : null;
  };
  const describedBy = (field: string) => (err(field) ? `err-${field}` : undefined);

  return (
    <Page title={id ? "Edit campaign" : "New campaign"}>
      <p>
        <a href={href("/campaigns")}>← All campaigns</a>
      </p>
      <ol class="wizard-steps" aria-label="Steps">
        <li>Audience</li>
        <li>Content</li>
        <li>Schedule</li>
        <li>Review and activate</li>
      </ol>
      <form class="wizard" onSubmit={submit} noValidate>
        <fieldset class="card">
          <legend>1. Audience</legend>
          <label>
            Campaign name
            <input name="name" required value={draft.name} aria-describedby={describedBy("name")} onInput={(e) => set({ name: e.currentTarget.value })} />
            <ErrorFor field="name" />
          </label>
          <label>
            Description
            <textarea name="description" rows={2} value={draft.description} onInput={(e) => set({ description: e.currentTarget.value })} />
          </label>
          <div class="field">
            <label for="campaign-segment">Segment</label>
            <Show value={segments.value} what="segments" retry={segments.reload}>
              {(data) => (
                <select id="campaign-segment" name="segment_id" required value={draft.segment_id} aria-describedby={describedBy("segment_id")} onChange={(e) => set({ segment_id: e.currentTarget.value })}>
                  <option value="">choose a segment…</option>
                  {data.items.map((segment) => (
                    <option key={segment.id} value={segment.id}>
                      {segment.name}
                    </option>
                  ))}
                </select>
              )}
            </Show>
            <ErrorFor field="segment_id" />
          </div>
          {audience && !(audience instanceof ApiError) && (
            <p class="hint" data-testid="wizard-audience">
              {number(audience.count)} contacts match, {number(audience.opted_in)} of them opted in.
            </p>
          )}
          {audience instanceof ApiError && <ErrorMessage error={audience} />}
        </fieldset>

        <fieldset class="card">
          <legend>2. Content</legend>
          <div class="choice" role="radiogroup" aria-label="What to send">
            <label class="inline">
              <input type="radio" name="source" value="flow" checked={draft.source === "flow"} onChange={() => set({ source: "flow" })} /> A flow
            </label>
            <label class="inline">
              <input type="radio" name="source" value="content" checked={draft.source === "content"} onChange={() => set({ source: "content" })} /> One email
            </label>
          </div>
          {draft.source === "flow" ? (
            <div class="field">
              <label for="campaign-flow">Flow</label>
              <Show value={flows.value} what="flows" retry={flows.reload}>
                {(data) => (
                  <select id="campaign-flow" name="flow_id" value={draft.flow_id} onChange={(e) => set({ flow_id: e.currentTarget.value })}>
                    <option value="">choose a flow…</option>
                    {data.items.map((flow) => (
                      <option key={flow.id} value={flow.id}>
                        {flow.name} ({flow.steps.length} steps)
                      </option>
                    ))}
                  </select>
                )}
              </Show>
            </div>
          ) : (
            <>
              <label>
                Subject
                <input name="subject" value={draft.content.subject} aria-describedby={describedBy("content")} onInput={(e) => set({ content: { ...draft.content, subject: e.currentTarget.value } })} />
              </label>
              <label>
                HTML body
                <textarea name="html" rows={5} value={draft.content.html} onInput={(e) => set({ content: { ...draft.content, html: e.currentTarget.value } })} />
              </label>
              <label>
                Text body
                <textarea name="text" rows={3} value={draft.content.text} onInput={(e) => set({ content: { ...draft.content, text: e.currentTarget.value } })} />
              </label>
              <ErrorFor field="content" />
            </>
          )}
        </fieldset>

        <fieldset class="card">
          <legend>3. Schedule</legend>
          <div class="row">
            <label>
              Start date
              <input type="date" name="start_date" required value={draft.start_date} aria-describedby={describedBy("start_date")} onInput={(e) => set({ start_date: e.currentTarget.value })} />
              <ErrorFor field="start_date" />
            </label>
            <label>
              Time of day
              <input type="time" name="start_time_of_day" required value={draft.start_time_of_day} aria-describedby={describedBy("start_time_of_day")} onInput={(e) => set({ start_time_of_day: e.currentTarget.value })} />
              <ErrorFor field="start_time_of_day" />
            </label>
            <div class="field">
              <label for="campaign-timezone">Time zone</label>
              <select id="campaign-timezone" name="timezone" value={draft.timezone} aria-describedby={describedBy("timezone")} onChange={(e) => set({ timezone: e.currentTarget.value })}>
                {zones().map((zone) => (
                  <option key={zone} value={zone}>
                    {zone}
                  </option>
                ))}
              </select>
              <ErrorFor field="timezone" />
            </div>
          </div>
          <label class="inline">
            <input type="checkbox" name="send_in_recipient_timezone" checked={draft.send_in_recipient_timezone} onChange={(e) => set({ send_in_recipient_timezone: e.currentTarget.checked })} />
            Send at this time in each recipient's own time zone (those without one get the campaign's)
          </label>
          <label class="inline">
            <input type="checkbox" name="optimize_send_time" checked={draft.optimize_send_time} onChange={(e) => set({ optimize_send_time: e.currentTarget.checked })} />
            Optimise the send time: each recipient at their own best hour, within 24 hours of the start
          </label>
          <SuggestionBox suggestion={suggestion} segmentChosen={!!draft.segment_id} onUse={(time) => set({ start_time_of_day: time, send_in_recipient_timezone: true })} />
        </fieldset>

        {problem && !problem.problem.errors?.length && <ErrorMessage error={problem} />}
        {problem && problem.problem.errors?.length ? (
          <p class="state error" role="alert">
            The campaign was not saved: {problem.message}
          </p>
        ) : null}
        <div class="toolbar">
          <button type="submit" class="primary" disabled={busy}>
            {busy ? "Saving…" : "Save draft and review"}
          </button>
        </div>
      </form>
    </Page>
  );
}

function SuggestionBox({
  suggestion,
  segmentChosen,
  onUse,
}: {
  suggestion: SendTimeSuggestion | ApiError | null;
  segmentChosen: boolean;
  onUse: (time: string) => void;
}) {
  if (!segmentChosen) return <p class="hint">Choose a segment to get a suggested send time.</p>;
  if (suggestion === null) return <Loading what="the suggested send time" />;
  if (suggestion instanceof ApiError) return <ErrorMessage error={suggestion} />;
  return (
    <div class="suggestion" data-testid="send-time-suggestion" aria-live="polite">
      <h3>Suggested send time</h3>
      {suggestion.fallback ? (
        <p>
          No better time is known: {suggestion.reason ?? "too little history"}. The time you chose (
          {suggestion.start_time_of_day}) stands.
        </p>
      ) : (
        <>
          <p>
            <strong>{suggestion.start_time_of_day}</strong> in each recipient's local time
            {suggestion.best_weekday ? `, best on ${suggestion.best_weekday}s` : ""}.
          </p>
          <p class="hint">
            From {number(suggestion.events)} opens and clicks by {number(suggestion.contacts_with_history)} of the segment's{" "}
            {number(suggestion.contacts)} contacts: {percent(suggestion.expected_share)} of their engagement falls in that hour,
            against {percent(suggestion.default_share)} at the time you chose
            {suggestion.lift ? ` (${suggestion.lift.toFixed(2)}× as much)` : ""}.
          </p>
          <button type="button" onClick={() => onUse(suggestion.start_time_of_day)}>
            Use {suggestion.start_time_of_day} in recipients' time zones
          </button>
        </>
      )}
    </div>
  );
}
