// The transform a connection should start with, read from the system's sample values and the
// canonical field's type: which date format (a day above 12 tells day-first from month-first),
// money in minor units or as a decimal, phones in E.164 or as typed nationally, and an enum
// table that pairs each value the system uses with the canonical code it means. Each
// suggestion says why, so a person can judge it. Pure.

import type { FieldDef, FieldType, Transform } from "../api/types";

export interface Suggested {
  transform: Transform;
  /** Why, in words; null for a plain copy. */
  why: string | null;
}

function strings(values: unknown[]): string[] {
  return values.filter((v): v is string => typeof v === "string").map((v) => v.trim()).filter(Boolean);
}

/** The strftime format of dates written like the samples, and why. */
export function dateFormatOf(values: unknown[]): { format: string; why: string } {
  const s = strings(values);
  if (s.length === 0) return { format: "%Y-%m-%d", why: "no sample to read: ISO dates assumed" };
  if (s.every((v) => /^\d{4}-\d{2}-\d{2}/.test(v))) return { format: "%Y-%m-%d", why: "the samples are ISO dates" };
  if (s.every((v) => /^\d{8}$/.test(v))) return { format: "%Y%m%d", why: "the samples are dates written YYYYMMDD" };
  if (s.every((v) => /^\d{1,2}\.\d{1,2}\.\d{4}$/.test(v))) return { format: "%d.%m.%Y", why: "the samples are dates written DD.MM.YYYY" };
  const slashed = s.filter((v) => /^\d{1,2}\/\d{1,2}\/\d{4}$/.test(v)).map((v) => v.split("/").map(Number));
  if (slashed.length === s.length) {
    if (slashed.some(([a]) => a! > 12)) return { format: "%d/%m/%Y", why: "a sample has a day above 12 first: day-first dates" };
    if (slashed.some(([, b]) => b! > 12)) return { format: "%m/%d/%Y", why: "a sample has a day above 12 second: month-first (US) dates" };
    return { format: "%m/%d/%Y", why: "month-first (US) dates assumed: no sample has a day above 12 to tell" };
  }
  return { format: "%Y-%m-%d", why: `the samples are in no date format known here (such as "${s[0]}"): ISO dates assumed` };
}

const squash = (v: string) => v.toLowerCase().replace(/[\s_-]+/g, "");
const initials = (code: string) =>
  code
    .split(/[\s_-]+/)
    .map((w) => w[0] ?? "")
    .join("");

/** The canonical code a system's enum value means, if one can be told. */
export function matchCode(value: unknown, codes: string[]): string | null {
  // Systems write a flag as 1 and 0 as often as true and false.
  if (value === 1 || value === 0) value = value === 1;
  if (typeof value === "boolean") {
    const on = codes.find((c) => /^(active|enabled|yes|true|on)$/i.test(c));
    const off = codes.find((c) => /^(inactive|terminated|disabled|no|false|off)$/i.test(c));
    return (value ? on : off) ?? null;
  }
  if (typeof value !== "string" && typeof value !== "number") return null;
  const v = squash(String(value));
  if (!v) return null;
  return codes.find((c) => squash(c) === v) ?? codes.find((c) => initials(c).length > 1 && initials(c) === v) ?? codes.find((c) => v.length >= 3 && squash(c).startsWith(v)) ?? null;
}

function enumTable(values: unknown[], codes: string[]): Suggested {
  const seen: (string | number | boolean)[] = [];
  for (const v of values) if ((typeof v === "string" || typeof v === "number" || typeof v === "boolean") && !seen.includes(v)) seen.push(v);
  const table: { system: string | number | boolean; canonical: string }[] = [];
  const unmatched: string[] = [];
  for (const v of seen) {
    const code = matchCode(v, codes);
    if (code) table.push({ system: v, canonical: code });
    else unmatched.push(String(v));
  }
  const covered = new Set(table.map((e) => e.canonical));
  for (const c of codes) if (!covered.has(c)) table.push({ system: c, canonical: c });
  const paired = seen.length - unmatched.length;
  const parts = [paired > 0 ? `${paired} sample value${paired === 1 ? "" : "s"} paired with codes` : "no sample value pairs with a code"];
  if (unmatched.length) parts.push(`no code found for ${unmatched.map((u) => `"${u}"`).join(", ")}: add them to the table`);
  return { transform: { kind: "enum", table } as Transform, why: parts.join("; ") };
}

/** The transform to start a connection of `path` to `def` with, from the system's values. */
export function suggestFromSamples(def: Pick<FieldDef, "type" | "values">, path: string, values: unknown[]): Suggested {
  const present = values.filter((v) => v !== null && v !== undefined && v !== "");
  const type: FieldType = def.type;
  switch (type) {
    case "date": {
      const { format, why } = dateFormatOf(present);
      return { transform: { kind: "date", format }, why };
    }
    case "timestamp": {
      const offset = strings(present).some((v) => /T.*(Z|[+-]\d\d:?\d\d)$/.test(v));
      return { transform: { kind: "timestamp", tz: "UTC", format: offset ? "%Y-%m-%dT%H:%M:%S%:z" : null }, why: offset ? "the samples carry their offset" : "local times, read as UTC: set the system's time zone" };
    }
    case "money": {
      const fractional = present.some((v) => (typeof v === "number" && !Number.isInteger(v)) || (typeof v === "string" && /\.\d/.test(v)));
      if (fractional) return { transform: { kind: "money_decimal", scale: 2 }, why: "the samples have decimals" };
      if (/cents|minor|pence|_cts/i.test(path)) return { transform: { kind: "money_minor", exponent: 2 }, why: "the name says minor units" };
      return { transform: { kind: "money_minor", exponent: 2 }, why: "whole numbers: read as cents. If they are whole currency units, choose money as a decimal" };
    }
    case "phone": {
      const s = strings(present);
      if (s.length && s.every((v) => v.startsWith("+"))) return { transform: { kind: "phone", region: "US", system_format: "e164" }, why: "the samples are in E.164 (+…)" };
      const national = s.every((v) => {
        const d = v.replace(/\D/g, "");
        return d.length === 10 || (d.length === 11 && d.startsWith("1"));
      });
      return { transform: { kind: "phone", region: "US", system_format: "national" }, why: national ? "ten-digit national numbers: US" : "national numbers: set their region" };
    }
    case "enum":
      return enumTable(present, def.values ?? []);
    default:
      return { transform: { kind: "copy" }, why: null };
  }
}
