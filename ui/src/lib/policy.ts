// Field ownership and policies as the matrix edits them (pure helpers, tested).

import type { ConflictPolicy, FieldPolicy, WorkspaceConfig } from "../api/types";

export type Access = "owner" | "writer" | "read";

export function openPolicy(field: string): FieldPolicy {
  return { field, owner: null, writers: [], conflict: "last_write_wins", non_owner: "revert", sensitive: false, four_eyes: false };
}

export function normalize(p: FieldPolicy): Required<FieldPolicy> {
  return {
    field: p.field,
    owner: p.owner ?? null,
    writers: p.writers ?? [],
    conflict: p.conflict ?? "last_write_wins",
    non_owner: p.non_owner ?? "revert",
    sensitive: p.sensitive ?? false,
    four_eyes: p.four_eyes ?? false,
  };
}

export function accessOf(p: FieldPolicy, system: string): Access {
  if (p.owner === system) return "owner";
  if ((p.writers ?? []).includes(system)) return "writer";
  return "read";
}

/** Sets one system's access; a new owner demotes the previous one to a writer. */
export function setAccess(p: FieldPolicy, system: string, access: Access): FieldPolicy {
  const n = normalize(p);
  let owner = n.owner;
  let writers = n.writers.filter((w) => w !== system);
  if (owner === system) owner = null;
  if (access === "owner") {
    if (owner && owner !== system && !writers.includes(owner)) writers = [...writers, owner];
    owner = system;
  } else if (access === "writer") {
    writers = [...writers, system];
  }
  let conflict = n.conflict;
  if (conflict === "owner_wins" && owner === null) conflict = "last_write_wins";
  return { ...n, owner, writers, conflict };
}

/** Every system may write when the field has neither owner nor writers. */
export function isOpen(p: FieldPolicy): boolean {
  return !p.owner && (p.writers ?? []).length === 0;
}

export function conflictKey(c: ConflictPolicy | undefined): string {
  if (c === undefined) return "last_write_wins";
  if (typeof c === "string") return c;
  return `prefer:${c.prefer}`;
}

export function conflictFromKey(k: string): ConflictPolicy {
  if (k.startsWith("prefer:")) return { prefer: k.slice("prefer:".length) };
  return k as ConflictPolicy;
}

export function samePolicy(a: FieldPolicy, b: FieldPolicy): boolean {
  const x = normalize(a);
  const y = normalize(b);
  return (
    x.owner === y.owner &&
    [...x.writers].sort().join(",") === [...y.writers].sort().join(",") &&
    conflictKey(x.conflict) === conflictKey(y.conflict) &&
    x.non_owner === y.non_owner &&
    x.sensitive === y.sensitive &&
    x.four_eyes === y.four_eyes
  );
}

/** Problems that make a row unsaveable or surprising, for inline messages. */
export function policyWarnings(p: FieldPolicy, systems: string[]): string[] {
  const out: string[] = [];
  const c = conflictKey(p.conflict);
  if (c === "owner_wins" && !p.owner) out.push("owner_wins needs an owner");
  if (c.startsWith("prefer:") && !systems.includes(c.slice(7))) out.push(`prefers unknown system ${c.slice(7)}`);
  return out;
}

/** The deactivation the object's schema suggests: its delete policy's, else a status-like enum field. */
export function suggestedDeactivation(ws: WorkspaceConfig | undefined, object: string): { field: string; value: string } | null {
  const schema = ws?.objects.find((o) => o.name === object);
  if (!schema) return null;
  const policy = schema.delete_policy;
  if (policy && policy.policy === "deactivate" && typeof policy.value === "string") return { field: policy.field, value: policy.value };
  const status = schema.fields.find((f) => f.type === "enum" && /status|state/i.test(f.name));
  if (!status) return null;
  const value = (status.values ?? []).find((v) => /terminat|inactive|deactiv/i.test(v)) ?? status.values?.[0] ?? "";
  return { field: status.name, value };
}

/** A field's rules in a few words: "owner hris, writers payroll; conflicts: owner wins; others' changes: reverted". */
export function describePolicy(p: FieldPolicy): string {
  const n = normalize(p);
  const who = isOpen(n) ? "every system writes" : [n.owner ? `owner ${n.owner}` : null, n.writers.length ? `writers ${n.writers.join(", ")}` : null].filter(Boolean).join(", ");
  const c = conflictKey(n.conflict);
  const conflicts = c.startsWith("prefer:") ? `prefer ${c.slice(7)}` : c.replace(/_/g, " ");
  const parts = [who, `conflicts: ${conflicts}`];
  if (!isOpen(n)) parts.push(`others' changes: ${n.non_owner === "revert" ? "reverted" : "held for a steward"}`);
  if (n.four_eyes) parts.push("four eyes");
  if (n.sensitive) parts.push("sensitive");
  return parts.join("; ");
}
