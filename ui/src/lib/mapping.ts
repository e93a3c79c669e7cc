// The field mapper's pure logic: connecting a system path to a canonical field, choosing a
// sensible transform from the field's type and a sample value, transform arities and defaults,
// and reading a check of the mapping's paths against the system's records.

import { dateFormatOf, suggestFromSamples } from "./suggest";
import type { FieldType, Mapping, MappingCheck, MappingRule, PathProblem, Transform, TransformKind } from "../api/types";

export const TRANSFORM_KINDS: { kind: TransformKind; label: string; help: string }[] = [
  { kind: "copy", label: "Copy", help: "The value is copied unchanged both ways." },
  { kind: "full_name", label: "Full name ↔ given + family", help: "One 'Given Family' string on the system side, two canonical fields." },
  { kind: "date", label: "Date", help: "A date string in a format (strftime), canonical YYYY-MM-DD." },
  { kind: "timestamp", label: "Timestamp", help: "A local date-time in a time zone, canonical UTC RFC 3339." },
  { kind: "money_minor", label: "Money in minor units", help: "An integer count of cents (or other minor units)." },
  { kind: "money_decimal", label: "Money as a decimal", help: "A decimal string or number, written with a fixed scale." },
  { kind: "enum", label: "Enum table", help: "A table of system values and canonical codes." },
  { kind: "phone", label: "Phone (E.164)", help: "Numbers as people type them; canonical E.164." },
  { kind: "constant", label: "Constant", help: "Always writes a value; never read." },
  { kind: "lowercase", label: "Lowercase (read-only)", help: "Trimmed, lowercased; cannot be written back." },
];

/** How many system paths and canonical fields a transform takes. */
export function arity(kind: TransformKind): { system: number; canonical: number } {
  if (kind === "full_name") return { system: 1, canonical: 2 };
  if (kind === "constant") return { system: 1, canonical: 0 };
  return { system: 1, canonical: 1 };
}

export function defaultTransform(kind: TransformKind, enumValues: string[] = []): Transform {
  switch (kind) {
    case "date":
      return { kind, format: "%Y-%m-%d" };
    case "timestamp":
      return { kind, tz: "UTC", format: null };
    case "money_minor":
      return { kind, exponent: 2 };
    case "money_decimal":
      return { kind, scale: 2 };
    case "enum":
      return { kind, table: enumValues.map((v) => ({ system: v, canonical: v })) };
    case "phone":
      return { kind, region: "US", system_format: "e164" };
    case "constant":
      return { kind, value: "" };
    default:
      return { kind } as Transform;
  }
}

/** A date format that reads the sample, among common ones. */
export function guessDateFormat(sample: unknown): string {
  return dateFormatOf([sample]).format;
}

/** The transform a new connection starts with, from the canonical type and a sample value. */
export function suggestTransform(type: FieldType | undefined, sample: unknown, enumValues: string[] = []): Transform {
  return type ? suggestFromSamples({ type, values: enumValues }, "", [sample]).transform : { kind: "copy" };
}

/**
 * Connects `path` to canonical `field`. A rule that already yields the field takes the new
 * path (its transform is kept); otherwise a new rule is added with a suggested transform.
 * Returns the new mapping and the index of the rule that holds the connection.
 */
export function connect(m: Mapping, path: string, field: string, suggestion: Transform): { mapping: Mapping; index: number } {
  const rules = m.rules.map((r) => ({ ...r }));
  const existing = rules.findIndex((r) => (r.canonical ?? []).includes(field));
  if (existing >= 0) {
    rules[existing] = { ...rules[existing]!, system: [path] };
    return { mapping: { ...m, rules }, index: existing };
  }
  rules.push({ canonical: [field], system: [path], transform: suggestion, null: { policy: "leave_unchanged" } });
  return { mapping: { ...m, rules }, index: rules.length - 1 };
}

/** Changes a rule's transform, fixing up the canonical fields to the new arity. */
export function changeKind(rule: MappingRule, kind: TransformKind, enumValues: string[] = []): MappingRule {
  const want = arity(kind).canonical;
  let canonical = [...(rule.canonical ?? [])];
  if (canonical.length > want) canonical = canonical.slice(0, want);
  while (canonical.length < want) canonical.push(kind === "full_name" ? (canonical.includes("given_name") ? "family_name" : "given_name") : "");
  return { ...rule, canonical, transform: defaultTransform(kind, enumValues) };
}

/** Why a rule cannot be written back to the system, if it cannot (mirrors transform.rs). */
export function readOnlyReason(t: Transform | undefined): string | null {
  if (!t) return null;
  if (t.kind === "lowercase") return "lowercase is a one-way normalisation";
  if (t.kind === "enum") {
    const seen = new Set<string>();
    for (const e of t.table) {
      if (seen.has(e.canonical)) return `several system values map to '${e.canonical}'`;
      seen.add(e.canonical);
    }
  }
  if (t.kind === "date" && !(/%[Yy]/.test(t.format) && /%[mbB]/.test(t.format) && /%[de]/.test(t.format))) return "the date format lacks a year, month or day";
  return null;
}

/** Problems a rule has before it reaches the server. */
export function ruleProblems(rule: MappingRule, canonicalNames: string[]): string[] {
  const out: string[] = [];
  const kind = rule.transform?.kind ?? "copy";
  const a = arity(kind);
  if (rule.system.length !== a.system || rule.system.some((p) => !p.trim())) out.push("choose the system field");
  const canonical = rule.canonical ?? [];
  if (canonical.length !== a.canonical || canonical.some((c) => !c)) out.push(a.canonical === 2 ? "choose both canonical fields" : "choose the canonical field");
  for (const c of canonical) if (c && !canonicalNames.includes(c)) out.push(`'${c}' is not in the canonical schema`);
  return out;
}

/** Canonical fields mapped by more than one rule (the server reads the last one). */
export function duplicateTargets(m: Mapping): string[] {
  const count = new Map<string, number>();
  for (const r of m.rules) for (const c of r.canonical ?? []) count.set(c, (count.get(c) ?? 0) + 1);
  return [...count].filter(([, n]) => n > 1).map(([c]) => c);
}

/** A check's problems, by the index of the rule each concerns. */
export function problemsByRule(problems: PathProblem[]): Map<number, PathProblem[]> {
  const out = new Map<number, PathProblem[]>();
  for (const p of problems) out.set(p.rule, [...(out.get(p.rule) ?? []), p]);
  return out;
}

/**
 * The problems to show next to rule `index`: those the check found for it, as long as the rule
 * still reads the path (a path edited since is no longer flagged). After the rules were edited
 * (`stale`), rules may have moved, so a problem goes with whichever rule reads its path.
 */
export function problemsOfRule(problems: PathProblem[], index: number, rule: Pick<MappingRule, "system">, stale: boolean): PathProblem[] {
  return problems.filter((p) => rule.system.includes(p.path) && (p.rule === index || stale));
}

/** What a check found, in a sentence. */
export function checkSummary(c: MappingCheck, system: string): string {
  if (c.sample_count === 0) return `${system} returned no records to check the paths against.`;
  const samples = `${c.sample_count} sample ${c.sample_count === 1 ? "record" : "records"}`;
  if (c.problems.length === 0) return `Every path finds a value in at least one of ${samples} of ${system}.`;
  const rules = problemsByRule(c.problems).size;
  return `${c.problems.length} ${c.problems.length === 1 ? "path matches" : "paths match"} none of ${samples} of ${system} (${rules} ${rules === 1 ? "connection" : "connections"}).`;
}

/**
 * What to say before saving a mapping whose last check found problems, or null when there is
 * nothing to warn of. `stale`: the mapping was edited after the check.
 */
export function saveWarning(c: MappingCheck | null, stale: boolean): string | null {
  if (!c || c.problems.length === 0) return null;
  const one = c.problems.length === 1;
  const n = `${c.problems.length} ${one ? "path that matches" : "paths that match"}`;
  return stale
    ? `The last check, before your latest edits, found ${n} no record of the system. Check again, or save anyway.`
    : `The check found ${n} no record of the system: those fields would read as missing. Save anyway?`;
}

/** A rule in a few words: "hire_date → hire_date (date)". */
export function describeRule(r: MappingRule): string {
  const from = r.system.join(" + ") || "(constant)";
  const to = (r.canonical ?? []).join(" + ") || "(written only)";
  const kind = r.transform?.kind ?? "copy";
  return `${from} → ${to}${kind === "copy" ? "" : ` (${kind})`}`;
}

/** What a draft changes in a saved mapping, rule by rule: a rule is known by its system paths and canonical fields. */
export function ruleDiff(saved: Mapping | null | undefined, draft: Mapping): { added: MappingRule[]; removed: MappingRule[]; changed: [MappingRule, MappingRule][] } {
  const key = (r: MappingRule) => `${r.system.join("|")}=>${(r.canonical ?? []).join("|")}`;
  const before = new Map((saved?.rules ?? []).map((r) => [key(r), r]));
  const after = new Map(draft.rules.map((r) => [key(r), r]));
  const added = draft.rules.filter((r) => !before.has(key(r)));
  const removed = (saved?.rules ?? []).filter((r) => !after.has(key(r)));
  const changed: [MappingRule, MappingRule][] = [];
  for (const r of draft.rules) {
    const old = before.get(key(r));
    if (old && JSON.stringify(old) !== JSON.stringify(r)) changed.push([old, r]);
  }
  return { added, removed, changed };
}

/** Whether a field matches a search: its name, or its sample value, holds the text. */
export function fieldMatches(filter: string, name: string, sample?: unknown): boolean {
  const f = filter.trim().toLowerCase();
  if (!f) return true;
  if (name.toLowerCase().includes(f)) return true;
  return (typeof sample === "string" || typeof sample === "number") && String(sample).toLowerCase().includes(f);
}

/** A transform in a few words, for a table cell: "date %m/%d/%Y", "enum, 3 values". */
export function transformLabel(t: Transform | undefined): string {
  if (!t) return "copy";
  switch (t.kind) {
    case "date":
      return `date ${t.format}`;
    case "timestamp":
      return `timestamp ${t.tz}`;
    case "money_minor":
      return t.exponent === 2 ? "money in cents" : `money in minor units (10^${t.exponent})`;
    case "money_decimal":
      return `money, ${t.scale} decimals`;
    case "enum":
      return `enum, ${t.table.length} value${t.table.length === 1 ? "" : "s"}`;
    case "phone":
      return `phone, ${t.system_format === "e164" ? "E.164" : `national ${t.region}`}`;
    case "full_name":
      return "full name ↔ given + family";
    default:
      return t.kind;
  }
}

/**
 * A transform the samples suggest instead of the rule's own, when it differs in kind (or, for
 * dates, in format): the table offers it with why. Null when the rule already fits.
 */
export function betterTransform(current: Transform | undefined, suggested: { transform: Transform; why: string | null }): { transform: Transform; why: string | null } | null {
  const now = current ?? { kind: "copy" };
  if (suggested.transform.kind === "copy") return null;
  if (now.kind !== suggested.transform.kind) return suggested;
  if (now.kind === "date" && suggested.transform.kind === "date" && now.format !== suggested.transform.format) return suggested;
  return null;
}
