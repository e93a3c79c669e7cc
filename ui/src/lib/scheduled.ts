// Effective-dated changes in words: each field's value now and on the date, when the change
// takes effect relative to today, and what became of a released one. Pure, so it is tested
// without a server.

import type { ScheduledChange, ScheduledStatus } from "../api/types";

export const STATUS_LABEL: Record<ScheduledStatus, string> = {
  scheduled: "Waiting",
  released: "Released",
  superseded: "Superseded",
  all: "All",
};

export interface FieldChange {
  field: string;
  now: unknown;
  then: unknown;
}

/** One row per held field, in name order: what the system held when it dated the change, and the dated value. */
export function fieldChanges(c: { values: Record<string, unknown>; base: Record<string, unknown> }): FieldChange[] {
  const { values, base } = c;
  return Object.keys(values)
    .sort()
    .map((field) => ({ field, now: field in base ? base[field] : null, then: values[field] }));
}

/** "in 3 days", "tomorrow", "today", "2 days ago": whole calendar days in UTC, as the engine dates them. */
export function relativeDay(effectiveAt: string, now: Date = new Date()): string {
  const day = (d: Date) => Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  const at = new Date(effectiveAt);
  if (Number.isNaN(at.getTime())) return "";
  const days = Math.round((day(at) - day(now)) / 86_400_000);
  if (days === 0) return "today";
  if (days === 1) return "tomorrow";
  if (days === -1) return "yesterday";
  return days > 0 ? `in ${days} days` : `${-days} days ago`;
}

/** What became of a change, in words, with a tone for its pill. */
export function outcome(c: Pick<ScheduledChange, "status" | "outcome" | "reason">): { text: string; tone: "info" | "success" | "warning" | "danger" | undefined } {
  if (c.status === "scheduled") return { text: "Waiting for its date", tone: "info" };
  if (c.status === "superseded") return { text: c.reason ?? "Superseded by a later change", tone: undefined };
  switch (c.outcome) {
    case "applied":
      return { text: "Applied on its date", tone: "success" };
    case "pending":
      return { text: "Released; being applied", tone: "info" };
    case "held":
      return { text: "Released; waiting for an earlier write's outcome or a steward", tone: "warning" };
    case "failed":
      return { text: "Released; failed (see dead letters)", tone: "danger" };
    default:
      return { text: "Released", tone: undefined };
  }
}
