import { useEffect } from "preact/hooks";
import { api, type SystemStatus } from "../api";
import { Badge, Empty, number, Page, Show, useResource } from "../ui";

export function StatusPage() {
  const status = useResource((signal) => api.get<SystemStatus>("/status", undefined, signal), []);
  useEffect(() => {
    if (status.value.state === "error") return;
    const timer = setInterval(status.reload, 5000);
    return () => clearInterval(timer);
  }, [status.value.state]);
  return (
    <Page title="Status">
      <Show value={status.value} what="the system's status" endpoint="GET /api/status" retry={status.reload}>
        {(data) => (
          <>
            <section class="card" aria-labelledby="services-title">
              <h2 id="services-title">Services</h2>
              {Object.keys(data.services).length === 0 ? (
                <Empty>
                  <p>No service reported.</p>
                </Empty>
              ) : (
                <table class="data">
                  <caption class="visually-hidden">Health of each service</caption>
                  <thead>
                    <tr>
                      <th scope="col">Service</th>
                      <th scope="col">Health</th>
                      <th scope="col">Details</th>
                    </tr>
                  </thead>
                  <tbody>
                    {Object.entries(data.services).map(([name, health]) => {
                      const { status: state, ...all } = health;
                      // what says something: an empty "degraded" means nothing is
                      const details = Object.fromEntries(
                        Object.entries(all).filter(([, value]) => !(value && typeof value === "object" && Object.keys(value).length === 0)),
                      );
                      return (
                        <tr key={name} data-service={name}>
                          <th scope="row">{name}</th>
                          <td>
                            <Badge status={state} />
                          </td>
                          <td>
                            {Object.keys(details).length
                              ? Object.entries(details).map(([key, value]) => (
                                  <div key={key}>
                                    {key.replace(/_/g, " ")}: <code>{typeof value === "object" ? JSON.stringify(value) : String(value)}</code>
                                  </div>
                                ))
                              : "–"}
                          </td>
                        </tr>
                      );
                    })}
                  </tbody>
                </table>
              )}
            </section>
            <dl class="kpis">
              <div>
                <dt>Scheduler lag</dt>
                <dd data-testid="scheduler-lag">{data.scheduler.lag_seconds === null ? "–" : `${data.scheduler.lag_seconds.toFixed(1)} s`}</dd>
              </div>
              <div>
                <dt>Sends in flight</dt>
                <dd>{number(data.scheduler.in_flight)}</dd>
              </div>
              <div>
                <dt>Mailer rate</dt>
                <dd data-testid="mailer-rate">{data.mailer.emails_per_second === null ? "–" : `${data.mailer.emails_per_second.toFixed(1)} emails/s`}</dd>
              </div>
            </dl>
          </>
        )}
      </Show>
    </Page>
  );
}
