import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, request, setCsrfToken, whenUnauthorized, type Session } from "./api";
import { href, match, navigate, useLocation } from "./router";
import { CampaignDetail, CampaignList } from "./screens/campaigns";
import { ContactImport, ContactList, ContactProfile } from "./screens/contacts";
import { FlowEditor, FlowList } from "./screens/flows";
import { SegmentBuilder, SegmentList } from "./screens/segments";
import { SignIn } from "./screens/signin";
import { StatusPage } from "./screens/status";
import { CampaignWizard } from "./screens/wizard";
import "./styles.css";

/** What the app knows of who is signed in: "open" when the API has no sessions (yet). */
export type Who = { kind: "checking" } | { kind: "signed-in"; session: Session } | { kind: "signed-out" } | { kind: "open" };

const NAV = [
  ["/contacts", "Contacts"],
  ["/segments", "Segments"],
  ["/flows", "Flows"],
  ["/campaigns", "Campaigns"],
  ["/status", "Status"],
] as const;

function Screen({ path, query, who, setWho }: { path: string; query: URLSearchParams; who: Who; setWho: (who: Who) => void }) {
  let params: Record<string, string> | null;
  if (path === "/sign-in") return <SignIn who={who} setWho={setWho} next={query.get("next")} />;
  if (path === "/" || path === "/contacts") return <ContactList query={query} />;
  if (path === "/contacts/import") return <ContactImport />;
  if ((params = match("/contacts/:id", path))) return <ContactProfile id={params.id} />;
  if (path === "/segments") return <SegmentList />;
  if (path === "/segments/new") return <SegmentBuilder id={null} />;
  if ((params = match("/segments/:id", path))) return <SegmentBuilder id={params.id} />;
  if (path === "/flows") return <FlowList />;
  if (path === "/flows/new") return <FlowEditor id={null} />;
  if ((params = match("/flows/:id", path))) return <FlowEditor id={params.id} />;
  if (path === "/campaigns") return <CampaignList query={query} />;
  if (path === "/campaigns/new") return <CampaignWizard id={null} />;
  if ((params = match("/campaigns/:id/edit", path))) return <CampaignWizard id={params.id} />;
  if ((params = match("/campaigns/:id", path))) return <CampaignDetail id={params.id} />;
  if (path === "/status") return <StatusPage />;
  return (
    <section class="page">
      <h1 id="page-title">Not found</h1>
      <p>
        There is no screen at <code>{path}</code>. <a href={href("/contacts")}>Go to contacts</a>.
      </p>
    </section>
  );
}

function App() {
  const { path, query } = useLocation();
  const [who, setWho] = useState<Who>({ kind: "checking" });

  useEffect(() => {
    whenUnauthorized(() => {
      setCsrfToken(null);
      setWho({ kind: "signed-out" });
      const here = window.location.hash.replace(/^#/, "");
      if (!here.startsWith("/sign-in")) navigate("/sign-in", { next: here || "/contacts" });
    });
    request<Session>("GET", "/session", { quietUnauthorized: true }).then(
      (session) => {
        setCsrfToken(session.csrf_token);
        setWho({ kind: "signed-in", session });
      },
      (error: ApiError) => {
        if (error.status === 401) {
          setWho({ kind: "signed-out" });
          const here = window.location.hash.replace(/^#/, "");
          if (!here.startsWith("/sign-in")) navigate("/sign-in", { next: here || "/contacts" });
        } else {
          setWho({ kind: "open" }); // no sessions on this API: it is reached as it is
        }
      },
    );
  }, []);

  // Focus the new screen's heading, so keyboard and screen reader users land on it.
  useEffect(() => {
    document.getElementById("page-title")?.focus({ preventScroll: true });
  }, [path]);

  async function signOut() {
    try {
      await request("DELETE", "/session", { quietUnauthorized: true });
    } catch {
      // signed out either way
    }
    setCsrfToken(null);
    setWho({ kind: "signed-out" });
    navigate("/sign-in");
  }

  const section = "/" + (path.split("/")[1] || "contacts");
  return (
    <>
      <a class="skip" href="#main" onClick={(event) => { event.preventDefault(); document.getElementById("main")?.focus(); }}>
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href={href("/contacts")}>
          Campaigns
        </a>
        <nav aria-label="Main">
          <ul>
            {NAV.map(([to, label]) => (
              <li key={to}>
                <a href={href(to)} aria-current={section === to ? "page" : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          {who.kind === "signed-in" && (
            <>
              <span>{who.session.email}</span>
              <button type="button" class="link" onClick={signOut}>
                Sign out
              </button>
            </>
          )}
          {who.kind === "signed-out" && <a href={href("/sign-in")}>Sign in</a>}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {who.kind === "checking" ? (
          <p class="state loading" role="status">
            Checking your session…
          </p>
        ) : (
          <Screen path={path} query={query} who={who} setWho={setWho} />
        )}
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
