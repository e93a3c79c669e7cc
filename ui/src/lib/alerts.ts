// When the dashboard raises the alert banner: pure rules over the metrics now and the recent
// samples (GET /api/metrics/history, every 5 s), so they can be tested without a server.

import type { Metrics, MetricsSample } from "../api/types";
import { tripReason } from "./breaker";

export interface Thresholds {
  /** Dead letters added within `windowSecs` that raise the banner. */
  deadLetterRise: number;
  /** Age in seconds of the oldest pending inbound event that raises the banner. */
  oldestPendingSecs: number;
  /** Writes waiting in the outbox that raise the banner. */
  outboxBacklog: number;
  /** 95th percentile propagation lag in seconds (writes sent in the last minute) that raises the banner. */
  lagP95Secs: number;
  windowSecs: number;
}

export const DEFAULT_THRESHOLDS: Thresholds = {
  deadLetterRise: 1,
  oldestPendingSecs: 60,
  outboxBacklog: 5000,
  lagP95Secs: 120,
  windowSecs: 300,
};

export interface Alert {
  id: string;
  level: "danger" | "warning";
  title: string;
  detail: string;
  link?: string;
}

/** The sample closest to `secs` before the last one (or the first sample). */
export function sampleBefore(samples: MetricsSample[], nowMs: number, secs: number): MetricsSample | undefined {
  const target = nowMs - secs * 1000;
  let best: MetricsSample | undefined;
  for (const s of samples) {
    const t = Date.parse(s.at);
    if (Number.isNaN(t)) continue;
    if (t <= target) best = s;
    else break;
  }
  return best ?? samples[0];
}

const n = (x: number) => x.toLocaleString("en-US");

export function computeAlerts(now: Metrics | undefined, samples: MetricsSample[], nowMs: number, th: Thresholds = DEFAULT_THRESHOLDS, names: ReadonlyMap<string, string> = new Map()): Alert[] {
  if (!now) return [];
  const out: Alert[] = [];
  for (const trip of now.breakers ?? []) {
    out.push({
      id: `breaker-${trip.id}`,
      level: "danger",
      title: `Writes to ${names.get(trip.system) ?? trip.system} are held by the circuit breaker`,
      detail: `${tripReason(trip)}. An admin reviews them, then confirms or discards them.`,
      link: `/systems/${encodeURIComponent(trip.system)}/plan`,
    });
  }
  const past = sampleBefore(samples, nowMs, th.windowSecs);
  if (past) {
    const rise = now.dead_letters - past.metrics.dead_letters;
    if (rise >= th.deadLetterRise) {
      const mins = Math.round(th.windowSecs / 60);
      out.push({
        id: "dead-letters-rising",
        level: "danger",
        title: `Dead letters rising: ${n(rise)} new in the last ${mins} min`,
        detail: `${n(now.dead_letters)} writes have failed for good and wait for support to replay or discard them.`,
        link: "/dead-letters",
      });
    }
  }
  if (now.oldest_pending_secs != null && now.oldest_pending_secs >= th.oldestPendingSecs) {
    out.push({
      id: "oldest-pending",
      level: "warning",
      title: `Inbound events are waiting: the oldest is ${Math.round(now.oldest_pending_secs)} s old`,
      detail: `${n(now.inbox_pending)} events are pending. Changes reach the other systems late.`,
    });
  }
  if (now.lag_p95_secs != null && now.lag_p95_secs >= th.lagP95Secs) {
    const slow = now.per_system.filter((s) => s.lag_p95_secs != null && s.lag_p95_secs >= th.lagP95Secs).map((s) => s.system);
    out.push({
      id: "propagation-lag",
      level: "warning",
      title: `Changes take ${Math.round(now.lag_p95_secs)} s to propagate (p95)`,
      detail: slow.length > 0 ? `Slowest: ${slow.join(", ")}. A target may be slow, rate-limited or retrying.` : "A target may be slow, rate-limited or retrying.",
    });
  }
  if (now.outbox_pending >= th.outboxBacklog) {
    out.push({
      id: "outbox-backlog",
      level: "warning",
      title: `${n(now.outbox_pending)} writes are queued`,
      detail: "A target system may be slow, rate-limited or down.",
    });
  }
  return out;
}

/** Per-minute rate of a monotonic counter between consecutive samples (null where unknown or reset). */
export function ratePerMinute(samples: MetricsSample[], counter: string): (number | null)[] {
  const out: (number | null)[] = [];
  for (let i = 0; i < samples.length; i++) {
    if (i === 0) {
      out.push(null);
      continue;
    }
    const a = samples[i - 1]!;
    const b = samples[i]!;
    const dt = (Date.parse(b.at) - Date.parse(a.at)) / 1000;
    const va = a.metrics.counters[counter];
    const vb = b.metrics.counters[counter];
    if (va === undefined || vb === undefined || !(dt > 0) || vb < va) out.push(null);
    else out.push(((vb - va) / dt) * 60);
  }
  return out;
}

/**
 * A counter's rate per minute over the newest samples within `windowSecs` of the last one (at
 * least two samples), or null when there are too few or the counter went back (a restart).
 */
export function recentRate(samples: MetricsSample[], counter: string, windowSecs = 60): number | null {
  const last = samples[samples.length - 1];
  if (!last) return null;
  const end = Date.parse(last.at);
  const first = samples.find((s) => end - Date.parse(s.at) <= windowSecs * 1000);
  if (!first || first === last) return null;
  const dt = (end - Date.parse(first.at)) / 1000;
  // A counter appears when it first moves: absent, it was zero.
  const a = first.metrics.counters[counter] ?? 0;
  const b = last.metrics.counters[counter] ?? 0;
  if (!(dt > 0) || b < a) return null;
  return ((b - a) / dt) * 60;
}
