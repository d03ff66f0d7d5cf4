// The one way the app speaks to the API: same-origin `/api`, problem+json errors, the
// session's CSRF token on every change, and any 401 sending the person to sign in.

export interface FieldError {
  path: string;
  message: string;
}

export interface ProblemBody {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  errors?: FieldError[];
  current_status?: string;
  allowed?: string[];
  [key: string]: unknown;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: ProblemBody,
  ) {
    super(problem.detail || problem.title || `the API answered ${status}`);
  }

  /** The endpoint does not exist (yet): the screen shows "not available". */
  get missing(): boolean {
    return this.status === 404 && (this.problem.title === "Not Found" || this.problem.title === undefined);
  }
}

let csrfToken: string | null = null;
let onUnauthorized: () => void = () => {};

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}

type Query = Record<string, string | number | boolean | undefined | null>;

export function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  raw?: BodyInit;
  contentType?: string;
  signal?: AbortSignal;
  /** Leave a 401 to the caller (the sign-in screen itself). */
  quietUnauthorized?: boolean;
}

export async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  let body: BodyInit | undefined;
  if (options.raw !== undefined) {
    body = options.raw;
    headers["Content-Type"] = options.contentType ?? "application/octet-stream";
  } else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers["Content-Type"] = "application/json";
  }
  if (method !== "GET" && method !== "HEAD" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let response: Response;
  try {
    response = await fetch(withQuery(`/api${path}`, options.query), {
      method,
      headers,
      body,
      credentials: "same-origin",
      signal: options.signal,
    });
  } catch (error) {
    if ((error as Error).name === "AbortError") throw error;
    throw new ApiError(0, { title: "No answer", detail: "the API did not answer: check the connection" });
  }
  if (response.status === 401 && !options.quietUnauthorized) onUnauthorized();
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!response.ok) {
    const problem = (parsed && typeof parsed === "object" ? parsed : { detail: text.slice(0, 300) }) as ProblemBody;
    throw new ApiError(response.status, { status: response.status, title: response.statusText, ...problem });
  }
  return parsed as T;
}

export const api = {
  get: <T>(path: string, query?: Query, signal?: AbortSignal) => request<T>("GET", path, { query, signal }),
  post: <T>(path: string, body?: unknown) => request<T>("POST", path, { body: body ?? {} }),
  put: <T>(path: string, body: unknown) => request<T>("PUT", path, { body }),
  patch: <T>(path: string, body: unknown) => request<T>("PATCH", path, { body }),
  del: (path: string) => request<void>("DELETE", path),
};

// The API's shapes, as far as the screens use them.

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface Contact {
  id: string;
  email: string;
  first_name: string | null;
  last_name: string | null;
  timezone: string | null;
  marketing_opt_in: boolean;
  attributes: Record<string, unknown>;
  created_at: string;
  updated_at: string;
}

export interface EngagementEvent {
  kind: "open" | "click" | "unsubscribe";
  campaign_id: string;
  step_index: number;
  url: string | null;
  at: string;
}

export interface ContactEngagement {
  contact_id: string;
  sent: number;
  failed: number;
  opens: number;
  clicks: number;
  unsubscribes: number;
  last_engaged_at: string | null;
  recent: EngagementEvent[];
}

export interface ImportReport {
  inserted: number;
  updated: number;
  rejected: number;
  rejections: { line: number; reason: string }[];
}

export type Op =
  | "eq" | "neq" | "gt" | "gte" | "lt" | "lte" | "in" | "not_in" | "contains" | "starts_with"
  | "exists" | "not_exists" | "before" | "after" | "within_last_days";

export interface Condition {
  field: string;
  op: Op;
  value?: unknown;
}

export interface Group {
  operator: "AND" | "OR";
  conditions: (Group | Condition)[];
}

export interface Segment {
  id: string;
  name: string;
  criteria: Group;
  created_at: string;
  updated_at: string;
}

export interface Preview {
  count: number;
  opted_in: number;
  sample: Record<string, unknown>[];
}

export interface EmailContent {
  subject: string;
  html: string;
  text: string;
}

export type Step =
  | { type: "SEND_EMAIL"; config: EmailContent }
  | { type: "WAIT"; config: { days?: number; hours?: number; minutes?: number; seconds?: number } };

export interface Flow {
  id: string;
  name: string;
  steps: Step[];
  created_at: string;
  updated_at: string;
}

export type CampaignStatus = "draft" | "active" | "paused" | "completed";

export interface Campaign {
  id: string;
  name: string;
  description: string;
  segment_id: string;
  flow_id: string | null;
  content: EmailContent | null;
  start_date: string;
  start_time_of_day: string;
  timezone: string;
  send_in_recipient_timezone: boolean;
  optimize_send_time: boolean;
  status: CampaignStatus;
  warnings: string[];
  run_id: string | null;
  created_at: string;
  updated_at: string;
  activated_at: string | null;
  completed_at: string | null;
  status_history?: { previous: CampaignStatus | null; status: CampaignStatus; at: string }[];
}

export interface Figures {
  sent: number;
  failed: number;
  skipped_no_consent: number;
  deferred: number;
  held: number;
  cancelled: number;
  opens: number;
  clicks: number;
  unsubscribes: number;
  machine_opens: number;
  open_rate: number | null;
  click_rate: number | null;
  click_to_open_rate: number | null;
  unsubscribe_rate: number | null;
  failure_rate: number | null;
}

export interface CampaignStats extends Figures {
  campaign_id: string;
  status: CampaignStatus;
  targeted: number | null;
  scheduled: number | null;
  not_yet_sent: number | null;
  steps: (Figures & { step_index: number })[];
}

export interface SchedulePreview {
  campaign_id: string;
  timezone: string;
  sends: { step_index: number; utc: string; local: string }[];
}

export interface SendTimeSuggestion {
  start_time_of_day: string;
  best_weekday: string | null;
  send_in_recipient_timezone: boolean;
  expected_share: number;
  default_share: number;
  lift: number | null;
  contacts: number;
  contacts_with_history: number;
  events: number;
  fallback: boolean;
  reason: string | null;
}

export interface Recipient {
  send_id: string;
  contact_id: string | null;
  email: string | null;
  step_index: number;
  status: string;
  attempt: number;
  smtp_code: number | null;
  smtp_message: string | null;
  updated_at: string;
}

export interface ActivityBucket {
  at: string;
  sent: number;
  failed: number;
  opens: number;
  clicks: number;
}

export interface SystemStatus {
  services: Record<string, { status: "ok" | "degraded" | "down"; [key: string]: unknown }>;
  scheduler: { lag_seconds: number | null; in_flight: number | null };
  mailer: { emails_per_second: number | null };
}

export interface Session {
  email: string;
  csrf_token: string;
}

/** An upload with progress (fetch cannot report it): same headers and errors as `request`. */
export function upload<T>(path: string, body: Blob, contentType: string, onProgress: (sent: number, total: number) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api${path}`);
    xhr.setRequestHeader("Content-Type", contentType);
    xhr.setRequestHeader("Accept", "application/json");
    if (csrfToken) xhr.setRequestHeader("X-CSRF-Token", csrfToken);
    xhr.upload.onprogress = (event) => onProgress(event.loaded, event.lengthComputable ? event.total : body.size);
    xhr.onerror = () => reject(new ApiError(0, { title: "No answer", detail: "the API did not answer: check the connection" }));
    xhr.onload = () => {
      if (xhr.status === 401) onUnauthorized();
      let parsed: unknown;
      try {
        parsed = JSON.parse(xhr.responseText);
      } catch {
        parsed = { detail: xhr.responseText.slice(0, 300) };
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(parsed as T);
      else reject(new ApiError(xhr.status, { status: xhr.status, title: xhr.statusText, ...(parsed as ProblemBody) }));
    };
    xhr.send(body);
  });
}
