import { describe, expect, it } from "vitest";
import type { ReconcileRun } from "../api/types";
import {
  awaitingDecision,
  describeDeletePolicy,
  describeRepush,
  formatEta,
  formatPercent,
  guardRunIds,
  latestPerObject,
  runsSummary,
  parseRecordIds,
  progressOf,
  repushSelection,
  runStatusLabel,
  stalledSecs,
  triggerLabel,
  vanishedShare,
  type RepushDraft,
} from "./reconcile";

const run = (patch: Partial<ReconcileRun>): ReconcileRun => ({
  id: 1,
  system: "hris",
  object: "employee",
  trigger: "schedule",
  status: "done",
  started_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-01T00:00:00Z",
  listed: 0,
  changed: 0,
  unknown: 0,
  linked: 0,
  vanished: 0,
  deleted: 0,
  max_delete_share: 0.1,
  message: "",
  ...patch,
});

describe("reconciliation runs", () => {
  it("says who started a run and where it stands", () => {
    expect(triggerLabel("schedule")).toBe("Scheduled");
    expect(triggerLabel("resume")).toBe("Resumed after a restart");
    expect(triggerLabel("ana")).toBe("By ana");
    expect(runStatusLabel("needs_confirmation")).toBe("Waiting for an admin");
    expect(runStatusLabel("something_new")).toBe("something_new");
  });
  it("shows progress only when the system says how many records it holds", () => {
    expect(progressOf(run({ listed: 250, total: 1000 }))).toEqual({ value: 250, max: 1000 });
    expect(progressOf(run({ listed: 250, total: null }))).toBeNull();
    expect(progressOf(run({ listed: 250, total: 0 }))).toBeNull();
    expect(progressOf(run({ listed: 1200, total: 1000 }))).toEqual({ value: 1000, max: 1000 });
  });
  it("says roughly how long is left, or nothing when unknown", () => {
    expect(formatEta(42.4)).toBe("about 42 s left");
    expect(formatEta(0.2)).toBe("about 1 s left");
    expect(formatEta(185)).toBe("about 3 min left");
    expect(formatEta(5400)).toBe("about 1.5 h left");
    expect(formatEta(null)).toBeNull();
    expect(formatEta(Number.NaN)).toBeNull();
  });
  it("calls a running run stalled after 30 s without a new page, and a finished one never", () => {
    const at = Date.parse("2026-01-01T00:00:00Z");
    expect(stalledSecs(run({ status: "running", updated_at: "2026-01-01T00:00:00Z" }), at + 29_000)).toBeNull();
    expect(stalledSecs(run({ status: "running", updated_at: "2026-01-01T00:00:00Z" }), at + 45_000)).toBe(45);
    expect(stalledSecs(run({ status: "done", updated_at: "2026-01-01T00:00:00Z" }), at + 600_000)).toBeNull();
  });
  it("measures the records gone against those linked, and nothing linked as none gone", () => {
    expect(vanishedShare(run({ vanished: 57, linked: 300 }))).toBeCloseTo(0.19);
    expect(vanishedShare(run({ vanished: 3, linked: 0 }))).toBe(0);
    expect(formatPercent(0.19)).toBe("19%");
    expect(formatPercent(0.004)).toBe("0.4%");
    expect(formatPercent(0)).toBe("0%");
  });
  it("keeps the newest run of each object", () => {
    const runs = [run({ id: 3, object: "employee" }), run({ id: 5, object: "department" }), run({ id: 4, object: "employee" })];
    expect(latestPerObject(runs).map((r) => r.id)).toEqual([5, 4]);
  });
});

describe("describeDeletePolicy", () => {
  it("says what a confirmed delete does elsewhere under each policy, review when none is set", () => {
    expect(describeDeletePolicy({ policy: "propagate" })).toMatch(/deleted in every other system/);
    expect(describeDeletePolicy({ policy: "deactivate", field: "status", value: "terminated" })).toBe("each is kept in the other systems with status set to terminated");
    expect(describeDeletePolicy({ policy: "ignore" })).toMatch(/only the links/);
    expect(describeDeletePolicy(undefined)).toMatch(/delete review for a steward/);
  });
});

describe("runsSummary", () => {
  it("counts runs by status in a line, leaving out statuses no run has", () => {
    const s = (status: string) => ({ status });
    expect(runsSummary([s("dismissed")], 20)).toBe("1 run: 1 with deletes dismissed.");
    expect(runsSummary([s("done"), s("done"), s("failed"), s("needs_confirmation")], 4)).toBe("The 4 newest runs: 1 waiting for an admin, 2 done, 1 failed.");
    expect(runsSummary([], 20)).toBe("0 runs.");
  });
});

describe("runs waiting for an admin", () => {
  it("takes the run of each open reconcile_guard exception, once", () => {
    const ex = (kind: string, status: string, detail: unknown) => ({ kind, status, detail });
    expect(guardRunIds([ex("reconcile_guard", "open", { run: 9 }), ex("reconcile_guard", "open", { run: 9 }), ex("reconcile_guard", "open", { run: 4 })])).toEqual([4, 9]);
    expect(guardRunIds([ex("reconcile_guard", "resolved", { run: 2 }), ex("conflict", "open", { run: 3 }), ex("reconcile_guard", "open", null)])).toEqual([]);
  });
  it("lists each waiting run once, whichever lists name it, and no run that was decided", () => {
    const waiting = run({ id: 7, status: "needs_confirmation" });
    expect(awaitingDecision([waiting, run({ id: 8 })], [waiting], [run({ id: 2, status: "needs_confirmation" })]).map((r) => r.id)).toEqual([2, 7]);
    expect(awaitingDecision([run({ id: 7, status: "dismissed" })])).toEqual([]);
  });
});

describe("re-push selection", () => {
  const draft = (patch: Partial<RepushDraft>): RepushDraft => ({ mode: "ids", object: "", idsText: "", filter: [], confirmText: "", ...patch });
  const types = (f: string) => (f === "fte" ? "number" : f === "active" ? "bool" : "string");
  it("reads record ids separated by commas or spaces, each once, and names what is not an id", () => {
    expect(parseRecordIds("12, 13 14,,12\n15")).toEqual({ ids: [12, 13, 14, 15], bad: [] });
    expect(parseRecordIds("12, abc, -3, 0, 4.5")).toEqual({ ids: [12], bad: ["abc", "-3", "0", "4.5"] });
  });
  it("sends ids, for every mapped object unless one is chosen", () => {
    expect(repushSelection(draft({ idsText: "3, 4" }), "hris", types)).toEqual({ selection: { object: null, record_ids: [3, 4] } });
    expect(repushSelection(draft({ idsText: "3", object: "employee" }), "hris", types)).toEqual({ selection: { object: "employee", record_ids: [3] } });
    expect(repushSelection(draft({ idsText: "" }), "hris", types)).toEqual({ error: "Type one or more record ids." });
    expect(repushSelection(draft({ idsText: "3, x" }), "hris", types)).toEqual({ error: "Not record ids: x" });
  });
  it("sends a filter of canonical values typed as their fields, and needs an object", () => {
    const filter = [
      { field: "department", value: "Finance" },
      { field: "fte", value: "0.5" },
      { field: "active", value: "true" },
    ];
    expect(repushSelection(draft({ mode: "filter", object: "employee", filter }), "hris", types)).toEqual({
      selection: { object: "employee", filter: { department: "Finance", fte: 0.5, active: true } },
    });
    expect(repushSelection(draft({ mode: "filter", filter }), "hris", types)).toMatchObject({ error: /Choose the object/ });
    expect(repushSelection(draft({ mode: "filter", object: "employee", filter: [{ field: "", value: "x" }] }), "hris", types)).toMatchObject({ error: /Choose a field/ });
    expect(repushSelection(draft({ mode: "filter", object: "employee", filter: [filter[0]!, filter[0]!] }), "hris", types)).toEqual({ error: "department is in the filter twice." });
  });
  it("pushes every record only when the system id is typed to confirm", () => {
    expect(repushSelection(draft({ mode: "all", confirmText: "payrol" }), "payroll", types)).toEqual({ error: "Type payroll to confirm." });
    expect(repushSelection(draft({ mode: "all", confirmText: " payroll " }), "payroll", types)).toEqual({ selection: { object: null, all: true } });
  });
  it("says what a re-push did", () => {
    expect(describeRepush({ matched: 0, queued: 0 })).toBe("No record matched: nothing was queued.");
    expect(describeRepush({ matched: 1, queued: 1 })).toBe("1 record matched; 1 write queued.");
    expect(describeRepush({ matched: 1200, queued: 1180 })).toBe("1,200 records matched; 1,180 writes queued (a record with a write already waiting gets it merged in).");
  });
});
