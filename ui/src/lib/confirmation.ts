// Configuration changes that remove what others depend on (every rule of a mapping, every
// ownership rule of an object, a system with linked records) are refused by the API with a 409
// `confirmation_required` naming what would go; the UI shows that and, once confirmed, sends
// the same request again with `?confirm=true`.

import { ApiError } from "../api/client";
import type { Removal } from "../api/types";
import { plural } from "./format";

/** What a refusal says would be removed, if it is a request for confirmation. */
export function removalOf(e: unknown): Removal | null {
  if (!(e instanceof ApiError) || e.status !== 409 || e.code !== "confirmation_required") return null;
  const d = e.details;
  if (!d || typeof d !== "object") return null;
  const r = (d as { removes?: unknown }).removes;
  if (!r || typeof r !== "object" || typeof (r as { kind?: unknown }).kind !== "string") return null;
  return r as Removal;
}

/** A title for the confirmation dialog. */
export function removalTitle(r: Removal): string {
  switch (r.kind) {
    case "mapping_rules":
      return `Remove every rule of the ${r.system ?? ""} ${r.object ?? ""} mapping?`.replace(/\s+/g, " ");
    case "policies":
      return `Remove every ownership rule of ${r.object ?? "this object"}?`;
    case "system":
      return `Remove the system ${r.system ?? ""}?`.replace(/\s+\?/, "?");
    default:
      return "Confirm this change?";
  }
}

/** The lines the dialog lists: what would be removed, with counts. */
export function describeRemoval(r: Removal): string[] {
  const lines: string[] = [];
  const fields = r.fields ?? [];
  const count = r.count ?? 0;
  if (r.kind === "mapping_rules") {
    lines.push(`${plural(count, "mapping rule", "mapping rules")} removed.`);
    if (fields.length) lines.push(`No longer read or written in ${r.system ?? "the system"}: ${fields.join(", ")}.`);
  } else if (r.kind === "policies") {
    lines.push(`${plural(count, "ownership rule", "ownership rules")} removed: every system may then write ${fields.length ? fields.join(", ") : "every field"}.`);
  } else if (r.kind === "system") {
    const linked = r.linked_records ?? 0;
    if (linked > 0) lines.push(`${plural(linked, "linked record stops", "linked records stop")} syncing with it.`);
    const mappings = r.mappings ?? [];
    if (mappings.length) lines.push(`Its ${mappings.length === 1 ? "mapping" : "mappings"} ${mappings.join(", ")} ${mappings.length === 1 ? "is" : "are"} removed too.`);
  }
  return lines;
}
