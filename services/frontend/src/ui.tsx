// Small pieces every screen uses: loading, empty, error and "not available" states, a
// resource hook, and formatting.
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "./api";

export type Loadable<T> =
  | { state: "loading" }
  | { state: "ready"; data: T }
  | { state: "error"; error: ApiError | Error };

/** Loads `load()` when `deps` change; `reload()` loads again, keeping what is shown meanwhile. */
export function useResource<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]) {
  const [value, setValue] = useState<Loadable<T>>({ state: "loading" });
  const controller = useRef<AbortController | null>(null);
  const run = useCallback((keep: boolean) => {
    controller.current?.abort();
    const own = new AbortController();
    controller.current = own;
    if (!keep) setValue({ state: "loading" });
    load(own.signal).then(
      (data) => !own.signal.aborted && setValue({ state: "ready", data }),
      (error) => !own.signal.aborted && (error as Error).name !== "AbortError" && setValue({ state: "error", error }),
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  useEffect(() => {
    run(false);
    return () => controller.current?.abort();
  }, [run]);
  return { value, reload: () => run(true), set: (data: T) => setValue({ state: "ready", data }) };
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="state loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" /> Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="state empty">{children}</div>;
}

export function NotAvailable({ what, endpoint }: { what: string; endpoint: string }) {
  return (
    <div class="state not-available" role="note" data-endpoint={endpoint}>
      <strong>{what}: not available yet.</strong> The API does not offer <code>{endpoint}</code> yet.
    </div>
  );
}

export function ErrorMessage({ error, retry }: { error: ApiError | Error; retry?: () => void }) {
  const problem = error instanceof ApiError ? error.problem : null;
  return (
    <div class="state error" role="alert">
      <strong>{problem?.title && problem.title !== problem.detail ? problem.title : "Something went wrong"}</strong>
      <p>{error.message}</p>
      {problem?.errors && problem.errors.length > 0 && (
        <ul>
          {problem.errors.map((item) => (
            <li key={item.path}>
              <code>{item.path}</code>: {item.message}
            </li>
          ))}
        </ul>
      )}
      {retry && (
        <button type="button" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

/** The usual shape: loading, error (or not available when the endpoint is missing), then the data. */
export function Show<T>({
  value,
  what,
  endpoint,
  retry,
  children,
}: {
  value: Loadable<T>;
  what: string;
  endpoint?: string;
  retry?: () => void;
  children: (data: T) => ComponentChildren;
}) {
  if (value.state === "loading") return <Loading what={what} />;
  if (value.state === "error") {
    if (endpoint && value.error instanceof ApiError && value.error.missing)
      return <NotAvailable what={what[0].toUpperCase() + what.slice(1)} endpoint={endpoint} />;
    return <ErrorMessage error={value.error} retry={retry} />;
  }
  return <>{children(value.data)}</>;
}

export function Page({ title, actions, children }: { title: string; actions?: ComponentChildren; children: ComponentChildren }) {
  useEffect(() => {
    document.title = `${title} · Campaigns`;
  }, [title]);
  return (
    <section class="page" aria-labelledby="page-title">
      <header class="page-head">
        <h1 id="page-title" tabIndex={-1}>
          {title}
        </h1>
        {actions && <div class="actions">{actions}</div>}
      </header>
      {children}
    </section>
  );
}

export function percent(rate: number | null | undefined): string {
  return rate === null || rate === undefined ? "–" : `${(rate * 100).toFixed(1)}%`;
}

export function number(value: number | null | undefined): string {
  return value === null || value === undefined ? "–" : value.toLocaleString("en");
}

export function when(iso: string | null | undefined, zone?: string): string {
  if (!iso) return "–";
  const date = new Date(iso);
  return date.toLocaleString("en-GB", {
    dateStyle: "medium",
    timeStyle: "short",
    timeZone: zone,
  });
}

export function statusLabel(status: string): string {
  return status.replace(/_/g, " ");
}

export function Badge({ status }: { status: string }) {
  return <span class={`badge badge-${status}`}>{statusLabel(status)}</span>;
}

export function zones(): string[] {
  try {
    const list = (Intl as unknown as { supportedValuesOf(key: string): string[] }).supportedValuesOf("timeZone");
    return list.includes("UTC") ? list : ["UTC", ...list];
  } catch {
    return ["UTC", "Europe/London", "Europe/Paris", "America/New_York", "America/Los_Angeles", "Asia/Tokyo"];
  }
}
