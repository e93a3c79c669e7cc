// Repairing a system from the Systems page, as pure rules: reconciliation runs (their status,
// progress, time left and the share of records gone), which runs wait for an admin, and the
// selection of records to push to a system again (record ids, a filter, or all of them).

import type { DeletePolicy, ExceptionView, FieldType, RepushOutcome, RepushSelection, ReconcileRun } from "../api/types";
import { parseTyped } from "./format";

/** A run's status for people. */
export const RUN_STATUS_LABEL: Record<string, string> = {
  running: "Running",
  needs_confirmation: "Waiting for an admin",
  done: "Done",
  failed: "Failed",
  dismissed: "Deletes dismissed",
};

export function runStatusLabel(status: string): string {
  return RUN_STATUS_LABEL[status] ?? status;
}

export function runTone(status: string): "info" | "warning" | "success" | "danger" | undefined {
  switch (status) {
    case "running":
      return "info";
    case "needs_confirmation":
      return "warning";
    case "done":
      return "success";
    case "failed":
      return "danger";
    default:
      return undefined;
  }
}

/** Who or what started a run: the schedule, a resume after a restart, or a person. */
export function triggerLabel(trigger: string): string {
  if (trigger === "schedule") return "Scheduled";
  if (trigger === "resume") return "Resumed after a restart";
  return `By ${trigger}`;
}

export function isRunning(r: Pick<ReconcileRun, "status">): boolean {
  return r.status === "running";
}

/** Seconds without a new page after which a running run is said to be stalled. */
export const STALL_SECS = 30;

/**
 * How long a running run has gone without a new page, when that is longer than `STALL_SECS`
 * (else null). The engine pauses a run whose system is unavailable; it stays `running` and goes
 * on from its page at the next scheduled run, or when it is started again.
 */
export function stalledSecs(r: Pick<ReconcileRun, "status" | "updated_at">, nowMs: number): number | null {
  if (!isRunning(r)) return null;
  const t = Date.parse(r.updated_at);
  if (Number.isNaN(t)) return null;
  const secs = (nowMs - t) / 1000;
  return secs > STALL_SECS ? secs : null;
}

/** The share of the linked records the listing no longer has (0 when nothing was linked). */
export function vanishedShare(r: Pick<ReconcileRun, "vanished" | "linked">): number {
  return r.linked > 0 ? r.vanished / r.linked : 0;
}

/** A share as a percent: "12%", "0.4%" below one percent, "0%" for none. */
export function formatPercent(share: number): string {
  if (!Number.isFinite(share) || share <= 0) return "0%";
  const pct = share * 100;
  return pct < 1 ? `${Math.round(pct * 10) / 10}%` : `${Math.round(pct)}%`;
}

/** "about 40 s left", "about 3 min left", "about 2 h left"; null when unknown. */
export function formatEta(secs: number | null | undefined): string | null {
  if (secs === null || secs === undefined || !Number.isFinite(secs) || secs < 0) return null;
  if (secs < 60) return `about ${Math.max(1, Math.round(secs))} s left`;
  if (secs < 3600) return `about ${Math.round(secs / 60)} min left`;
  return `about ${Math.round((secs / 3600) * 10) / 10} h left`;
}

/** How far a run's listing is: `listed` of `total` when the system says how many it holds. */
export function progressOf(r: Pick<ReconcileRun, "listed" | "total">): { value: number; max: number } | null {
  if (r.total === null || r.total === undefined || r.total <= 0) return null;
  return { value: Math.min(r.listed, r.total), max: r.total };
}

/** The newest run of each object, newest first (runs come newest first, but no order is assumed). */
export function latestPerObject(runs: ReconcileRun[]): ReconcileRun[] {
  const best = new Map<string, ReconcileRun>();
  for (const r of runs) {
    const seen = best.get(r.object);
    if (!seen || r.id > seen.id) best.set(r.object, r);
  }
  return [...best.values()].sort((a, b) => b.id - a.id);
}

/** A list of runs in a line: "The 20 newest runs: 18 done, 1 failed, 1 waiting for an admin." (no zero counts). */
export function runsSummary(runs: Pick<ReconcileRun, "status">[], limit: number): string {
  const head = runs.length >= limit ? `The ${limit} newest runs` : `${runs.length} ${runs.length === 1 ? "run" : "runs"}`;
  const order: [string, string][] = [
    ["running", "running"],
    ["needs_confirmation", "waiting for an admin"],
    ["done", "done"],
    ["failed", "failed"],
    ["dismissed", "with deletes dismissed"],
  ];
  const parts = order.map(([s, label]) => [runs.filter((r) => r.status === s).length, label] as const).filter(([n]) => n > 0).map(([n, label]) => `${n} ${label}`);
  const other = runs.filter((r) => !order.some(([s]) => s === r.status)).length;
  if (other) parts.push(`${other} other`);
  return parts.length ? `${head}: ${parts.join(", ")}.` : `${head}.`;
}

/** The runs of an open `reconcile_guard` exception: each waits for an admin to confirm or dismiss its deletes. */
export function guardRunIds(exceptions: Pick<ExceptionView, "kind" | "status" | "detail">[]): number[] {
  const ids = new Set<number>();
  for (const e of exceptions) {
    if (e.kind !== "reconcile_guard" || e.status !== "open") continue;
    const run = (e.detail as { run?: unknown } | null | undefined)?.run;
    if (typeof run === "number" && Number.isInteger(run)) ids.add(run);
  }
  return [...ids].sort((a, b) => a - b);
}

/** Runs that wait for an admin, once each, oldest first (several lists may name one run). */
export function awaitingDecision(...lists: ReconcileRun[][]): ReconcileRun[] {
  const byId = new Map<number, ReconcileRun>();
  for (const list of lists) for (const r of list) if (r.status === "needs_confirmation") byId.set(r.id, r);
  return [...byId.values()].sort((a, b) => a.id - b.id);
}

/** What deleting records gone from a system does elsewhere, by the object's delete policy (`review` when none is set). */
export function describeDeletePolicy(p: DeletePolicy | undefined): string {
  switch (p?.policy ?? "review") {
    case "propagate":
      return "each is deleted in every other system too";
    case "deactivate": {
      const d = p as Extract<DeletePolicy, { policy: "deactivate" }>;
      return `each is kept in the other systems with ${d.field} set to ${typeof d.value === "string" ? d.value : JSON.stringify(d.value)}`;
    }
    case "ignore":
      return "the other systems keep them; only the links to this system go";
    default:
      return "each opens a delete review for a steward; nothing changes elsewhere until one decides";
  }
}

// ---------------------------------------------------------------------------------------------
// Re-push: which records to push to a system again.

export type RepushMode = "ids" | "filter" | "all";

export interface FilterRow {
  field: string;
  value: string;
}

/** The re-push dialog as typed. */
export interface RepushDraft {
  mode: RepushMode;
  /** The object, or "" for every object the system maps. */
  object: string;
  idsText: string;
  filter: FilterRow[];
  /** The system id, typed to confirm pushing every record. */
  confirmText: string;
}

/** Record ids typed as a list: commas, spaces or new lines between them; each once. */
export function parseRecordIds(text: string): { ids: number[]; bad: string[] } {
  const ids: number[] = [];
  const bad: string[] = [];
  for (const part of text.split(/[\s,;]+/)) {
    if (part === "") continue;
    const n = /^\d+$/.test(part) ? Number(part) : Number.NaN;
    if (Number.isSafeInteger(n) && n > 0) {
      if (!ids.includes(n)) ids.push(n);
    } else bad.push(part);
  }
  return { ids, bad };
}

/**
 * The selection to send, or what is missing. A filter's values are typed as the canonical
 * field's type (a number as a number, a flag as true or false, everything else as text).
 */
export function repushSelection(d: RepushDraft, systemId: string, typeOf: (field: string) => FieldType | undefined): { selection: RepushSelection } | { error: string } {
  const object = d.object || null;
  switch (d.mode) {
    case "ids": {
      const { ids, bad } = parseRecordIds(d.idsText);
      if (bad.length) return { error: `Not record ids: ${bad.slice(0, 5).join(", ")}${bad.length > 5 ? "…" : ""}` };
      if (ids.length === 0) return { error: "Type one or more record ids." };
      return { selection: { object, record_ids: ids } };
    }
    case "filter": {
      if (!object) return { error: "Choose the object whose fields the filter compares." };
      const rows = d.filter.filter((r) => r.field !== "");
      if (rows.length === 0) return { error: "Choose a field and the value records must have." };
      const filter: Record<string, unknown> = {};
      for (const r of rows) {
        if (r.field in filter) return { error: `${r.field} is in the filter twice.` };
        filter[r.field] = parseTyped(r.value, typeOf(r.field));
      }
      return { selection: { object, filter } };
    }
    case "all":
      if (d.confirmText.trim() !== systemId) return { error: `Type ${systemId} to confirm.` };
      return { selection: { object, all: true } };
  }
}

/** What a re-push did, in a sentence. */
export function describeRepush(o: RepushOutcome): string {
  if (o.matched === 0) return "No record matched: nothing was queued.";
  const rec = `${o.matched.toLocaleString("en-US")} ${o.matched === 1 ? "record" : "records"} matched`;
  const queued = `${o.queued.toLocaleString("en-US")} ${o.queued === 1 ? "write" : "writes"} queued`;
  return o.queued < o.matched ? `${rec}; ${queued} (a record with a write already waiting gets it merged in).` : `${rec}; ${queued}.`;
}
