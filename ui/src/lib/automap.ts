// Auto-map: which system field holds which canonical field, suggested from two kinds of
// evidence, for a person to review before anything is connected:
// - the names: tokens of the system path and of the canonical field, with the synonyms HR
//   systems use (emp_no ≈ employee_number, surname ≈ family_name, zip ≈ postal_code);
// - the samples: how many of a system field's sample values Concord already holds in that
//   canonical field (compared in a normal form, so "(415) 555-0101" meets "+14155550101" and
//   "03/15/2021" meets "2021-03-15"), and whether the values have the field's shape at all.
// Each canonical field and each system path is suggested at most once, best pairs first, and
// fields the draft already yields are left alone. Pure: the page supplies the samples.

import type { FieldDef, MappingRule, Transform } from "../api/types";
import { isMasked } from "./format";
import { matchCode, suggestFromSamples } from "./suggest";
import { readPath } from "./syspath";

export interface Suggestion {
  field: string;
  path: string;
  /** 0 to 1. */
  score: number;
  /** Why, in words: "the names match (emp_no ≈ employee_number)", "12 of 14 values are held". */
  reasons: string[];
  transform: Transform;
  /** Why that transform, when it is not a plain copy. */
  transformWhy: string | null;
  /** The first sample value, as the system holds it. */
  sample: unknown;
}

/** Below this a pair is not suggested; at or above `CONFIDENT` it is ticked in the review. */
export const SUGGEST_AT = 0.45;
export const CONFIDENT = 0.6;

// Words HR systems spell differently, each mapped to one form.
const SYNONYMS: Record<string, string> = {
  first: "given", fname: "given", forename: "given", givenname: "given",
  last: "family", lname: "family", surname: "family", familyname: "family",
  mail: "email", e: "", emailaddress: "email",
  tel: "phone", telephone: "phone", cell: "phone", phonenumber: "phone",
  position: "title", jobtitle: "title",
  dept: "department", division: "department",
  salary: "pay", wage: "pay", compensation: "pay", rate: "pay", cents: "pay", amount: "pay",
  hired: "hire", start: "hire", joined: "hire",
  emp: "employee", worker: "employee", staff: "employee", personnel: "employee",
  no: "number", num: "number", nr: "number", id: "number",
  state: "region", province: "region", county: "region",
  ccy: "currency", cur: "currency",
  supervisor: "manager", boss: "manager",
  dob: "birth", born: "birth", birthdate: "birth",
  zip: "postal", postcode: "postal", zipcode: "postal",
  street: "line", street1: "line1", street2: "line2", address1: "line1", address2: "line2",
  terminated: "termination", end: "termination", leaving: "termination",
  freq: "frequency", period: "frequency",
  routing: "routing", aba: "routing",
  acct: "account",
  pct: "percent", percentage: "percent",
};

// Tokens that say little on their own.
const WEAK = new Set(["date", "name", "work", "home", "address", "value", "type", "info", "data", "code", "the", "of"]);

/** A path or field name as normalised tokens: "homeAddress/zipCode" → ["home", "address", "postal"]. */
export function tokens(name: string): string[] {
  const words = name
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
  const joined = words.join("");
  const said = joined in SYNONYMS && SYNONYMS[joined] ? [SYNONYMS[joined]!] : words.map((w) => (w in SYNONYMS ? SYNONYMS[w]! : w));
  // "street1" and "line1" alike: a word's number is a token of its own.
  return said.flatMap((w) => (/^[a-z]+\d+$/.test(w) ? [w.replace(/\d+$/, ""), w.replace(/^[a-z]+/, "")] : [w])).filter(Boolean);
}

/** How alike two names are, 0 to 1: shared tokens (weak ones count less), the last path segment first. */
export function nameScore(path: string, field: string): number {
  const segments = path.split("/");
  const last = segments[segments.length - 1] ?? path;
  const f = tokens(field);
  const weight = (t: string) => (WEAK.has(t) ? 0.3 : 1);
  const score = (p: string[]) => {
    if (p.length === 0 || f.length === 0) return 0;
    const fs = new Set(f);
    const ps = new Set(p);
    let shared = 0;
    for (const t of ps) if (fs.has(t)) shared += weight(t);
    const total = [...ps].reduce((n, t) => n + weight(t), 0) + [...fs].reduce((n, t) => n + weight(t), 0);
    return total === 0 ? 0 : (2 * shared) / total;
  };
  // The last segment says most; the parents add what they say (home_address/zip ≈ home_postal_code).
  const whole = score(tokens(path));
  return Math.max(whole, 0.8 * score(tokens(last)) + 0.2 * whole);
}

/** A value in a form both sides share: lowercased text, digits of a phone, a date as YYYY-MM-DD. */
export function normalValue(v: unknown): string | null {
  if (v === null || v === undefined || isMasked(v)) return null;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (typeof v !== "string") return null;
  const s = v.trim();
  if (!s) return null;
  const iso = /^(\d{4})-(\d{2})-(\d{2})/.exec(s);
  if (iso) return `${iso[1]}-${iso[2]}-${iso[3]}`;
  const us = /^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$/.exec(s);
  if (us) {
    const [a, b] = [Number(us[1]), Number(us[2])];
    const [m, d] = s.includes(".") || a > 12 ? [b, a] : [a, b];
    return `${us[3]}-${String(m).padStart(2, "0")}-${String(d).padStart(2, "0")}`;
  }
  if (/^-?\d+(\.\d+)?$/.test(s)) return String(Number(s));
  if (/^\+?[\d\s().-]{7,}$/.test(s) && /\d{3}/.test(s)) {
    const digits = s.replace(/\D/g, "");
    return digits.length === 11 && digits.startsWith("1") ? digits.slice(1) : digits;
  }
  return s.toLowerCase().replace(/[\s_-]+/g, " ");
}

/** Whether values have the shape a field of this type holds: 1 yes, 0 no, 0.5 cannot tell. */
export function shapeScore(def: FieldDef, values: unknown[]): number {
  const present = values.filter((v) => v !== null && v !== undefined && v !== "");
  if (present.length === 0) return 0.5;
  const share = (ok: (v: unknown) => boolean) => present.filter(ok).length / present.length;
  const str = (v: unknown) => (typeof v === "string" ? v.trim() : "");
  switch (def.type) {
    case "date":
      return share((v) => /^\d{4}-\d{2}-\d{2}$|^\d{1,2}[/.]\d{1,2}[/.]\d{4}$|^\d{8}$/.test(str(v)));
    case "timestamp":
      return share((v) => /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/.test(str(v)));
    case "money":
    case "number":
      return share((v) => typeof v === "number" || /^-?\d+(\.\d+)?$/.test(str(v)));
    case "email":
      return share((v) => /^[^@\s]+@[^@\s]+$/.test(str(v)));
    case "currency":
      return share((v) => /^[A-Za-z]{3}$/.test(str(v)));
    case "phone":
      return share((v) => /^\+?[\d\s().-]{7,}$/.test(str(v)));
    case "bool":
      return share((v) => typeof v === "boolean" || /^(true|false|yes|no|0|1)$/i.test(str(v)));
    case "enum": {
      // Values that pair with a code fit; other short words may be codes of the system's own.
      const paired = share((v) => matchCode(v, def.values ?? []) !== null);
      return Math.max(paired, share((v) => typeof v === "string" && v.length <= 24) * 0.3);
    }
    case "string":
      // Text fields take anything written as text; a number is a weak fit.
      return share((v) => typeof v === "string") * 0.5 + 0.25;
    default:
      return 0.5;
  }
}

export interface AutoMapInput {
  canonical: FieldDef[];
  /** Each system path and its sample values (from the system's first page). */
  systemFields: [string, unknown][];
  samples: Record<string, unknown>[];
  /** The golden values Concord holds (newest records), to compare values with. */
  golden: Record<string, unknown>[];
  /** The draft's rules: the fields they yield and the paths they read are not suggested again. */
  rules: MappingRule[];
}

/** Suggested connections, best first, each field and path at most once. */
export function autoMap(input: AutoMapInput): Suggestion[] {
  const taken = new Set(input.rules.flatMap((r) => r.canonical ?? []));
  const used = new Set(input.rules.flatMap((r) => r.system));
  const heldValues = new Map<string, Set<string>>();
  for (const def of input.canonical) {
    const set = new Set<string>();
    for (const g of input.golden) {
      const n = normalValue(g[def.name]);
      if (n !== null) set.add(n);
    }
    heldValues.set(def.name, set);
  }
  const candidates: Suggestion[] = [];
  for (const [path, first] of input.systemFields) {
    if (used.has(path)) continue;
    const values = input.samples.length ? input.samples.map((s) => readPath(s, path)) : [first];
    if (values.every((v) => v !== null && typeof v === "object")) continue;
    const normal = [...new Set(values.map(normalValue).filter((v): v is string => v !== null))];
    for (const def of input.canonical) {
      if (taken.has(def.name)) continue;
      const names = nameScore(path, def.name);
      const held = heldValues.get(def.name)!;
      const found = normal.filter((v) => held.has(v)).length;
      // A few distinct values (statuses, currencies) found among many records say less than
      // e-mail addresses found one for one.
      const distinct = held.size >= 5 && normal.length >= 3 ? 1 : 0.6;
      const valueScore = normal.length ? (found / normal.length) * distinct : 0;
      const shape = shapeScore(def, values);
      let score = 1 - (1 - names) * (1 - valueScore);
      if (shape < 0.5) score *= 0.4 + shape;
      if (score < SUGGEST_AT) continue;
      const reasons: string[] = [];
      if (names >= 0.5) reasons.push(`the names match (${path} ≈ ${def.name})`);
      if (found > 0) reasons.push(`${found} of ${normal.length} sample values are held in ${def.name}`);
      if (shape < 0.5) reasons.push(`but only some values look like a ${def.type}`);
      const suggested = suggestFromSamples(def, path, values);
      candidates.push({ field: def.name, path, score: Math.round(score * 100) / 100, reasons, transform: suggested.transform, transformWhy: suggested.why, sample: first });
    }
  }
  candidates.sort((a, b) => b.score - a.score || a.field.localeCompare(b.field));
  const out: Suggestion[] = [];
  const fields = new Set<string>();
  const paths = new Set<string>();
  for (const c of candidates) {
    if (fields.has(c.field) || paths.has(c.path)) continue;
    fields.add(c.field);
    paths.add(c.path);
    out.push(c);
  }
  return out;
}
