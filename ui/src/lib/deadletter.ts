// What became of a dead letter, in a sentence: who replayed or discarded it, when, and why.
// `actor` and `updated_at` say who last acted on it and when its status last changed (a replay
// that fails again turns it back to dead and keeps who replayed it).

import type { DeadLetterView } from "../api/types";

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
 * The outcome of a replay or a discard, or null for a dead letter nobody has acted on.
 * `time` formats the time (format.ts); `role` is the actor's role when known.
 */
export function deadLetterOutcome(d: Row, time: (iso: string) => string, role?: string | null): Outcome | null {
  const name = d.actor?.trim() || null;
  const by = name ? ` by ${name}` : "";
  const byRole = name ? ` by ${name}${role ? ` (${role})` : ""}` : "";
  const at = time(d.updated_at);
  const reason = d.discard_reason?.trim();
  switch (d.status) {
    case "discarded":
      return { byline: by.trim(), long: `Discarded${byRole} at ${at}${reason ? `: ${reason}` : ""}`, tone: undefined };
    case "replayed":
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
