// Pure helpers that turn API values into what a person reads. Sensitive values arrive from
// the API already masked ("••••"); these helpers recognise the mask and render it as such,
// and never try to recover what is behind it.

/**
 * The locale dates and numbers are written in: the browser's, when Intl knows it. A desktop
 * session started with LANG=C reports the language "C", which Intl refuses (RangeError).
 */
export const LOCALE: string = (() => {
  const wanted = typeof navigator !== "undefined" ? navigator.language : undefined;
  try {
    if (wanted && Intl.NumberFormat.supportedLocalesOf([wanted]).length > 0) return wanted;
  } catch {
    // An invalid tag: fall through to the default below.
  }
  return "en-US";
})();

/** The mask the API puts in place of a value the caller's role may not see. */
export const MASK = "••••";

export type Shown =
  | { kind: "masked"; text: string; label: string }
  | { kind: "null"; text: string; label: string }
  | { kind: "string"; text: string; label: string }
  | { kind: "number"; text: string; label: string }
  | { kind: "bool"; text: string; label: string }
  | { kind: "json"; text: string; label: string };

export function isMasked(v: unknown): boolean {
  return v === MASK;
}

/** Whether a JSON value holds the mask anywhere inside it (a request body with a hidden field). */
export function containsMasked(v: unknown): boolean {
  if (v === MASK) return true;
  if (Array.isArray(v)) return v.some(containsMasked);
  if (v && typeof v === "object") return Object.values(v).some(containsMasked);
  return false;
}

/** How to show a JSON value: its text, a kind for styling, and a label for screen readers. */
export function showValue(v: unknown): Shown {
  if (v === MASK) return { kind: "masked", text: MASK, label: "hidden: sensitive value" };
  if (v === null || v === undefined) return { kind: "null", text: "—", label: "empty" };
  if (typeof v === "string") return { kind: "string", text: v, label: v === "" ? "empty text" : v };
  if (typeof v === "number") return { kind: "number", text: String(v), label: String(v) };
  if (typeof v === "boolean") return { kind: "bool", text: v ? "true" : "false", label: v ? "true" : "false" };
  const text = JSON.stringify(v);
  return { kind: "json", text, label: text };
}

/**
 * A money value in its currency, "$80,500.00" for ("80500", "USD") in en-US. The canonical
 * value is a decimal string; it is formatted from its text, so no digit is lost to floating
 * point. Null when it is not a decimal or the currency is not an ISO 4217 code Intl knows.
 */
export function formatMoney(v: unknown, currency: string | null | undefined, locale: string = LOCALE): string | null {
  if (!currency || !/^[A-Z]{3}$/.test(currency)) return null;
  const text = typeof v === "number" ? String(v) : typeof v === "string" ? v.trim() : null;
  if (text === null || !/^-?\d+(\.\d+)?$/.test(text)) return null;
  try {
    // Intl formats a decimal string exactly (ES2023); the cast covers older lib typings.
    return new Intl.NumberFormat(locale, { style: "currency", currency }).format(text as unknown as number);
  } catch {
    return null;
  }
}

/** Whether two JSON values are equal (for highlighting which systems agree). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** "3 s", "4 min", "2 h", "5 d": a coarse age for tables. */
export function formatAge(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  if (seconds < 60) return `${Math.floor(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h`;
  return `${Math.floor(seconds / 86400)} d`;
}

/** Seconds between an RFC 3339 time and now (NaN when unparsable). */
export function ageSeconds(iso: string, now: number = Date.now()): number {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? Number.NaN : (now - t) / 1000;
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(LOCALE, {
    year: "numeric",
    month: "short",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

/** A compact time for table cells: "Nov 22, 14:05:09" (the year when not this year). */
export function formatShortTime(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(LOCALE, {
    year: d.getFullYear() === now.getFullYear() ? undefined : "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hour12: false,
  });
}

export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  return n.toLocaleString("en-US");
}

/** snake_case or kebab-case to "Sentence case". */
/** "1 write", "3 writes": a count with its noun (`many` defaults to the noun plus "s"). */
export function plural(n: number, one: string, many: string = `${one}s`): string {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

export function humanize(s: string): string {
  const t = s.replace(/[_-]+/g, " ").trim();
  return t.charAt(0).toUpperCase() + t.slice(1);
}

/**
 * Turns what a steward typed into a canonical value of the field's type: numbers and booleans
 * as JSON numbers and booleans, every other canonical type (string, date, money, phone, enum,
 * ...) as a string. With no known type, JSON when it parses, else the text. Blank is null.
 */
export function parseTyped(text: string, fieldType?: string): unknown {
  const t = text.trim();
  if (t === "") return null;
  if (fieldType === "number") {
    const n = Number(t);
    return Number.isFinite(n) ? n : text;
  }
  if (fieldType === "bool") {
    if (/^(true|yes)$/i.test(t)) return true;
    if (/^(false|no)$/i.test(t)) return false;
    return text;
  }
  if (fieldType !== undefined) return t;
  try {
    return JSON.parse(t);
  } catch {
    return t;
  }
}

/**
 * Labels for a time axis's ticks (seconds since the epoch): hours and minutes within two days,
 * else the day. Short on purpose, so neighbouring labels never run into each other.
 */
export function timeTicks(ticks: number[], spanSecs: number, locale: string = LOCALE): string[] {
  const fmt =
    spanSecs <= 2 * 86_400
      ? new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit", hour12: false })
      : new Intl.DateTimeFormat(locale, { month: "short", day: "numeric" });
  return ticks.map((t) => fmt.format(new Date(t * 1000)));
}
