// A system's pilot scope as one line a person types: `department=Finance` or
// `employee_number=E1001,E1002; department=Finance` (a record must match every field, and any of
// a field's values). Pure, so it is tested without a browser.

export type PilotScope = Record<string, unknown[]>;

/** The line for a scope ("" for none). */
export function formatPilot(scope: PilotScope | null | undefined): string {
  if (!scope) return "";
  return Object.entries(scope)
    .map(([field, values]) => `${field}=${values.map((v) => (typeof v === "string" ? v : JSON.stringify(v))).join(",")}`)
    .join("; ");
}

/** The scope a line spells (null: none), or why it cannot be read. */
export function parsePilot(line: string): { scope: PilotScope | null } | { error: string } {
  const text = line.trim();
  if (!text) return { scope: null };
  const scope: PilotScope = {};
  for (const part of text.split(";")) {
    if (!part.trim()) continue;
    const eq = part.indexOf("=");
    const field = eq < 0 ? "" : part.slice(0, eq).trim();
    if (!/^[a-z][a-z0-9_]*$/.test(field)) return { error: `"${part.trim()}" is not field=value: name a canonical field, then the values it admits` };
    const values = part
      .slice(eq + 1)
      .split(",")
      .map((v) => v.trim())
      .filter((v) => v !== "");
    if (values.length === 0) return { error: `${field}: give at least one value` };
    scope[field] = [...(scope[field] ?? []), ...values];
  }
  return { scope: Object.keys(scope).length ? scope : null };
}
