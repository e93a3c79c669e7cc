// Reading a system path (a mapping rule's `system` side) in a sample record, as the engine reads
// it (src/path.rs), so the mapper's preview shows what the system holds at paths with array
// selectors too. Reading only: writing, and explaining a miss, stay with the engine (the
// mapping preview and POST /api/mappings/check). The console never refuses a path the engine
// may take; an unreadable one simply finds nothing here.
//
// Grammar: `/` separates segments (`address/city`); a segment is a key with at most one
// selector, `[0]` (an index) or `[type=work]` (the element whose member, as text, equals
// `work`); after a selector `.` separates too (`emails[type=work].value`), anywhere else a `.`
// is part of the key; a bare all-digit segment indexes an array.

type Step = { key: string } | { index: number } | { select: string; equals: string };

/** Hints for the path inputs. */
export const PATH_HINT = "Nested: contact/email. Array element: emails[type=work].value or phoneNumbers[0].value.";

/** The steps of a path, or null when the engine would refuse it (the engine's message says why). */
export function parsePath(text: string): Step[] | null {
  if (text === "") return null;
  const steps: Step[] = [];
  let at = 0;
  for (;;) {
    const rest = text.slice(at);
    const cut = rest.search(/[/[]/);
    const keyLen = cut < 0 ? rest.length : cut;
    const key = rest.slice(0, keyLen);
    if (key === "") return null;
    steps.push({ key });
    at += keyLen;
    const after = text.slice(at);
    if (after.startsWith("[")) {
      const close = after.indexOf("]");
      if (close < 0) return null;
      const inside = after.slice(1, close);
      const eq = inside.indexOf("=");
      if (eq > 0) steps.push({ select: inside.slice(0, eq), equals: inside.slice(eq + 1) });
      else if (/^\d+$/.test(inside) && Number.isSafeInteger(Number(inside))) steps.push({ index: Number(inside) });
      else return null;
      at += close + 1;
      const next = text.charAt(at);
      if (next === "") break;
      if (next === "/" || next === ".") at += 1;
      else return null;
    } else if (after.startsWith("/")) {
      at += 1;
    } else {
      break;
    }
  }
  return steps;
}

/** A scalar as the engine compares it with a selector's value. */
function asText(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return null;
}

function stepGet(container: unknown, step: Step): unknown {
  if ("key" in step) {
    if (Array.isArray(container)) return /^\d+$/.test(step.key) ? container[Number(step.key)] : undefined;
    if (container && typeof container === "object") return Object.prototype.hasOwnProperty.call(container, step.key) ? (container as Record<string, unknown>)[step.key] : undefined;
    return undefined;
  }
  if (!Array.isArray(container)) return undefined;
  if ("index" in step) return container[step.index];
  return container.find((item) => item && typeof item === "object" && !Array.isArray(item) && asText((item as Record<string, unknown>)[step.select]) === step.equals);
}

/** The value at `path` in `record`, or undefined when the path finds nothing (or cannot be read). */
export function readPath(record: Record<string, unknown> | null | undefined, path: string): unknown {
  const steps = parsePath(path);
  if (!record || !steps) return undefined;
  let current: unknown = record;
  for (const s of steps) {
    current = stepGet(current, s);
    if (current === undefined) return undefined;
  }
  return current;
}

/** Nested record fields as `a/b` paths with their values. */
export function flatten(obj: Record<string, unknown>, prefix = ""): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const [k, v] of Object.entries(obj)) {
    const path = prefix ? `${prefix}/${k}` : k;
    if (v && typeof v === "object" && !Array.isArray(v)) out.push(...flatten(v as Record<string, unknown>, path));
    else out.push([path, v]);
  }
  return out;
}
