import { describe, expect, it } from "vitest";
import { computeAlerts, ratePerMinute, recentRate, sampleBefore } from "./alerts";
import type { Metrics, MetricsSample } from "../api/types";

function m(over: Partial<Metrics> = {}): Metrics {
  return { counters: {}, inbox_pending: 0, outbox_pending: 0, open_exceptions: 0, dead_letters: 0, oldest_pending_secs: null, per_system: [], ...over };
}
const t0 = Date.parse("2026-03-01T12:00:00Z");
function at(secs: number, over: Partial<Metrics> = {}): MetricsSample {
  return { at: new Date(t0 + secs * 1000).toISOString(), metrics: m(over) };
}

describe("computeAlerts", () => {
  it("is quiet when nothing is wrong", () => {
    expect(computeAlerts(m(), [at(0), at(300)], t0 + 300_000)).toEqual([]);
  });
  it("warns when dead letters rose within the window", () => {
    const samples = [at(0, { dead_letters: 2 }), at(100, { dead_letters: 2 }), at(300, { dead_letters: 5 })];
    const alerts = computeAlerts(m({ dead_letters: 5 }), samples, t0 + 300_000);
    expect(alerts.map((a) => a.id)).toEqual(["dead-letters-rising"]);
    expect(alerts[0]!.title).toContain("3 new");
  });
  it("does not warn about a steady number of dead letters", () => {
    const samples = [at(0, { dead_letters: 7 }), at(300, { dead_letters: 7 })];
    expect(computeAlerts(m({ dead_letters: 7 }), samples, t0 + 300_000)).toEqual([]);
  });
  it("warns about an old pending event and a backlog", () => {
    const ids = computeAlerts(m({ oldest_pending_secs: 95, outbox_pending: 6000 }), [], t0).map((a) => a.id);
    expect(ids).toEqual(["oldest-pending", "outbox-backlog"]);
  });
  it("warns when propagation lag crosses its threshold, naming the slow systems", () => {
    const health = (system: string, lag: number | null) => ({ system, outbox_pending: 0, dead_letters: 0, sent: 10, lag_p95_secs: lag });
    const slow = m({ lag_p95_secs: 150, per_system: [health("hris", 2), health("payroll", 180)] });
    const alerts = computeAlerts(slow, [], t0);
    expect(alerts.map((a) => a.id)).toEqual(["propagation-lag"]);
    expect(alerts[0]!.title).toContain("150 s");
    expect(alerts[0]!.detail).toContain("payroll");
    expect(alerts[0]!.detail).not.toContain("hris");
    expect(computeAlerts(m({ lag_p95_secs: 30 }), [], t0)).toEqual([]);
    expect(computeAlerts(m({ lag_p95_secs: null }), [], t0)).toEqual([]);
  });
});

describe("sampleBefore", () => {
  it("picks the last sample at or before the window start", () => {
    const s = [at(0), at(100), at(200), at(300)];
    expect(sampleBefore(s, t0 + 300_000, 150)?.at).toBe(s[1]!.at);
    expect(sampleBefore(s, t0 + 300_000, 1000)?.at).toBe(s[0]!.at);
  });
});

describe("ratePerMinute", () => {
  it("turns counter deltas into per-minute rates and skips resets", () => {
    const s = [at(0, { counters: { events_in: 0 } }), at(5, { counters: { events_in: 10 } }), at(10, { counters: { events_in: 4 } })];
    expect(ratePerMinute(s, "events_in")).toEqual([null, 120, null]);
  });
});

describe("recentRate", () => {
  it("is the rate per minute over the last minute of samples, not a total", () => {
    const s = [0, 30, 60, 90].map((t, i) => at(t, { counters: { events_in: 1000 + i * 50 } }));
    expect(recentRate(s, "events_in")).toBe(100);
    expect(recentRate(s.slice(0, 1), "events_in")).toBeNull();
    expect(recentRate([at(0, { counters: { events_in: 9 } }), at(30, { counters: { events_in: 2 } })], "events_in")).toBeNull();
    expect(recentRate([at(0), at(30, { counters: { events_out: 3 } })], "events_out")).toBe(6);
    expect(recentRate([at(0), at(30)], "events_out")).toBe(0);
  });
});
