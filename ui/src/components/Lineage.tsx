// A record's (or one field's) recent history from the audit: who or what changed it, from
// which system, by which rule. Answers "why does this field hold this value?".

import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router";
import { api } from "../api/client";
import type { AuditRow } from "../api/types";
import { formatTime, humanize } from "../lib/format";
import { EmptyState, ErrorState, Loading, Value } from "./ui";

const RULES: Record<string, string> = {
  "rule3:clean_change": "Clean change, propagated",
  "rule3:non_owner:revert": "Change by a non-owner, reverted",
  "rule3:non_owner:quarantine": "Change by a non-owner, quarantined",
  "rule4:conflict:manual:held": "Conflict, held for a steward",
  "rule5:already_agreed": "Both sides already agreed",
  "first_contact:created": "First contact: record created",
  "first_contact:linked": "First contact: linked to an existing record",
  "first_contact:ambiguous": "First contact: ambiguous match",
  "resolution:first_approval": "First approval recorded (needs a second person)",
  "resolution:conflict": "Conflict resolved by a steward",
  "resolution:non_owner_change": "Non-owner change resolved by a steward",
  "resolution:validation": "Validation exception resolved by a steward",
  "resolution:ambiguous_match": "Ambiguous match resolved",
  "exception:dismissed": "Exception dismissed",
  "dead_letter:replay": "Dead letter replayed",
  "dead_letter:discard": "Dead letter discarded",
  "validation:rejected_value": "Value rejected by validation",
  "validation:write_refused": "Write refused by validation",
  "delivered:delete": "Delete delivered",
  "delivery:version_conflict": "Target changed meanwhile (412): re-read",
  "repair:rewrite_after_version_conflict": "Rewritten after a version conflict",
  "delete:propagate": "Delete propagated",
  "delete:deactivate": "Deleted in one system: deactivated everywhere",
  "delete:ignore": "Delete ignored",
  "delete:review": "Delete held for review",
  "delete:unknown_record": "Delete of an unknown record",
};

/** A person's wording for an audit rule (`rule4:conflict:owner_wins:incoming_won`, ...). */
export function describeRule(rule: string): string {
  const known = RULES[rule];
  if (known) return known;
  const dl = /^dead_letter:(.+)$/.exec(rule);
  if (dl) return `Write failed for good: ${dl[1]!.replace(/_/g, " ")}`;
  const m = /^rule4:conflict:(.+):(incoming_won|golden_kept)$/.exec(rule);
  if (m) return `Conflict decided by ${m[1]!.replace(/_/g, " ")}: ${m[2] === "incoming_won" ? "incoming value won" : "golden value kept"}`;
  return humanize(rule.replace(/:/g, " · "));
}

export function isPerson(row: AuditRow): boolean {
  return !!row.actor_role && row.actor !== "engine";
}

export function AuditTimeline({ rows }: { rows: AuditRow[] }) {
  return (
    <ol className="timeline">
      {rows.map((r) => (
        <li key={r.id}>
          <span className={`dot ${isPerson(r) ? "person" : ""}`} aria-hidden="true" />
          <div className="t-main">
            <div className="row wrap">
              <strong>{describeRule(r.rule)}</strong>
              {r.field ? <span className="mono faint">{r.field}</span> : null}
            </div>
            {(r.before !== undefined && r.before !== null) || (r.after !== undefined && r.after !== null) ? (
              <div className="row wrap">
                <Value v={r.before ?? null} /> <span className="faint">→</span> <Value v={r.after ?? null} />
              </div>
            ) : null}
            <div className="t-meta">
              {formatTime(r.at)} · {r.actor}
              {r.actor_role ? ` (${r.actor_role})` : ""}
              {r.system ? ` · ${r.system}` : ""} · {r.direction}
              {r.record_id != null ? (
                <>
                  {" · "}
                  <Link to={`/records/${r.record_id}${r.field ? `?field=${encodeURIComponent(r.field)}` : ""}`}>record {r.record_id}</Link>
                </>
              ) : null}
              {detailNote(r.detail) ? <> · “{detailNote(r.detail)}”</> : null}
            </div>
          </div>
        </li>
      ))}
    </ol>
  );
}

function detailNote(detail: unknown): string | null {
  if (detail && typeof detail === "object" && "note" in detail) {
    const n = (detail as { note?: unknown }).note;
    return typeof n === "string" && n ? n : null;
  }
  return null;
}

export function FieldLineage({ recordId, field, limit = 25 }: { recordId: number; field?: string | null; limit?: number }) {
  const q = useQuery({
    queryKey: ["audit", "lineage", recordId, field ?? null, limit],
    queryFn: () => api.get("/api/audit", { record_id: recordId, field: field ?? undefined, limit }),
  });
  if (q.isPending) return <Loading label="Loading history…" />;
  if (q.error) return <ErrorState error={q.error} retry={() => void q.refetch()} />;
  if (q.data.length === 0) return <EmptyState title="No history yet">Nothing about this {field ? "field" : "record"} is in the audit.</EmptyState>;
  return <AuditTimeline rows={q.data} />;
}
