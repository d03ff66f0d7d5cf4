import { useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError, type Condition, type Group, type Op, type Page as PageOf, type Preview, type Segment } from "../api";
import { href } from "../router";
import { Empty, ErrorMessage, Loading, number, Page, Show, useResource, when } from "../ui";

export function SegmentList() {
  const page = useResource((signal) => api.get<PageOf<Segment>>("/segments", { limit: 100 }, signal), []);
  return (
    <Page
      title="Segments"
      actions={
        <a class="button primary" href={href("/segments/new")}>
          New segment
        </a>
      }
    >
      <Show value={page.value} what="segments" retry={page.reload}>
        {(data) =>
          data.items.length === 0 ? (
            <Empty>
              <p>
                No segments yet. <a href={href("/segments/new")}>Build the first one</a>.
              </p>
            </Empty>
          ) : (
            <table class="data">
              <caption class="visually-hidden">Segments</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Conditions</th>
                  <th scope="col">Updated</th>
                </tr>
              </thead>
              <tbody>
                {data.items.map((segment) => (
                  <tr key={segment.id}>
                    <td>
                      <a href={href(`/segments/${segment.id}`)}>{segment.name}</a>
                    </td>
                    <td>{describe(segment.criteria)}</td>
                    <td>{when(segment.updated_at)}</td>
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

// --- the tree as the builder edits it -------------------------------------------------

type Kind = "text" | "bool" | "time" | "attribute";
type ValueType = "text" | "number" | "boolean";

interface ConditionNode {
  kind: "condition";
  key: number;
  field: string; // a column, or "attributes"
  attribute: string;
  op: Op;
  text: string;
  type: ValueType;
}

interface GroupNode {
  kind: "group";
  key: number;
  operator: "AND" | "OR";
  children: Node[];
}

type Node = ConditionNode | GroupNode;

export const COLUMNS: Record<string, Kind> = {
  email: "text",
  first_name: "text",
  last_name: "text",
  timezone: "text",
  marketing_opt_in: "bool",
  created_at: "time",
};

const OP_LABELS: Record<Op, string> = {
  eq: "is",
  neq: "is not",
  gt: "greater than",
  gte: "at least",
  lt: "less than",
  lte: "at most",
  in: "is one of",
  not_in: "is none of",
  contains: "contains",
  starts_with: "starts with",
  exists: "is set",
  not_exists: "is not set",
  before: "before",
  after: "after",
  within_last_days: "within the last (days)",
};

const OPS: Record<Kind, Op[]> = {
  text: ["eq", "neq", "in", "not_in", "contains", "starts_with", "exists", "not_exists"],
  bool: ["eq", "neq", "exists", "not_exists"],
  time: ["before", "after", "within_last_days", "exists", "not_exists"],
  attribute: Object.keys(OP_LABELS) as Op[],
};

let nextKey = 1;

function kindOf(node: ConditionNode): Kind {
  return node.field === "attributes" ? "attribute" : COLUMNS[node.field] ?? "text";
}

function newCondition(): ConditionNode {
  return { kind: "condition", key: nextKey++, field: "email", attribute: "", op: "contains", text: "", type: "text" };
}

function newGroup(operator: "AND" | "OR" = "AND"): GroupNode {
  return { kind: "group", key: nextKey++, operator, children: [newCondition()] };
}

function isGroup(node: Group | Condition): node is Group {
  return "operator" in node;
}

function fromApi(group: Group): GroupNode {
  return {
    kind: "group",
    key: nextKey++,
    operator: group.operator,
    children: group.conditions.map((node): Node => {
      if (isGroup(node)) return fromApi(node);
      const attribute = node.field.startsWith("attributes.") ? node.field.slice("attributes.".length) : "";
      const value = node.value;
      const first = Array.isArray(value) ? value[0] : value;
      const type: ValueType = typeof first === "number" ? "number" : typeof first === "boolean" ? "boolean" : "text";
      return {
        kind: "condition",
        key: nextKey++,
        field: attribute ? "attributes" : node.field,
        attribute,
        op: node.op,
        text: value === undefined || value === null ? "" : Array.isArray(value) ? value.join(", ") : String(value),
        type,
      };
    }),
  };
}

function typed(text: string, type: ValueType): unknown {
  if (type === "number") return text.trim() === "" || Number.isNaN(Number(text)) ? text : Number(text);
  if (type === "boolean") return text === "true";
  return text;
}

function valueOf(node: ConditionNode): unknown {
  const kind = kindOf(node);
  switch (node.op) {
    case "exists":
    case "not_exists":
      return undefined;
    case "gt":
    case "gte":
    case "lt":
    case "lte":
    case "within_last_days":
      return typed(node.text, "number");
    case "in":
    case "not_in":
      return node.text
        .split(",")
        .map((item) => item.trim())
        .filter(Boolean)
        .map((item) => (kind === "attribute" ? typed(item, node.type === "number" ? "number" : "text") : item));
    case "eq":
    case "neq":
      if (kind === "bool") return node.text === "true";
      return kind === "attribute" ? typed(node.text, node.type) : node.text;
    default:
      return node.text;
  }
}

function toApi(group: GroupNode): Group {
  return {
    operator: group.operator,
    conditions: group.children.map((node) => {
      if (node.kind === "group") return toApi(node);
      const condition: Condition = { field: node.field === "attributes" ? `attributes.${node.attribute}` : node.field, op: node.op };
      const value = valueOf(node);
      if (value !== undefined) condition.value = value;
      return condition;
    }),
  };
}

function describe(group: Group): string {
  const parts = group.conditions.map((node) =>
    isGroup(node) ? `(${describe(node)})` : `${node.field} ${OP_LABELS[node.op] ?? node.op}${node.value === undefined ? "" : ` ${JSON.stringify(node.value)}`}`,
  );
  return parts.join(group.operator === "AND" ? " and " : " or ");
}

/** Replaces the node at `path` (indexes from the root group) with what `change` makes of it; null removes it. */
function update(root: GroupNode, path: number[], change: (node: Node) => Node | null): GroupNode {
  if (path.length === 0) return (change(root) as GroupNode) ?? root;
  const [index, ...rest] = path;
  const children = [...root.children];
  const child = children[index];
  const changed = rest.length === 0 ? change(child) : child.kind === "group" ? update(child, rest, change) : child;
  if (changed === null) children.splice(index, 1);
  else children[index] = changed;
  return { ...root, children };
}

/** Errors by node: "$.criteria.conditions[1].conditions[0].value" -> "1.0" (the root is ""). */
function errorsByNode(problem: ApiError | null): { nodes: Record<string, string[]>; other: string[] } {
  const nodes: Record<string, string[]> = {};
  const other: string[] = [];
  for (const item of problem?.problem.errors ?? []) {
    if (!item.path.startsWith("$.criteria")) {
      other.push(`${item.path}: ${item.message}`);
      continue;
    }
    const indexes = [...item.path.matchAll(/\.conditions\[(\d+)\]/g)].map((found) => found[1]);
    const key = indexes.join(".");
    (nodes[key] ??= []).push(item.message.replace(/^Value error, /, ""));
  }
  return { nodes, other };
}

function label(path: number[]): string {
  return path.length === 0 ? "top group" : path.map((i) => i + 1).join(".");
}

// --- the builder ------------------------------------------------------------------------

export function SegmentBuilder({ id }: { id: string | null }) {
  const [savedId, setSavedId] = useState<string | null>(id);
  const [name, setName] = useState("");
  const [tree, setTree] = useState<GroupNode>(() => newGroup());
  const [loaded, setLoaded] = useState<"loading" | "ready" | ApiError>(id ? "loading" : "ready");
  const [saving, setSaving] = useState<"idle" | "saving" | "saved">("idle");
  const [problem, setProblem] = useState<ApiError | null>(null);
  const [preview, setPreview] = useState<Preview | null>(null);
  const [counting, setCounting] = useState(false);
  const dirty = useRef(false);
  const generation = useRef(0);

  useEffect(() => {
    if (!id) return;
    api.get<Segment>(`/segments/${id}`).then(
      (segment) => {
        setName(segment.name);
        setTree(fromApi(segment.criteria));
        setLoaded("ready");
        count(segment.id, generation.current);
      },
      (error) => setLoaded(error),
    );
  }, [id]);

  async function count(segmentId: string, mine: number) {
    setCounting(true);
    try {
      const answer = await api.get<Preview>(`/segments/${segmentId}/preview`);
      if (mine === generation.current) setPreview(answer);
    } catch (error) {
      if (mine === generation.current) setProblem(error as ApiError);
    } finally {
      if (mine === generation.current) setCounting(false);
    }
  }

  // Every change is saved (after a pause in typing) and counted again: the count is live.
  useEffect(() => {
    if (!dirty.current) return;
    const mine = ++generation.current;
    const timer = setTimeout(async () => {
      setSaving("saving");
      const body = { name: name.trim() || "Untitled segment", criteria: toApi(tree) };
      try {
        let segmentId = savedId;
        if (segmentId) await api.put<Segment>(`/segments/${segmentId}`, body);
        else {
          const created = await api.post<Segment>("/segments", body);
          segmentId = created.id;
          setSavedId(created.id);
          history.replaceState(null, "", href(`/segments/${created.id}`));
        }
        if (mine !== generation.current) return;
        setProblem(null);
        setSaving("saved");
        await count(segmentId, mine);
      } catch (error) {
        if (mine !== generation.current) return;
        setSaving("idle");
        setProblem(error as ApiError);
      }
    }, 500);
    return () => clearTimeout(timer);
  }, [tree, name]);

  function edit(path: number[], change: (node: Node) => Node | null) {
    dirty.current = true;
    setTree((root) => update(root, path, change));
  }

  if (loaded === "loading") return <Loading what="the segment" />;
  if (loaded instanceof ApiError) return <ErrorMessage error={loaded} />;
  const errors = errorsByNode(problem);
  const unplaced = problem && !problem.problem.errors?.length ? problem : null;

  return (
    <Page title={savedId ? "Segment" : "New segment"}>
      <p>
        <a href={href("/segments")}>← All segments</a>
      </p>
      <div class="builder">
        <form class="card" onSubmit={(event) => event.preventDefault()} aria-label="Segment criteria">
          <label>
            Name
            <input
              name="name"
              value={name}
              required
              placeholder="Untitled segment"
              onInput={(e) => {
                dirty.current = true;
                setName(e.currentTarget.value);
              }}
            />
          </label>
          <p class="hint">Changes are saved as you edit, and the count follows.</p>
          <GroupEditor node={tree} path={[]} edit={edit} errors={errors.nodes} />
          {errors.other.length > 0 && (
            <div class="state error" role="alert">
              {errors.other.map((text) => (
                <p key={text}>{text}</p>
              ))}
            </div>
          )}
          {unplaced && <ErrorMessage error={unplaced} />}
        </form>
        <aside class="card preview" aria-labelledby="preview-title" aria-live="polite">
          <h2 id="preview-title">Who matches</h2>
          <p class="save-state">{saving === "saving" ? "Saving…" : saving === "saved" ? "Saved." : savedId ? "" : "Not saved yet."}</p>
          {preview ? (
            <>
              <p class="big-number" data-testid="segment-count">
                {number(preview.count)} <span>{preview.count === 1 ? "contact" : "contacts"}</span>
              </p>
              <p data-testid="segment-opted-in">{number(preview.opted_in)} of them opted in to marketing</p>
              {counting && <p class="hint">Counting…</p>}
              {problem && <p class="hint">The API refused the latest change: this is the count of the criteria last saved.</p>}
              {preview.sample.length === 0 ? (
                <Empty>
                  <p>No contact matches these criteria.</p>
                </Empty>
              ) : (
                <table class="data compact">
                  <caption>Some of them</caption>
                  <thead>
                    <tr>
                      <th scope="col">Email</th>
                      <th scope="col">Name</th>
                    </tr>
                  </thead>
                  <tbody>
                    {preview.sample.map((contact) => (
                      <tr key={String(contact.id ?? contact.email)}>
                        <td>{contact.id ? <a href={href(`/contacts/${contact.id}`)}>{String(contact.email)}</a> : String(contact.email)}</td>
                        <td>{[contact.first_name, contact.last_name].filter(Boolean).join(" ") || "–"}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </>
          ) : counting ? (
            <Loading what="the count" />
          ) : (
            <p class="hint">Edit the criteria to see how many contacts match.</p>
          )}
        </aside>
      </div>
    </Page>
  );
}

function NodeErrors({ messages, id }: { messages?: string[]; id: string }) {
  if (!messages?.length) return null;
  return (
    <div role="alert" id={id}>
      <ul class="node-error">
        {messages.map((message) => (
          <li key={message}>{message}</li>
        ))}
      </ul>
    </div>
  );
}

function GroupEditor({
  node,
  path,
  edit,
  errors,
}: {
  node: GroupNode;
  path: number[];
  edit: (path: number[], change: (node: Node) => Node | null) => void;
  errors: Record<string, string[]>;
}) {
  const key = path.join(".");
  const errorId = `error-${key || "root"}`;
  return (
    <fieldset class={`group depth-${path.length % 3}${errors[key] ? " invalid" : ""}`} data-path={key} aria-describedby={errors[key] ? errorId : undefined}>
      <legend>{path.length ? `Group ${label(path)}` : "All criteria"}</legend>
      <div class="group-op">
        <span aria-hidden="true">Match</span>
        <select
            aria-label={`Group ${label(path)}: match`}
            value={node.operator}
            onChange={(e) => edit(path, (n) => ({ ...(n as GroupNode), operator: e.currentTarget.value as "AND" | "OR" }))}
          >
            <option value="AND">all of these (AND)</option>
            <option value="OR">any of these (OR)</option>
          </select>
      </div>
      <NodeErrors messages={errors[key]} id={errorId} />
      <ol class="conditions">
        {node.children.map((child, index) => (
          <li key={child.key}>
            {child.kind === "group" ? (
              <GroupEditor node={child} path={[...path, index]} edit={edit} errors={errors} />
            ) : (
              <ConditionEditor node={child} path={[...path, index]} edit={edit} errors={errors} />
            )}
          </li>
        ))}
      </ol>
      <div class="group-actions">
        <button type="button" onClick={() => edit(path, (n) => ({ ...(n as GroupNode), children: [...(n as GroupNode).children, newCondition()] }))}>
          Add condition
        </button>
        <button
          type="button"
          onClick={() =>
            edit(path, (n) => ({ ...(n as GroupNode), children: [...(n as GroupNode).children, newGroup(node.operator === "AND" ? "OR" : "AND")] }))
          }
        >
          Add group
        </button>
        {path.length > 0 && (
          <button type="button" class="danger" onClick={() => edit(path, () => null)}>
            Remove group {label(path)}
          </button>
        )}
      </div>
    </fieldset>
  );
}

function ConditionEditor({
  node,
  path,
  edit,
  errors,
}: {
  node: ConditionNode;
  path: number[];
  edit: (path: number[], change: (node: Node) => Node | null) => void;
  errors: Record<string, string[]>;
}) {
  const key = path.join(".");
  const name = label(path);
  const kind = kindOf(node);
  const set = (patch: Partial<ConditionNode>) => edit(path, (n) => ({ ...(n as ConditionNode), ...patch }));
  const errorId = `error-${key}`;
  const described = errors[key] ? errorId : undefined;

  function changeField(field: string) {
    const nextKind: Kind = field === "attributes" ? "attribute" : COLUMNS[field];
    const op = OPS[nextKind].includes(node.op) ? node.op : OPS[nextKind][0];
    set({ field, op, text: nextKind === "bool" ? "true" : node.text });
  }

  return (
    <div class={`condition${errors[key] ? " invalid" : ""}`} data-path={key}>
      <select aria-label={`Condition ${name}: field`} value={node.field} aria-describedby={described} onChange={(e) => changeField(e.currentTarget.value)}>
          {Object.keys(COLUMNS).map((column) => (
            <option key={column} value={column}>
              {column.replace(/_/g, " ")}
            </option>
          ))}
          <option value="attributes">attribute…</option>
        </select>
      
      {node.field === "attributes" && (
        <input aria-label={`Condition ${name}: attribute name`} class="short" placeholder="attribute name" value={node.attribute} aria-describedby={described} onInput={(e) => set({ attribute: e.currentTarget.value })} />
        
      )}
      <select aria-label={`Condition ${name}: operator`} value={node.op} aria-describedby={described} onChange={(e) => set({ op: e.currentTarget.value as Op })}>
          {OPS[kind].map((op) => (
            <option key={op} value={op}>
              {OP_LABELS[op]}
            </option>
          ))}
        </select>
      
      <ValueEditor node={node} name={name} kind={kind} set={set} described={described} />
      <button type="button" class="danger icon" aria-label={`Remove condition ${name}`} onClick={() => edit(path, () => null)}>
        ×
      </button>
      <NodeErrors messages={errors[key]} id={errorId} />
    </div>
  );
}

function ValueEditor({
  node,
  name,
  kind,
  set,
  described,
}: {
  node: ConditionNode;
  name: string;
  kind: Kind;
  set: (patch: Partial<ConditionNode>) => void;
  described?: string;
}) {
  const labelText = `Condition ${name}: value`;
  if (node.op === "exists" || node.op === "not_exists") return null;
  if (kind === "bool" && (node.op === "eq" || node.op === "neq")) {
    return (
      <select aria-label={labelText} value={node.text === "false" ? "false" : "true"} aria-describedby={described} onChange={(e) => set({ text: e.currentTarget.value })}>
          <option value="true">yes</option>
          <option value="false">no</option>
        </select>
      
    );
  }
  const typeChoice = kind === "attribute" && ["eq", "neq", "in", "not_in"].includes(node.op) && (
    <select aria-label={`Condition ${name}: value type`} value={node.type} aria-describedby={described} onChange={(e) => set({ type: e.currentTarget.value as ValueType })}>
        <option value="text">text</option>
        <option value="number">number</option>
        {(node.op === "eq" || node.op === "neq") && <option value="boolean">yes/no</option>}
      </select>
    
  );
  if (kind === "attribute" && node.type === "boolean" && (node.op === "eq" || node.op === "neq")) {
    return (
      <>
        {typeChoice}
        <select aria-label={labelText} value={node.text === "false" ? "false" : "true"} aria-describedby={described} onChange={(e) => set({ text: e.currentTarget.value })}>
            <option value="true">yes</option>
            <option value="false">no</option>
          </select>
        
      </>
    );
  }
  const numeric = ["gt", "gte", "lt", "lte", "within_last_days"].includes(node.op) || (node.type === "number" && ["eq", "neq"].includes(node.op) && kind === "attribute");
  const date = node.op === "before" || node.op === "after";
  const list = node.op === "in" || node.op === "not_in";
  return (
    <>
      {typeChoice}
      <input aria-label={labelText}
          type={numeric ? "number" : date ? "date" : "text"}
          min={node.op === "within_last_days" ? 0 : undefined}
          step={numeric ? "any" : undefined}
          placeholder={list ? "comma-separated values" : numeric ? "number" : date ? "YYYY-MM-DD" : "value"}
          value={node.text}
          aria-describedby={described}
          onInput={(e) => set({ text: e.currentTarget.value })}
        />
      
    </>
  );
}
