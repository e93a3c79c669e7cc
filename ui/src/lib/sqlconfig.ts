// The `sql` connector's config as the Systems form edits it: a PostgreSQL database or an SQLite
// file, each object a table or a view (with the statements that write it). The shapes are the
// generated ones (`SqlConfig`, `SqlObject`, `ChangeCapture` in api/schema.d.ts, from
// src/connectors/sql/config.rs), so a key the engine renames or removes, a new required key or a
// new kind of change capture fails `tsc` here, in the form or in the tests. The checks mirror
// `SqlConfig::parse`, so the form says inline what a save would be refused for; the server still
// validates every save and names the key at fault. The password is never in the config:
// `password_secret` names a keychain entry.

import type { ChangeCapture, ReconcileConfig, SqlConfig, SqlObject } from "../api/types";
import { prune, reconcileSchedule, type ReconcileSchedule, type SecretRef } from "./restconfig";

/** The form edits the generated shape as it is: there is no auth draft, only a secret's name. */
export type SqlForm = SqlConfig;

/** The engine's defaults and ranges (config.rs). */
export const DEFAULT_CONNECT_TIMEOUT_SECS = 5;
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 10_000;

/** What the keychain entry `password_secret` names is, for people. */
export const PASSWORD_SECRET_PURPOSE = "Database password";

/** How changes made in the database reach the engine, for people. Every kind the engine takes is listed: a new one fails `tsc` here. */
export const CHANGE_CAPTURE_LABELS: Record<ChangeCapture, string> = {
  none: "None (polling)",
  table: "Change table (triggers)",
  notify: "NOTIFY (PostgreSQL)",
};

/** A few words each, for the Systems list. */
const CAPTURE_SHORT: Record<ChangeCapture, string> = { none: "none", table: "change table", notify: "NOTIFY" };

export type Dialect = "postgres" | "sqlite";

/** Which database a URL names, by its scheme (`SqlConfig::dialect`). */
export function sqlDialect(url: string | null | undefined): Dialect | null {
  const scheme = (url ?? "").split(":")[0]!.toLowerCase();
  return scheme === "postgres" || scheme === "postgresql" ? "postgres" : scheme === "sqlite" ? "sqlite" : null;
}

/** Why the engine would refuse the URL, in its order: not a URL, a password in it, another database, no host. */
export function sqlUrlProblem(url: string | null | undefined): string | null {
  const u = url?.trim() ?? "";
  if (u === "") return null;
  let parsed: URL;
  try {
    parsed = new URL(u);
  } catch {
    return "Not a URL, e.g. postgres://concord@db.internal:5432/hr or sqlite:///var/lib/hr.db.";
  }
  if (parsed.password !== "") return "The URL holds a password, which the engine refuses: leave it out and store it in the keychain under the password's name below.";
  const dialect = sqlDialect(u);
  if (!dialect) return "Use postgres://user@host:port/db or sqlite:///path/file.db.";
  if (dialect === "postgres" && parsed.hostname === "") return "Name the database host: postgres://user@host:port/db.";
  return null;
}

/** Why the engine would refuse the password's name: an SQLite file takes no password. */
export function passwordSecretProblem(c: Pick<SqlConfig, "url" | "password_secret">): string | null {
  return sqlDialect(c.url) === "sqlite" && c.password_secret?.trim() ? "SQLite files take no password: leave this blank." : null;
}

/** Why the engine would refuse the connect timeout. */
export function connectTimeoutProblem(secs: number | null | undefined): string | null {
  return secs === undefined || secs === null || Number.isNaN(secs) || (Number.isFinite(secs) && secs > 0) ? null : "A positive number of seconds.";
}

/** The URL with any password taken out, for showing (the engine refuses one, but a stored config is shown as it is otherwise). */
export function displayUrl(url: string | null | undefined): string {
  const u = url ?? "";
  try {
    const parsed = new URL(u);
    if (parsed.password === "") return u;
    parsed.password = "";
    return parsed.href;
  } catch {
    return u.replace(/^([^:/?#]+:\/\/[^:@/?#]*):[^@]*@/, "$1@");
  }
}

/** A plain SQL name (letters, digits, _; at most 63 each), or `schema.name` when `qualified` (`valid_identifier`). */
export function validIdentifier(name: string, qualified: boolean): boolean {
  const part = (p: string) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(p) && p.length <= 63;
  const dot = name.indexOf(".");
  if (dot < 0) return part(name);
  return qualified && part(name.slice(0, dot)) && part(name.slice(dot + 1));
}

/** An object is read from a table (written with generated statements) or a view (written with its own). */
export type RelationKind = "table" | "view";

export function relationKind(o: SqlObject): RelationKind {
  return o.view !== undefined && o.view !== null && (o.table === undefined || o.table === null) ? "view" : "table";
}

/** The table or view read. */
export function relationOf(o: SqlObject): string {
  return o.table ?? o.view ?? "";
}

/**
 * The object read from a table or a view of the same name instead. A table takes no statements
 * and a view no change capture (the engine refuses both), so those go; a view's statements are
 * then asked for.
 */
export function withRelationKind(o: SqlObject, kind: RelationKind): SqlObject {
  const { table: _t, view: _v, insert, update, delete: del, ...rest } = o;
  const name = relationOf(o);
  if (kind === "table") return { ...rest, table: name };
  return { ...rest, view: name, insert, update, delete: del, change_capture: "none" };
}

/** What is wrong with one object, per key, as the server would refuse it (`SqlConfig::parse`). */
export type SqlObjectProblems = Partial<Record<keyof SqlObject, string>>;

export function sqlObjectProblems(o: SqlObject | undefined, url: string): SqlObjectProblems {
  if (!o) return {};
  const out: SqlObjectProblems = {};
  const has = (v: string | null | undefined) => v !== undefined && v !== null && v.trim() !== "";
  const kind = relationKind(o);
  if (has(o.table) && has(o.view)) out.table = "Name either a table or a view, not both.";
  else if (!has(o.table) && !has(o.view)) out[kind] = kind === "table" ? "Name the table, e.g. employees or hr.employees." : "Name the view.";
  const plain = "Not a plain SQL name: letters, digits and _.";
  for (const [k, qualified] of [["table", true], ["view", true], ["key_column", false], ["version_column", false], ["updated_at_column", false]] as const) {
    const v = o[k];
    if (has(v) && !validIdentifier(v!.trim(), qualified)) out[k] ??= qualified ? `${plain} schema.${k} allowed.` : plain;
  }
  if (!has(o.key_column)) out.key_column = "Required: the column identifying a record.";
  if (o.page_size !== undefined && !Number.isNaN(o.page_size) && !(Number.isInteger(o.page_size) && o.page_size >= 1 && o.page_size <= MAX_PAGE_SIZE)) {
    out.page_size = `A whole number from 1 to ${MAX_PAGE_SIZE}.`;
  }
  const capture = o.change_capture ?? "none";
  if (kind === "view") {
    if (!has(o.insert)) out.insert = "A view needs an insert statement.";
    if (!has(o.update)) out.update = "A view needs an update statement.";
    if (capture !== "none") out.change_capture = "Triggers capture changes on tables only: poll the view by its updated-at column.";
  } else if (has(o.insert) || has(o.update) || has(o.delete)) {
    out.insert = "Statements are for views; a table is written directly.";
  }
  if (capture === "notify" && sqlDialect(url) !== "postgres") out.change_capture ??= "NOTIFY is PostgreSQL's LISTEN/NOTIFY; use the change table with SQLite.";
  return out;
}

/** The `:name` placeholders of a statement, outside quotes and not `::casts` (as write.rs reads them). */
export function placeholders(statement: string | null | undefined): string[] {
  const s = statement ?? "";
  const out: string[] = [];
  let quote: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === ":" && s[i + 1] !== ":" && s[i - 1] !== ":") {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i + 1));
      if (m && !out.includes(m[0])) out.push(m[0]);
    }
  }
  return out;
}

/** What a view's update and delete need to find their row: the key column's placeholder. */
export function statementHint(o: SqlObject, k: "insert" | "update" | "delete"): string | null {
  const key = o.key_column?.trim();
  const stmt = o[k];
  if (!stmt?.trim() || !key || k === "insert") return null;
  return placeholders(stmt).includes(key) ? null : `Without :${key} the statement does not name the record's row.`;
}

/** What a new object starts with: a table named after it, keyed by id. */
export function newSqlObject(objects: Record<string, SqlObject>): SqlObject {
  return { table: Object.keys(objects).length === 0 ? "employees" : "", key_column: "id" };
}

/** What a new system's form starts with. */
export function newSqlForm(): SqlForm {
  return { url: "", objects: { employee: { table: "employees", key_column: "id" } } };
}

/**
 * The form as the config the server gets: blank optional values left out (so the engine's
 * defaults apply). Everything else is kept as it is, including keys this console does not know.
 */
export function toSqlConfig(f: SqlForm): SqlConfig {
  const { objects, poll, reconcile, ...rest } = f;
  return prune<SqlConfig>({
    ...rest,
    objects: Object.fromEntries(Object.entries(objects).map(([name, o]) => [name, prune(o)])),
    poll: poll && prune(poll),
    reconcile: reconcile && prune(reconcile),
  });
}

/** A saved config in the form's shape (a copy: editing the form leaves the saved one alone). */
export function toSqlForm(c: SqlConfig): SqlForm {
  return structuredClone(c);
}

/** A stored system's config as the `sql` connector's; an absent or malformed one reads as empty. */
export function sqlConfigOf(config: unknown): SqlConfig {
  const c: Partial<{ url: unknown; objects: unknown }> = config && typeof config === "object" && !Array.isArray(config) ? config : {};
  return {
    ...c,
    url: typeof c.url === "string" ? c.url : "",
    objects: c.objects && typeof c.objects === "object" && !Array.isArray(c.objects) ? c.objects : {},
  } as SqlConfig;
}

/** The keychain entry a config refers to: the database password. */
export function sqlSecretRefs(c: Pick<SqlConfig, "password_secret">): SecretRef[] {
  const name = c.password_secret?.trim();
  return name ? [{ name, purposes: [PASSWORD_SECRET_PURPOSE] }] : [];
}

/** The objects whose changes triggers capture (a table with change capture), which an install covers. */
export function capturedObjects(c: Pick<SqlConfig, "objects">): string[] {
  return Object.entries(c.objects)
    .filter(([, o]) => (o.change_capture ?? "none") !== "none" && relationKind(o) === "table")
    .map(([n]) => n);
}

/** Every object's change capture, for the Systems list ("none" when no object captures). */
export function describeCapture(c: Pick<SqlConfig, "objects">): string {
  const entries = Object.entries(c.objects).map(([n, o]) => [n, o.change_capture ?? "none"] as const);
  if (entries.every(([, k]) => k === "none")) return "none";
  return entries.map(([n, k]) => `${n}: ${CAPTURE_SHORT[k]}`).join(", ");
}

/** Seconds between polls of a sql system whose config sets none (the engine's default). */
export const DEFAULT_SQL_POLL_SECS = 30;

/** The config as the reconciliation helpers read it: always polled (every 30 s unless set), never by webhook. */
export function sqlReconcileInputs(c: Pick<SqlConfig, "poll" | "reconcile">): { poll: { interval_secs: number }; webhooks: null; reconcile: ReconcileConfig | null | undefined } {
  return { poll: c.poll ?? { interval_secs: DEFAULT_SQL_POLL_SECS }, webhooks: null, reconcile: c.reconcile };
}

/**
 * When a sql system is reconciled on a schedule, as the engine decides it: as a polled system
 * without webhooks, except that when every object has a change table, deletes reach the engine
 * from it and nothing is scheduled by default.
 */
export function sqlSchedule(c: Pick<SqlConfig, "poll" | "reconcile" | "objects">): ReconcileSchedule {
  const s = reconcileSchedule(sqlReconcileInputs(c));
  const allCaptured = Object.values(c.objects).every((o) => o.change_capture === "table");
  return s.source === "default" && allCaptured ? { ...s, everySecs: null, source: "none" } : s;
}

/** How changes reach the engine, in a few words: polling, woken by NOTIFY where PostgreSQL triggers send it. */
export function sqlChangesBy(c: Pick<SqlConfig, "url" | "poll" | "objects">): string {
  const notified = sqlDialect(c.url) === "postgres" && capturedObjects(c).length > 0;
  const every = c.poll ? `${c.poll.interval_secs} s` : `${DEFAULT_SQL_POLL_SECS} s (default)`;
  return `polling every ${every}${notified ? " + NOTIFY" : ""}`;
}
