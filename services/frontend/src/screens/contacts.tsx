import { useEffect, useState } from "preact/hooks";
import { api, ApiError, upload, type Contact, type ContactEngagement, type ImportReport, type Page as PageOf } from "../api";
import { href, navigate } from "../router";
import { Empty, ErrorMessage, NotAvailable, number, Page, Show, useResource, when } from "../ui";

const PAGE_SIZE = 25;

function fullName(contact: Pick<Contact, "first_name" | "last_name">): string {
  return [contact.first_name, contact.last_name].filter(Boolean).join(" ");
}

/** `#/contacts?q=&cursor=`: the API searches (the start of an email, a name or "first last", any case) and
 * pages; the cursor is the API's; the way back is kept in `back` (cursors, comma-separated). */
export function ContactList({ query }: { query: URLSearchParams }) {
  const q = query.get("q") ?? "";
  const cursor = query.get("cursor");
  const back = query.get("back")?.split(",").filter(Boolean) ?? [];
  const [draft, setDraft] = useState(q);
  useEffect(() => setDraft(q), [q]); // "Clear", the way back: the box shows what is searched
  const page = useResource(
    (signal) => api.get<PageOf<Contact>>("/contacts", { q, cursor, limit: PAGE_SIZE }, signal),
    [q, cursor],
  );

  function search(event: Event) {
    event.preventDefault();
    navigate("/contacts", { q: draft.trim() });
  }

  return (
    <Page
      title="Contacts"
      actions={
        <a class="button" href={href("/contacts/import")}>
          Import contacts
        </a>
      }
    >
      <form role="search" class="toolbar" onSubmit={search}>
        <label>
          Search by email or name
          <input type="search" name="q" value={draft} onInput={(e) => setDraft(e.currentTarget.value)} placeholder="ann@, Ann or Ann Archer" />
        </label>
        <button type="submit">Search</button>
        {q && (
          <a href={href("/contacts")} class="button secondary">
            Clear
          </a>
        )}
      </form>
      <Show value={page.value} what="contacts" retry={page.reload}>
        {(data) => {
          const items = data.items;
          return (
            <>
              {q && items.length > 0 && (
                <p class="hint" role="status" data-testid="search-summary">
                  Contacts whose email, first name, last name or full name starts with “{q}” (any case).
                </p>
              )}
              {items.length === 0 ? (
                <Empty>
                  {q ? (
                    <p>No contact's email or name starts with “{q}”.</p>
                  ) : (
                    <p>
                      No contacts yet. <a href={href("/contacts/import")}>Import a CSV or NDJSON file</a>.
                    </p>
                  )}
                </Empty>
              ) : (
                <table class="data">
                  <caption class="visually-hidden">Contacts</caption>
                  <thead>
                    <tr>
                      <th scope="col">Email</th>
                      <th scope="col">Name</th>
                      <th scope="col">Time zone</th>
                      <th scope="col">Marketing</th>
                      <th scope="col">Created</th>
                    </tr>
                  </thead>
                  <tbody>
                    {items.map((contact) => (
                      <tr key={contact.id}>
                        <td>
                          <a href={href(`/contacts/${contact.id}`)}>{contact.email}</a>
                        </td>
                        <td>{fullName(contact) || "–"}</td>
                        <td>{contact.timezone ?? "–"}</td>
                        <td>{contact.marketing_opt_in ? "opted in" : "not opted in"}</td>
                        <td>{when(contact.created_at)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
              <nav class="pager" aria-label="Pages of contacts">
                <button
                  type="button"
                  disabled={back.length === 0 && !cursor}
                  onClick={() => navigate("/contacts", { q, cursor: back[back.length - 1], back: back.slice(0, -1).join(",") })}
                >
                  Previous page
                </button>
                <button
                  type="button"
                  disabled={!data.next_cursor}
                  onClick={() => navigate("/contacts", { q, cursor: data.next_cursor, back: [...back, cursor ?? ""].join(",") })}
                >
                  Next page
                </button>
              </nav>
            </>
          );
        }}
      </Show>
    </Page>
  );
}

export function ContactProfile({ id }: { id: string }) {
  const contact = useResource((signal) => api.get<Contact>(`/contacts/${id}`, undefined, signal), [id]);
  const engagement = useResource(
    (signal) => api.get<ContactEngagement>(`/contacts/${id}/engagement`, undefined, signal),
    [id],
  );
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  async function setConsent(optIn: boolean) {
    setSaving(true);
    setError(null);
    try {
      contact.set(await api.patch<Contact>(`/contacts/${id}`, { marketing_opt_in: optIn }));
    } catch (caught) {
      setError(caught as ApiError);
    } finally {
      setSaving(false);
    }
  }

  return (
    <Page title="Contact">
      <p>
        <a href={href("/contacts")}>← All contacts</a>
      </p>
      <Show value={contact.value} what="the contact" retry={contact.reload}>
        {(c) => (
          <div class="grid-2">
            <section class="card" aria-labelledby="profile-title">
              <h2 id="profile-title">{c.email}</h2>
              <dl class="facts">
                <dt>Name</dt>
                <dd>{fullName(c) || "–"}</dd>
                <dt>Time zone</dt>
                <dd>{c.timezone ?? "none (the campaign's)"}</dd>
                <dt>Created</dt>
                <dd>{when(c.created_at)}</dd>
                <dt>Updated</dt>
                <dd>{when(c.updated_at)}</dd>
              </dl>
              <h3>Attributes</h3>
              {Object.keys(c.attributes).length === 0 ? (
                <p class="hint">No attributes.</p>
              ) : (
                <dl class="facts">
                  {Object.entries(c.attributes).map(([key, value]) => (
                    <>
                      <dt key={`k${key}`}>{key}</dt>
                      <dd key={`v${key}`}>
                        <code>{JSON.stringify(value)}</code>
                      </dd>
                    </>
                  ))}
                </dl>
              )}
            </section>
            <section class="card" aria-labelledby="consent-title">
              <h2 id="consent-title">Consent</h2>
              <p data-testid="consent">
                {c.marketing_opt_in ? "Opted in to marketing email." : "Not opted in: campaigns skip this contact."}
              </p>
              <button type="button" disabled={saving} onClick={() => setConsent(!c.marketing_opt_in)}>
                {c.marketing_opt_in ? "Withdraw consent" : "Record opt-in"}
              </button>
              {error && <ErrorMessage error={error} />}
              <h2>Engagement</h2>
              <Show value={engagement.value} what="engagement" endpoint="GET /api/contacts/{id}/engagement" retry={engagement.reload}>
                {(data) => <EngagementPanel data={data} />}
              </Show>
            </section>
          </div>
        )}
      </Show>
    </Page>
  );
}

const ENGAGEMENT_KINDS: Record<string, string> = { open: "Opened", click: "Clicked", unsubscribe: "Unsubscribed" };

function EngagementPanel({ data }: { data: ContactEngagement }) {
  return (
    <div data-testid="engagement">
      <dl class="facts">
        <dt>Sent</dt>
        <dd data-testid="engagement-sent">{number(data.sent)}</dd>
        <dt>Failed</dt>
        <dd data-testid="engagement-failed">{number(data.failed)}</dd>
        <dt>Opens</dt>
        <dd data-testid="engagement-opens">{number(data.opens)}</dd>
        <dt>Clicks</dt>
        <dd data-testid="engagement-clicks">{number(data.clicks)}</dd>
        <dt>Unsubscribes</dt>
        <dd data-testid="engagement-unsubscribes">{number(data.unsubscribes)}</dd>
        <dt>Last engaged</dt>
        <dd>{data.last_engaged_at ? when(data.last_engaged_at) : "never"}</dd>
      </dl>
      {data.recent.length === 0 ? (
        <Empty>
          <p>{data.sent === 0 ? "No campaign has sent this contact an email yet." : "No opens or clicks yet."}</p>
        </Empty>
      ) : (
        <table class="data" data-testid="engagement-recent">
          <caption>Recent engagement</caption>
          <thead>
            <tr>
              <th scope="col">What</th>
              <th scope="col">Campaign</th>
              <th scope="col">When</th>
            </tr>
          </thead>
          <tbody>
            {data.recent.map((event) => (
              <tr key={`${event.kind}-${event.campaign_id}-${event.step_index}-${event.at}`}>
                <td>
                  {ENGAGEMENT_KINDS[event.kind] ?? event.kind}
                  {event.url && (
                    <>
                      {" "}
                      <code>{event.url}</code>
                    </>
                  )}
                </td>
                <td>
                  <a href={href(`/campaigns/${event.campaign_id}`)}>its report, step {event.step_index + 1}</a>
                </td>
                <td>{when(event.at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

const KINDS: Record<string, string> = { csv: "text/csv", ndjson: "application/x-ndjson", jsonl: "application/x-ndjson" };

export function ContactImport() {
  const [file, setFile] = useState<File | null>(null);
  const [kind, setKind] = useState("text/csv");
  const [progress, setProgress] = useState<{ sent: number; total: number } | null>(null);
  const [report, setReport] = useState<ImportReport | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);

  function choose(chosen: File | null) {
    setFile(chosen);
    setReport(null);
    setError(null);
    const extension = chosen?.name.split(".").pop()?.toLowerCase() ?? "";
    if (KINDS[extension]) setKind(KINDS[extension]);
  }

  async function submit(event: Event) {
    event.preventDefault();
    if (!file) return;
    setBusy(true);
    setReport(null);
    setError(null);
    setProgress({ sent: 0, total: file.size });
    try {
      setReport(await upload<ImportReport>("/contacts/import", file, kind, (sent, total) => setProgress({ sent, total })));
    } catch (caught) {
      setError(caught as ApiError);
    } finally {
      setBusy(false);
    }
  }

  const share = progress && progress.total ? Math.round((100 * progress.sent) / progress.total) : 0;
  return (
    <Page title="Import contacts">
      <p>
        <a href={href("/contacts")}>← All contacts</a>
      </p>
      <form class="card" onSubmit={submit}>
        <p class="hint">
          CSV with a header row (<code>email,first_name,last_name,timezone,marketing_opt_in,attributes.plan</code>), or
          NDJSON with one contact per line. Contacts are matched by email: existing ones are updated.
        </p>
        <label>
          File
          <input type="file" name="file" accept=".csv,.ndjson,.jsonl,text/csv,application/x-ndjson" required onChange={(e) => choose(e.currentTarget.files?.[0] ?? null)} />
        </label>
        <div class="field">
          <label for="import-format">Format</label>
          <select id="import-format" value={kind} onChange={(e) => setKind(e.currentTarget.value)}>
            <option value="text/csv">CSV</option>
            <option value="application/x-ndjson">NDJSON</option>
          </select>
        </div>
        <button type="submit" class="primary" disabled={!file || busy}>
          {busy ? "Importing…" : "Import"}
        </button>
        {progress && busy && (
          <div class="progress">
            <label for="import-progress">{share < 100 ? `Uploading: ${share}%` : "Uploaded: the API is storing the contacts…"}</label>
            <progress id="import-progress" max={100} value={share} />
          </div>
        )}
      </form>
      {error && (error.missing ? <NotAvailable what="Import" endpoint="POST /api/contacts/import" /> : <ErrorMessage error={error} />)}
      {report && (
        <section class="card" aria-labelledby="report-title" data-testid="import-report">
          <h2 id="report-title">Import finished</h2>
          <p role="status">
            {number(report.inserted)} added, {number(report.updated)} updated, {number(report.rejected)} rejected.
          </p>
          {report.rejections.length > 0 && (
            <table class="data">
              <caption>Rejected rows</caption>
              <thead>
                <tr>
                  <th scope="col">Line</th>
                  <th scope="col">Reason</th>
                </tr>
              </thead>
              <tbody>
                {report.rejections.map((rejection) => (
                  <tr key={rejection.line}>
                    <td>{rejection.line}</td>
                    <td>{rejection.reason}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      )}
    </Page>
  );
}
