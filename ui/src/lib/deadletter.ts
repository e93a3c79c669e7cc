// What became of a dead letter, in a sentence: who replayed or discarded it, when, and why; the
// request it was sent as; what a re-plan did and what became of the write it queued.
// `actor` and `updated_at` say who last acted on it and when its status last changed (a replay
// that fails again turns it back to dead and keeps who replayed it).

import type { AuditRow, DeadLetterView, ReplanOutcome, SentRequest } from "../api/types";
import { containsMasked, humanize } from "./format";
import { stableJson } from "./restconfig";

export type OutcomeTone = "success" | "info" | "warning" | undefined;

export interface Outcome {
  /** Beside the status in a table cell: "by ana", "replayed by ana" ("" for nobody). */
  byline: string;
  /** For the detail: "Discarded by ana (admin) at Nov 22, 2025, 14:05:09: duplicate". */
  long: string;
  tone: OutcomeTone;
}

type Row = Pick<DeadLetterView, "status" | "kind" | "actor" | "discard_reason" | "updated_at">;

/**
 * The outcome of a replay, a re-plan or a discard, or null for a dead letter nobody has acted on.
 * `time` formats the time (format.ts); `role` is the actor's role when known; `replanned` says
 * the last action was a re-plan (the audit knows; the dead letter itself says only "replayed").
 */
export function deadLetterOutcome(d: Row, time: (iso: string) => string, role?: string | null, replanned = false): Outcome | null {
  const name = d.actor?.trim() || null;
  const by = name ? ` by ${name}` : "";
  const byRole = name ? ` by ${name}${role ? ` (${role})` : ""}` : "";
  const at = time(d.updated_at);
  const reason = d.discard_reason?.trim();
  switch (d.status) {
    case "discarded":
      return { byline: by.trim(), long: `Discarded${byRole} at ${at}${reason ? `: ${reason}` : ""}`, tone: undefined };
    case "replayed":
      // A re-plan settles the dead letter at once; the new write it queued is followed apart.
      if (replanned) return { byline: name ? `re-planned by ${name}` : "re-planned", long: `Planned again${byRole} at ${at} from the current data, as a new write`, tone: "success" };
      return d.kind === "write"
        ? { byline: by.trim(), long: `Replayed${byRole}; delivered at ${at}`, tone: "success" }
        : { byline: by.trim(), long: `Replayed${byRole} at ${at}`, tone: "success" };
    case "replaying":
      return { byline: name ? `requested by ${name}` : "", long: `Replay requested${byRole} at ${at}; not delivered yet`, tone: "info" };
    case "dead":
      return name ? { byline: `replayed by ${name}`, long: `Replayed${byRole}; failed again at ${at}`, tone: "warning" } : null;
    default:
      return null;
  }
}

/** An audit search window that ends just after `iso` (the audit's `until` is exclusive). */
export function justAfter(iso: string): string | undefined {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? undefined : new Date(t + 1000).toISOString();
}

/** "PATCH /employees/42": a request's method and path, as sent. */
export function requestLine(r: Pick<SentRequest, "method" | "path">): string {
  return `${r.method.toUpperCase()} ${r.path}`;
}

/** A request's body as people read it (indented JSON), or null when it has none. */
export function requestBodyText(r: Pick<SentRequest, "body">): string | null {
  return r.body === null || r.body === undefined ? null : JSON.stringify(r.body, null, 2);
}

/**
 * Whether two requests send the same method, path and body (key order aside). Bodies with a
 * masked value cannot be told apart, so they are never called the same.
 */
export function sameRequest(a: SentRequest | null | undefined, b: SentRequest | null | undefined): boolean {
  if (!a || !b || containsMasked(a.body) || containsMasked(b.body)) return false;
  return a.method.toUpperCase() === b.method.toUpperCase() && a.path === b.path && stableJson(a.body ?? null) === stableJson(b.body ?? null);
}

export interface Said {
  tone: "success" | "info";
  title: string;
  description?: string;
}

/** What a re-plan did, for the toast. */
export function replanMessage(o: ReplanOutcome, id: number): Said {
  switch (o.outcome) {
    case "queued":
      return {
        tone: "success",
        title: `Dead letter #${id} planned again`,
        description: `A new write${o.outbox_id != null ? ` (#${o.outbox_id})` : ""} is queued from the current golden record and mapping.`,
      };
    case "nothing_to_write":
      return { tone: "info", title: "Nothing to write", description: `The target already holds these values: dead letter #${id} is settled and nothing is sent.` };
    case "already_replayed":
      return { tone: "info", title: "Already replayed: nothing is sent again" };
    case "discarded":
      return { tone: "info", title: "This dead letter was discarded" };
    default:
      return { tone: "info", title: `Re-plan: ${o.outcome}` };
  }
}

/** Where a re-planned write is: waiting, delivered, or failed again (a new dead letter). */
export type ReplanDelivery = { state: "queued" } | { state: "delivered"; at: string } | { state: "failed"; at: string; why: string };

type AuditLine = Pick<AuditRow, "id" | "at" | "rule" | "detail">;

/** Audit rules of what people do to dead letters; every other `dead_letter:<class>` is a write that failed. */
const PEOPLES_RULES = new Set(["dead_letter:replan", "dead_letter:replay", "dead_letter:discard"]);

/**
 * Reads what became of a re-planned write from the audit of its record and system since the
 * re-plan (newest entry first wins): a `delivered:*` entry means it reached the system; a
 * `dead_letter:<error class>` entry, or the loop guard stopping it, means it failed again.
 */
export function replanDelivery(rows: AuditLine[]): ReplanDelivery {
  const newest = [...rows].sort((a, b) => b.id - a.id);
  for (const r of newest) {
    if (r.rule.startsWith("delivered:")) return { state: "delivered", at: r.at };
    if (r.rule.startsWith("dead_letter:") && !PEOPLES_RULES.has(r.rule)) return { state: "failed", at: r.at, why: humanize(r.rule.slice("dead_letter:".length)) };
    if (r.rule === "delivery:loop_guard") return { state: "failed", at: r.at, why: "the record keeps changing under our writes" };
  }
  return { state: "queued" };
}

/** The system's response, indented when it is JSON. */
export function prettyBody(body: string | null | undefined): string {
  if (!body) return "";
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    return body;
  }
}
