import { useState } from "preact/hooks";
import { ApiError, request, setCsrfToken, type Session } from "../api";
import type { Who } from "../main";
import { navigate } from "../router";
import { ErrorMessage, NotAvailable, Page } from "../ui";

export function SignIn({ who, setWho, next }: { who: Who; setWho: (who: Who) => void; next: string | null }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  async function submit(event: Event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const session = await request<Session>("POST", "/session", { body: { email, password }, quietUnauthorized: true });
      setCsrfToken(session.csrf_token);
      setWho({ kind: "signed-in", session });
      const [path, search] = (next && next.startsWith("/") ? next : "/contacts").split("?");
      navigate(path, Object.fromEntries(new URLSearchParams(search ?? "")));
    } catch (caught) {
      setError(caught as ApiError);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Page title="Sign in">
      {who.kind === "signed-in" && <p>You are signed in as {who.session.email}.</p>}
      {who.kind === "open" && (
        <p class="hint">This API is reached without an account (API keys only): nothing to sign in to yet.</p>
      )}
      <form class="card narrow" onSubmit={submit} aria-describedby={error ? "sign-in-error" : undefined}>
        <label>
          Email
          <input type="email" name="email" autoComplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input type="password" name="password" autoComplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        <div id="sign-in-error">
          {error?.status === 401 && (
            <p class="state error" role="alert">
              That email and password do not match an account.
            </p>
          )}
          {error?.missing && <NotAvailable what="Sign-in" endpoint="POST /api/session" />}
          {error && error.status !== 401 && !error.missing && <ErrorMessage error={error} />}
        </div>
      </form>
    </Page>
  );
}
