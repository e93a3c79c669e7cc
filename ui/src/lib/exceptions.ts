// Exception kinds as people read them, and what a steward can do about each: choose a value
// (a field's conflict, non-owner change or validation failure), link a match, decide a delete,
// dismiss it, or nothing here (a reconciliation's held deletes are decided on the Systems page).

import type { ExceptionView } from "../api/types";
import { humanize } from "./format";

export const EXCEPTION_KINDS = ["conflict", "non_owner_change", "validation", "ambiguous_match", "delete_review", "unstable_record", "reconcile_guard"] as const;

const LABELS: Record<string, string> = {
  conflict: "Conflict",
  non_owner_change: "Non-owner change",
  validation: "Validation",
  ambiguous_match: "Ambiguous match",
  delete_review: "Delete review",
  unstable_record: "Keeps changing",
  reconcile_guard: "Mass delete held",
};

/** A kind's label; a kind this console does not know is shown as written, in words. */
export function kindLabel(kind: string): string {
  return LABELS[kind] ?? humanize(kind);
}

export function kindTone(kind: string): "danger" | "warning" | "info" | "accent" | undefined {
  switch (kind) {
    case "conflict":
    case "reconcile_guard":
      return "danger";
    case "non_owner_change":
    case "unstable_record":
      return "warning";
    case "validation":
      return "info";
    case "ambiguous_match":
      return "accent";
    default:
      return undefined;
  }
}

/** What a steward does with an open exception of this kind, in the exception's own panel. */
export interface Handling {
  /** Choose the field's value (base, golden, a system's, or typed). */
  chooseValue: boolean;
  /** Close it without changing any value, with a note. */
  dismiss: boolean;
  /** Decided elsewhere: where, for a link. */
  decidedAt: string | null;
  /** About one record (a missing one is a record seen for the first time); false: about a whole system. */
  perRecord: boolean;
}

/** What happens to an exception, from its kind: the two kinds without field values have no value to choose. */
export function handling(e: Pick<ExceptionView, "kind" | "record_id" | "field" | "detail">): Handling {
  switch (e.kind) {
    case "reconcile_guard": {
      const run = (e.detail as { run?: unknown } | null | undefined)?.run;
      return { chooseValue: false, dismiss: false, decidedAt: typeof run === "number" ? `/systems?run=${run}` : "/systems", perRecord: false };
    }
    case "unstable_record":
    case "ambiguous_match":
    case "delete_review":
      return { chooseValue: false, dismiss: true, decidedAt: null, perRecord: true };
    default: {
      const fieldValue = e.record_id != null && !!e.field;
      return { chooseValue: fieldValue, dismiss: fieldValue, decidedAt: null, perRecord: true };
    }
  }
}

/** What an exception's detail says, typed loosely (the API gives it as free JSON, per kind). */
export interface Detail {
  message?: string;
  base?: unknown;
  golden?: unknown;
  golden_by?: string | null;
  values?: Record<string, unknown>;
  approval?: { value?: unknown; by?: string; role?: string; at?: string; note?: string } | string;
  candidates?: number[];
  external_id?: string;
  value?: unknown;
  paths?: string[];
  direction?: string;
  owner?: string | null;
  /** `unstable_record`: the write held as a dead letter, and the re-reads in a row before it stopped. */
  outbox_id?: number;
  rereads?: number;
  /** `reconcile_guard`: the run, and how many of the linked records it found gone. */
  run?: number;
  vanished?: number;
  linked?: number;
  max_delete_share?: number;
}

export function detailOf(e: Pick<ExceptionView, "detail">): Detail {
  return e.detail && typeof e.detail === "object" ? (e.detail as Detail) : {};
}
