import { useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError, type Contact, type EmailContent, type Flow, type Page as PageOf, type Step } from "../api";
import { href } from "../router";
import { Empty, ErrorMessage, Loading, NotAvailable, Page, Show, useResource, when } from "../ui";

export function FlowList() {
  const page = useResource((signal) => api.get<PageOf<Flow>>("/flows", { limit: 100 }, signal), []);
  return (
    <Page
      title="Flows"
      actions={
        <a class="button primary" href={href("/flows/new")}>
          New flow
        </a>
      }
    >
      <Show value={page.value} what="flows" retry={page.reload}>
        {(data) =>
          data.items.length === 0 ? (
            <Empty>
              <p>
                No flows yet. <a href={href("/flows/new")}>Write the first one</a>.
              </p>
            </Empty>
          ) : (
            <table class="data">
              <caption class="visually-hidden">Flows</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Steps</th>
                  <th scope="col">Updated</th>
                </tr>
              </thead>
              <tbody>
                {data.items.map((flow) => (
                  <tr key={flow.id}>
                    <td>
                      <a href={href(`/flows/${flow.id}`)}>{flow.name}</a>
                    </td>
                    <td>{flow.steps.map(stepSummary).join(" → ")}</td>
                    <td>{when(flow.updated_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Show>
    </Page>
  );
}

export function waitText(config: { days?: number; hours?: number; minutes?: number; seconds?: number }): string {
  const parts = (["days", "hours", "minutes", "seconds"] as const)
    .filter((unit) => config[unit])
    .map((unit) => `${config[unit]} ${config[unit] === 1 ? unit.slice(0, -1) : unit}`);
  return parts.join(" ") || "0 seconds";
}

export function stepSummary(step: Step): string {
  return step.type === "SEND_EMAIL" ? `email “${step.config.subject}”` : `wait ${waitText(step.config)}`;
}

// The fields a template can use: those of the recipient (contracts.events.Recipient.template_fields).
const BASE_FIELDS = ["first_name", "last_name", "email", "timezone", "contact_id"];

type EditStep = Step & { key: number };
let nextKey = 1;

function emailStep(): EditStep {
  return { key: nextKey++, type: "SEND_EMAIL", config: { subject: "", html: "", text: "" } };
}

function waitStep(): EditStep {
  return { key: nextKey++, type: "WAIT", config: { days: 1 } };
}

function stepErrors(problem: ApiError | null): { byStep: Record<number, string[]>; other: string[] } {
  const byStep: Record<number, string[]> = {};
  const other: string[] = [];
  for (const item of problem?.problem.errors ?? []) {
    const found = /^\$\.steps\[(\d+)\](.*)$/.exec(item.path);
    if (found) (byStep[Number(found[1])] ??= []).push(`${found[2].replace(/^\.config\.?/, "") || "step"}: ${item.message}`);
    else other.push(`${item.path}: ${item.message}`);
  }
  return { byStep, other };
}

export function FlowEditor({ id }: { id: string | null }) {
  const [savedId, setSavedId] = useState<string | null>(id);
  const [name, setName] = useState("");
  const [steps, setSteps] = useState<EditStep[]>(() => [emailStep()]);
  const [loaded, setLoaded] = useState<"loading" | "ready" | ApiError>(id ? "loading" : "ready");
  const [problem, setProblem] = useState<ApiError | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [changed, setChanged] = useState(false);
  const contacts = useResource((signal) => api.get<PageOf<Contact>>("/contacts", { limit: 50 }, signal), []);
  const [contactId, setContactId] = useState("");

  useEffect(() => {
    if (!id) return;
    api.get<Flow>(`/flows/${id}`).then(
      (flow) => {
        setName(flow.name);
        setSteps(flow.steps.map((step) => ({ ...step, key: nextKey++ }) as EditStep));
        setLoaded("ready");
      },
      (error) => setLoaded(error),
    );
  }, [id]);

  const contactList = contacts.value.state === "ready" ? contacts.value.data.items : [];
  const chosen = contactList.find((contact) => contact.id === contactId) ?? null;
  const attributeNames = [...new Set(contactList.flatMap((contact) => Object.keys(contact.attributes)))].sort();
  const fields = [...BASE_FIELDS, ...attributeNames.map((attribute) => `attributes.${attribute}`)];

  function change(index: number, step: EditStep | null) {
    setChanged(true);
    setSaved(null);
    setSteps((all) => (step === null ? all.filter((_, i) => i !== index) : all.map((s, i) => (i === index ? step : s))));
  }

  function move(index: number, by: number) {
    setChanged(true);
    setSteps((all) => {
      const copy = [...all];
      const [step] = copy.splice(index, 1);
      copy.splice(index + by, 0, step);
      return copy;
    });
  }

  async function save(event: Event) {
    event.preventDefault();
    setBusy(true);
    setProblem(null);
    const body = { name: name.trim(), steps: steps.map(({ type, config }) => ({ type, config })) };
    try {
      if (savedId) await api.put<Flow>(`/flows/${savedId}`, body);
      else {
        const flow = await api.post<Flow>("/flows", body);
        setSavedId(flow.id);
        history.replaceState(null, "", href(`/flows/${flow.id}`));
      }
      setSaved("Flow saved.");
      setChanged(false);
    } catch (error) {
      setProblem(error as ApiError);
    } finally {
      setBusy(false);
    }
  }

  if (loaded === "loading") return <Loading what="the flow" />;
  if (loaded instanceof ApiError) return <ErrorMessage error={loaded} />;
  const errors = stepErrors(problem);

  return (
    <Page title={savedId ? "Flow" : "New flow"}>
      <p>
        <a href={href("/flows")}>← All flows</a>
      </p>
      <form onSubmit={save} class="flow">
        <div class="card">
          <label>
            Name
            <input name="name" required value={name} onInput={(e) => { setName(e.currentTarget.value); setChanged(true); }} />
          </label>
          <div class="field">
            <label for="preview-contact">Preview as contact</label>
            <select id="preview-contact" value={contactId} onChange={(e) => setContactId(e.currentTarget.value)}>
              <option value="">choose a contact…</option>
              {contactList.map((contact) => (
                <option key={contact.id} value={contact.id}>
                  {contact.email}
                </option>
              ))}
            </select>
          </div>
          {contacts.value.state === "loading" && <Loading what="contacts" />}
        </div>
        <ol class="steps">
          {steps.map((step, index) => (
            <li key={step.key} class="card step" data-step={index}>
              <div class="step-head">
                <h2>
                  Step {index + 1}: {step.type === "SEND_EMAIL" ? "send an email" : "wait"}
                </h2>
                <div class="actions">
                  <button type="button" disabled={index === 0} onClick={() => move(index, -1)} aria-label={`Move step ${index + 1} up`}>
                    ↑
                  </button>
                  <button type="button" disabled={index === steps.length - 1} onClick={() => move(index, 1)} aria-label={`Move step ${index + 1} down`}>
                    ↓
                  </button>
                  <button type="button" class="danger" onClick={() => change(index, null)}>
                    Remove step {index + 1}
                  </button>
                </div>
              </div>
              {errors.byStep[index] && (
                <div role="alert">
                  <ul class="node-error">
                    {errors.byStep[index].map((text) => (
                      <li key={text}>{text}</li>
                    ))}
                  </ul>
                </div>
              )}
              {step.type === "SEND_EMAIL" ? (
                <EmailEditor
                  index={index}
                  config={step.config}
                  fields={fields}
                  onChange={(config) => change(index, { ...step, config })}
                  flowId={changed ? null : savedId}
                  contact={chosen}
                />
              ) : (
                <WaitEditor index={index} config={step.config} onChange={(config) => change(index, { ...step, config })} />
              )}
            </li>
          ))}
        </ol>
        <div class="toolbar">
          <button type="button" onClick={() => { setSteps((all) => [...all, emailStep()]); setChanged(true); }}>
            Add email
          </button>
          <button type="button" onClick={() => { setSteps((all) => [...all, waitStep()]); setChanged(true); }}>
            Add wait
          </button>
          <button type="submit" class="primary" disabled={busy}>
            {busy ? "Saving…" : "Save flow"}
          </button>
          <span role="status">{saved}</span>
        </div>
        {errors.other.length > 0 && (
          <div class="state error" role="alert">
            {errors.other.map((text) => (
              <p key={text}>{text}</p>
            ))}
          </div>
        )}
        {problem && !problem.problem.errors?.length && <ErrorMessage error={problem} />}
      </form>
    </Page>
  );
}

function WaitEditor({ index, config, onChange }: { index: number; config: Record<string, number | undefined>; onChange: (config: Record<string, number>) => void }) {
  return (
    <fieldset class="wait">
      <legend>Wait before the next step</legend>
      {(["days", "hours", "minutes", "seconds"] as const).map((unit) => (
        <label key={unit}>
          {unit[0].toUpperCase() + unit.slice(1)}
          <input
            type="number"
            min={0}
            name={`step-${index}-${unit}`}
            value={config[unit] ?? 0}
            onInput={(e) => {
              const next: Record<string, number> = {};
              for (const [key, value] of Object.entries({ ...config, [unit]: Number(e.currentTarget.value) || 0 })) if (value) next[key] = value;
              onChange(next);
            }}
          />
        </label>
      ))}
    </fieldset>
  );
}

function EmailEditor({
  index,
  config,
  fields,
  onChange,
  flowId,
  contact,
}: {
  index: number;
  config: EmailContent;
  fields: string[];
  onChange: (config: EmailContent) => void;
  flowId: string | null;
  contact: Contact | null;
}) {
  const [target, setTarget] = useState<keyof EmailContent>("subject");
  const [field, setField] = useState(fields[0]);
  const refs = { subject: useRef<HTMLInputElement>(null), html: useRef<HTMLTextAreaElement>(null), text: useRef<HTMLTextAreaElement>(null) };
  const id = `step-${index}`;

  function insert() {
    const element = refs[target].current;
    const token = `{{ ${field} }}`;
    const value = config[target] ?? "";
    const start = element?.selectionStart ?? value.length;
    const end = element?.selectionEnd ?? value.length;
    onChange({ ...config, [target]: value.slice(0, start) + token + value.slice(end) });
    requestAnimationFrame(() => {
      element?.focus();
      element?.setSelectionRange(start + token.length, start + token.length);
    });
  }

  return (
    <div class="email">
      <label>
        Subject
        <input ref={refs.subject} name={`${id}-subject`} value={config.subject} onFocus={() => setTarget("subject")} onInput={(e) => onChange({ ...config, subject: e.currentTarget.value })} />
      </label>
      <div class="field-picker" role="group" aria-label={`Insert a contact field into step ${index + 1}`}>
        <div class="field">
          <label for={`${id}-field`}>Contact field</label>
          <select id={`${id}-field`} value={field} onChange={(e) => setField(e.currentTarget.value)}>
            {fields.map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for={`${id}-into`}>into</label>
          <select id={`${id}-into`} value={target} onChange={(e) => setTarget(e.currentTarget.value as keyof EmailContent)}>
            <option value="subject">subject</option>
            <option value="html">HTML</option>
            <option value="text">text</option>
          </select>
        </div>
        <button type="button" onClick={insert}>
          Insert field
        </button>
      </div>
      <label>
        HTML body
        <textarea ref={refs.html} name={`${id}-html`} rows={6} value={config.html} onFocus={() => setTarget("html")} onInput={(e) => onChange({ ...config, html: e.currentTarget.value })} />
      </label>
      <label>
        Text body
        <textarea ref={refs.text} name={`${id}-text`} rows={4} value={config.text} onFocus={() => setTarget("text")} onInput={(e) => onChange({ ...config, text: e.currentTarget.value })} />
      </label>
      <p class="hint">
        Templates are Jinja2: <code>{"{{ first_name | default(\"there\") }}"}</code> gives a fallback.
      </p>
      <RenderPreview flowId={flowId} index={index} contact={contact} />
      <TestSend flowId={flowId} index={index} contact={contact} />
    </div>
  );
}

function RenderPreview({ flowId, index, contact }: { flowId: string | null; index: number; contact: Contact | null }) {
  const [state, setState] = useState<{ subject: string; html: string; text: string } | ApiError | "busy" | null>(null);
  const endpoint = "POST /api/flows/{id}/steps/{index}/render";
  async function run() {
    if (!flowId || !contact) return;
    setState("busy");
    try {
      setState(await api.post(`/flows/${flowId}/steps/${index}/render`, { contact_id: contact.id }));
    } catch (error) {
      setState(error as ApiError);
    }
  }
  return (
    <div class="render">
      <button type="button" disabled={!flowId || !contact || state === "busy"} onClick={run}>
        Preview as {contact ? contact.email : "a contact"}
      </button>
      {!flowId && <span class="hint"> Save the flow to preview it.</span>}
      {flowId && !contact && <span class="hint"> Choose a contact above.</span>}
      {state === "busy" && <Loading what="the preview" />}
      {state instanceof ApiError && (state.missing ? <NotAvailable what="Preview" endpoint={endpoint} /> : <ErrorMessage error={state} />)}
      {state && typeof state === "object" && !(state instanceof ApiError) && (
        <div class="rendered" data-testid={`rendered-${index}`}>
          <p>
            <strong>Subject:</strong> {state.subject}
          </p>
          {state.html && <iframe title={`Step ${index + 1} rendered as HTML`} sandbox="" srcdoc={state.html} />}
          {state.text && <pre>{state.text}</pre>}
        </div>
      )}
    </div>
  );
}

function TestSend({ flowId, index, contact }: { flowId: string | null; index: number; contact: Contact | null }) {
  const [to, setTo] = useState("");
  const [state, setState] = useState<"idle" | "busy" | "sent" | ApiError>("idle");
  const endpoint = "POST /api/flows/{id}/steps/{index}/test-send";
  async function run(event: Event) {
    event.preventDefault();
    if (!flowId) return;
    setState("busy");
    try {
      const addresses = to.split(/[\s,;]+/).filter(Boolean);
      await api.post(`/flows/${flowId}/steps/${index}/test-send`, { to: addresses, contact_id: contact?.id ?? null });
      setState("sent");
    } catch (error) {
      setState(error as ApiError);
    }
  }
  return (
    <div class="test-send">
      <label>
        Send a test of step {index + 1} to
        <input type="text" inputMode="email" name={`step-${index}-test-to`} placeholder="you@example.com, colleague@example.com" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
      </label>
      <button type="button" disabled={!flowId || !to.trim() || state === "busy"} onClick={run}>
        Send test
      </button>
      {state === "sent" && <p role="status">Test email on its way.</p>}
      {state instanceof ApiError && (state.missing ? <NotAvailable what="Test send" endpoint={endpoint} /> : <ErrorMessage error={state} />)}
    </div>
  );
}
