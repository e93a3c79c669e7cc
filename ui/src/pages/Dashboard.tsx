// Dashboard: the verdict at a glance (healthy, degraded or failing, and why), each system's
// state with its last error, rates per minute, and charts over time (GET /api/metrics every
// 5 s, GET /api/metrics/history).

import { STATE_TONE, describeHealth } from "../lib/health";
import { useMemo, useState } from "react";
import { PauseButton, useHistory } from "../components/AlertBanner";
import { Link } from "react-router";
import { AlertOctagon, ArrowDownToLine, ArrowUpFromLine, CheckCircle2, Clock, Inbox, ShieldCheck, XCircle } from "lucide-react";
import { useMetrics, useWorkspace } from "../api/queries";
import type { Metrics, MetricsSample } from "../api/types";
import { ratePerMinute, recentRate } from "../lib/alerts";
import { ageSeconds, formatAge, formatCount, formatTime } from "../lib/format";
import { EmptyState, ErrorState, Loading, PageHeader, Pill } from "../components/ui";
import { TimeChart } from "../components/Chart";

const RANGES: [number, string][] = [
  [900, "15 min"],
  [3600, "1 hour"],
  [6 * 3600, "6 hours"],
  [24 * 3600, "24 hours"],
  [7 * 24 * 3600, "7 days"],
];

const secs = (v: number | null | undefined) => (v == null ? "–" : v < 10 ? `${v.toFixed(1)} s` : `${formatCount(Math.round(v))} s`);

export function Dashboard() {
  const metrics = useMetrics();
  const ws = useWorkspace();
  const [range, setRange] = useState(3600);
  const history = useHistory(range);
  const theme = document.documentElement.dataset.theme ?? "light";
  const m = metrics.data;

  const chart = useMemo(() => {
    const samples: MetricsSample[] = history.data ?? [];
    const x = samples.map((s) => Date.parse(s.at) / 1000);
    return {
      x,
      events: [
        { label: "in / min", color: "--chart-1", values: ratePerMinute(samples, "events_in"), fill: true },
        { label: "out / min", color: "--chart-2", values: ratePerMinute(samples, "events_out") },
      ],
      queues: [
        { label: "inbox", color: "--chart-1", values: samples.map((s) => s.metrics.inbox_pending) },
        { label: "outbox", color: "--chart-3", values: samples.map((s) => s.metrics.outbox_pending) },
      ],
      people: [
        { label: "open exceptions", color: "--chart-3", values: samples.map((s) => s.metrics.open_exceptions) },
        { label: "dead letters", color: "--chart-4", values: samples.map((s) => s.metrics.dead_letters) },
      ],
      lag: [
        { label: "p95", color: "--chart-5", values: samples.map((s) => s.metrics.lag_p95_secs ?? null), fill: true },
        { label: "median", color: "--chart-2", values: samples.map((s) => s.metrics.lag_p50_secs ?? null) },
        { label: "oldest pending", color: "--chart-4", values: samples.map((s) => s.metrics.oldest_pending_secs ?? 0) },
      ],
    };
  }, [history.data]);

  const names = new Map((ws.data?.systems ?? []).map((s) => [s.id, s.name]));
  const counters = m?.counters ?? {};
  const samples = history.data ?? [];
  const rateIn = recentRate(samples, "events_in");
  const rateOut = recentRate(samples, "events_out");
  const perMinute = (v: number | null) => (v == null ? (m ? "–" : undefined) : `${formatCount(Math.round(v))} / min`);

  return (
    <div className="page">
      <PageHeader
        title="Dashboard"
        description="Events in and out, queues, and what waits for people. Updated every 5 seconds."
        actions={
          <>
            {m ? <PauseButton paused={m.paused === true} /> : null}
            <div className="field">
              <label htmlFor="range" className="sr-only">
                Time range
              </label>
              <select id="range" className="select" value={range} onChange={(e) => setRange(Number(e.target.value))}>
                {RANGES.map(([v, l]) => (
                  <option key={v} value={v}>
                    Last {l}
                  </option>
                ))}
              </select>
            </div>
          </>
        }
      />
      {metrics.error ? <div className="card"><ErrorState error={metrics.error} retry={() => void metrics.refetch()} /></div> : null}
      {m ? <VerdictCard verdict={m.verdict} /> : null}
      <section className="stats" aria-label="Now">
        <Stat icon={<ArrowDownToLine size={14} />} label="Events in" value={perMinute(rateIn)} sub={`${formatCount(counters.events_in ?? 0)} since start: ${formatCount(counters.duplicates ?? 0)} duplicates, ${formatCount(counters.stale ?? 0)} stale, ${formatCount(counters.webhooks_refused ?? 0)} webhooks refused`} />
        <Stat icon={<ArrowUpFromLine size={14} />} label="Writes out" value={perMinute(rateOut)} sub={`${formatCount(counters.events_out ?? 0)} since start, ${formatCount(counters.retries ?? 0)} retries`} />
        <Stat icon={<Inbox size={14} />} label="Queued" value={m ? m.inbox_pending + m.outbox_pending : undefined} sub={m ? `${formatCount(m.inbox_pending)} in, ${formatCount(m.outbox_pending)} out` : ""} />
        <Stat
          icon={<Clock size={14} />}
          label="Propagation lag (p95)"
          value={m ? (m.lag_p95_secs != null ? secs(m.lag_p95_secs) : "no writes") : undefined}
          tone={(m?.lag_p95_secs ?? 0) > 60 || (m?.oldest_pending_secs ?? 0) > 60 ? "warn" : undefined}
          sub={
            m
              ? `median ${secs(m.lag_p50_secs)} over ${formatCount(m.lag_sample ?? 0)} writes in the last minute; oldest pending ${m.oldest_pending_secs != null ? secs(m.oldest_pending_secs) : "none"}`
              : ""
          }
        />
        <Stat icon={<ShieldCheck size={14} />} label="Open exceptions" value={m?.open_exceptions} tone={m && m.open_exceptions > 0 ? "warn" : undefined} link="/exceptions" />
        <Stat icon={<AlertOctagon size={14} />} label="Dead letters" value={m?.dead_letters} tone={m && m.dead_letters > 0 ? "bad" : undefined} link="/dead-letters" />
      </section>

      <section className="card" aria-labelledby="health-h">
        <div className="card-head">
          <h2 id="health-h">Systems</h2>
          <Link to="/systems" className="btn sm">
            Manage systems
          </Link>
        </div>
        <div className="card-body flush">
          {metrics.isPending ? (
            <Loading />
          ) : !m || m.per_system.length === 0 ? (
            <EmptyState title="No systems connected">
              <Link to="/systems/new">Add a system</Link> to start syncing.
            </EmptyState>
          ) : (
            <table className="simple-table" aria-label="Each system's state">
              <thead>
                <tr>
                  <th>System</th>
                  <th>State</th>
                  <th className="num">Writes sent</th>
                  <th>Last write accepted</th>
                  <th>Last read</th>
                  <th className="num">Lag p95</th>
                  <th className="num">Writes queued</th>
                  <th className="num">Retrying</th>
                  <th className="num">Dead letters</th>
                </tr>
              </thead>
              <tbody>
                {m.per_system.map((s) => (
                  <tr key={s.system}>
                    <td>
                      <strong>{names.get(s.system) ?? s.system}</strong> <span className="faint mono">{s.system}</span>
                    </td>
                    <td>
                      <Pill tone={STATE_TONE[s.state ?? "healthy"]} title={describeHealth(s)}>
                        {s.state ?? "healthy"}
                      </Pill>
                      {s.state && s.state !== "healthy" ? (
                        <div className="faint" style={{ fontSize: 12, maxWidth: 320 }}>
                          {s.reason}
                          {s.last_error ? <div className="mono">{s.last_error}</div> : null}
                        </div>
                      ) : null}
                    </td>
                    <td className="num">{formatCount(s.sent)}</td>
                    <td>{s.last_sent_at ? <time dateTime={s.last_sent_at} title={formatTime(s.last_sent_at)}>{formatAge(ageSeconds(s.last_sent_at))} ago</time> : <span className="faint">never</span>}</td>
                    <td>{s.last_read_at ? <time dateTime={s.last_read_at} title={formatTime(s.last_read_at)}>{formatAge(ageSeconds(s.last_read_at))} ago</time> : <span className="faint" title="Not polled: it sends webhooks, or no poll has finished yet">—</span>}</td>
                    <td className="num">{secs(s.lag_p95_secs)}</td>
                    <td className="num">{formatCount(s.outbox_pending)}</td>
                    <td className="num">{formatCount(s.retrying ?? 0)}</td>
                    <td className="num">
                      {s.dead_letters > 0 ? <Link to={`/dead-letters?system=${encodeURIComponent(s.system)}`}>{formatCount(s.dead_letters)}</Link> : "0"}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      </section>
      <section className="chart-grid" aria-label="Over time">
        <ChartCard title="Events in and out" loading={history.isPending} error={history.error} empty={chart.x.length < 2}>
          <TimeChart x={chart.x} series={chart.events} label="Events in and out per minute" theme={theme} />
        </ChartCard>
        <ChartCard title="Queue depths" loading={history.isPending} error={history.error} empty={chart.x.length < 2}>
          <TimeChart x={chart.x} series={chart.queues} label="Inbox and outbox depth" theme={theme} />
        </ChartCard>
        <ChartCard title="Propagation lag" loading={history.isPending} error={history.error} empty={chart.x.length < 2}>
          <TimeChart x={chart.x} series={chart.lag} label="Seconds from a change reaching the engine to the target accepting it (p95 and median over the last minute), and the age of the oldest pending event" unit=" s" theme={theme} />
        </ChartCard>
        <ChartCard title="Exceptions and dead letters" loading={history.isPending} error={history.error} empty={chart.x.length < 2}>
          <TimeChart x={chart.x} series={chart.people} label="Open exceptions and dead letters" theme={theme} />
        </ChartCard>
      </section>

    </div>
  );
}

function Stat({ icon, label, value, sub, tone, link }: { icon: React.ReactNode; label: string; value: number | string | undefined; sub?: string; tone?: "warn" | "bad"; link?: string }) {
  const body = (
    <>
      <span className="s-label">
        {icon}
        {label}
      </span>
      <span className="s-value">{value === undefined ? <span className="skeleton" style={{ display: "block", width: 60, height: 20 }} /> : typeof value === "number" ? formatCount(value) : value}</span>
      {sub ? <span className="s-sub">{sub}</span> : null}
    </>
  );
  return link ? (
    <Link to={link} className={`card stat ${tone ?? ""}`} style={{ textDecoration: "none", color: "inherit" }}>
      {body}
    </Link>
  ) : (
    <div className={`card stat ${tone ?? ""}`}>{body}</div>
  );
}

function ChartCard({ title, children, loading, error, empty }: { title: string; children: React.ReactNode; loading: boolean; error: unknown; empty: boolean }) {
  return (
    <div className="card chart-card">
      <div className="card-head">
        <h2>{title}</h2>
      </div>
      <div className="card-body">
        {loading ? <Loading /> : error ? <ErrorState error={error} /> : empty ? <EmptyState title="No samples yet">The engine records a sample every 5 seconds.</EmptyState> : children}
      </div>
    </div>
  );
}

const VERDICT_ICON = { healthy: <CheckCircle2 size={22} />, degraded: <AlertOctagon size={22} />, failing: <XCircle size={22} /> };

/** The workspace at a glance: healthy, degraded or failing, one sentence, and what needs attention. */
function VerdictCard({ verdict }: { verdict: Metrics["verdict"] }) {
  const v = verdict ?? { state: "healthy" as const, summary: "", reasons: [] };
  const state = v.state ?? "healthy";
  return (
    <section className={`card verdict verdict-${state}`} aria-label="Verdict" aria-live="polite">
      <span className="verdict-icon" aria-hidden="true">
        {VERDICT_ICON[state]}
      </span>
      <div>
        <div className="verdict-state">{state.charAt(0).toUpperCase() + state.slice(1)}</div>
        <div className="verdict-summary">{v.summary}</div>
        {(v.reasons ?? []).length > 0 ? (
          <ul className="verdict-reasons">
            {(v.reasons ?? []).map((r) => (
              <li key={r}>{r}</li>
            ))}
          </ul>
        ) : null}
      </div>
    </section>
  );
}
