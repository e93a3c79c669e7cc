// Configuration history in words: what a version is of and what it changed. Pure, so it is
// tested without a server.

import type { ConfigVersion } from "../api/types";

export const KIND_LABEL: Record<ConfigVersion["kind"], string> = {
  system: "System",
  mapping: "Mapping",
  policies: "Ownership",
};

/** "Changed 2 values", "Created", "Removed", "Restored version 41 (2 values)". */
export function describeVersion(v: Pick<ConfigVersion, "before" | "after" | "changes" | "restored_from">): string {
  const n = v.changes.length;
  const values = `${n} value${n === 1 ? "" : "s"}`;
  if (v.restored_from != null) return `Restored version ${v.restored_from} (${values})`;
  if (v.before === null || v.before === undefined) return "Created";
  if (v.after === null || v.after === undefined) return "Removed";
  return n === 0 ? "Saved unchanged" : `Changed ${values}`;
}
