// The `rest` connector's declarative config as the Systems form edits it. The shapes are the
// generated ones (`RestConfig` and its parts in api/schema.d.ts, from src/connectors/rest.rs), so
// a key the engine renames or removes, a new required key, or a new auth type, pagination
// style, incremental style or concurrency style fails `tsc` here, in the page or in the tests.
// The server still validates every save and names the key at fault.

import type {
  Auth,
  AuthType,
  Concurrency,
  ConcurrencyStyle,
  Endpoint,
  Incremental,
  IncrementalStyle,
  Lookup,
  LookupStyle,
  ObjectEndpoints,
  Pagination,
  PaginationStyle,
  PollConfig,
  ReconcileConfig,
  RestConfig,
  WebhookConfig,
} from "../api/types";

type AllKeys<T> = T extends unknown ? keyof T : never;
/** One auth type's variant. */
export type AuthOf<T extends AuthType> = Extract<Auth, { type: T }>;
/** The keys one auth type takes, besides `type`. */
export type AuthKeyOf<T extends AuthType> = Exclude<keyof AuthOf<T>, "type">;
/** Every key some auth type takes, besides `type`. */
export type AuthKey = Exclude<AllKeys<Auth>, "type">;

/**
 * The form's auth: the chosen type and what was typed for any type, so switching types and back
 * keeps the values. `toAuth` turns it into the chosen type's `Auth`.
 */
export type AuthDraft = { type: AuthType } & { [K in AuthKey]?: string | null };

/** The config as the form edits it: the generated shape, with the auth as a draft. */
export type RestForm = Omit<RestConfig, "auth"> & { auth: AuthDraft };

/** Whether a key of an auth type must be set: "optional" where the generated type says `?`. */
type Need<T extends AuthType, K extends AuthKeyOf<T>> = object extends Pick<AuthOf<T>, K> ? "optional" : "required";

/**
 * Which keys each auth type takes (the server refuses others: `deny_unknown_fields`), and which
 * of them it needs. Written out in full, so a key the engine adds to or removes from an auth
 * type, or makes optional or required, fails `tsc` here.
 */
const AUTH_FIELDS: { [T in AuthType]: { [K in AuthKeyOf<T>]-?: Need<T, K> } } = {
  none: {},
  api_key: { header: "required", secret: "required", prefix: "optional" },
  bearer: { secret: "required" },
  basic: { username: "required", secret: "required" },
  oauth2_client_credentials: { token_url: "required", client_id: "required", secret: "required", scope: "optional" },
};

/** The keys each auth type takes, besides `type`. */
export const AUTH_KEYS = Object.fromEntries(Object.entries(AUTH_FIELDS).map(([t, f]) => [t, Object.keys(f)])) as { [T in AuthType]: AuthKeyOf<T>[] };

/** Whether an auth type takes a key (which inputs the form shows). */
export function authTakes(type: AuthType, key: AuthKey): boolean {
  return (AUTH_KEYS[type] as readonly string[]).includes(key);
}

const KNOWN_AUTH_KEYS = new Set<string>(Object.values(AUTH_KEYS).flat());

/** The keys the chosen auth type needs that are blank in the draft (the server would refuse the config). */
export function authMissing(d: AuthDraft): AuthKey[] {
  const fields: Partial<Record<AuthKey, "required" | "optional">> = AUTH_FIELDS[d.type];
  return AUTH_KEYS[d.type].filter((k) => fields[k] === "required" && !d[k]?.trim());
}

/** Why a base URL cannot work, for its hint (none while only the scheme is typed: `required` and the server say so). */
export function baseUrlProblem(url: string | null | undefined): string | null {
  const u = url?.trim() ?? "";
  if (u === "" || u === "https://" || u === "http://") return null;
  let parsed: URL;
  try {
    parsed = new URL(u);
  } catch {
    return "Not a URL, e.g. https://api.example.com/v1.";
  }
  return parsed.protocol === "http:" || parsed.protocol === "https:" ? null : "Use an http:// or https:// URL.";
}

/** Whether a value is blank: the engine reads a left-out optional key as its default. */
function isBlank(v: unknown): boolean {
  return v === "" || v === null || v === undefined || (typeof v === "number" && Number.isNaN(v));
}

/**
 * `o` without its blank values ("", null, NaN), one level deep, so the engine's defaults apply.
 * A blank required value is left out too, and the server then names the missing key. The keys
 * in `text` keep an empty text: a JSON pointer "" points at the whole body or event.
 */
export function prune<T extends object>(o: T, text: readonly (keyof T & string)[] = []): T {
  return Object.fromEntries(Object.entries(o).filter(([k, v]) => !isBlank(v) || (v === "" && (text as readonly string[]).includes(k)))) as T;
}

/**
 * The chosen type's `Auth`: its keys as typed, blank ones left out. Keys that belong to another
 * auth type go (the server refuses them); a key this console does not know is kept as it is.
 */
export function toAuth(d: AuthDraft): Auth {
  const own = new Set<string>(AUTH_KEYS[d.type]);
  const kept = Object.fromEntries(Object.entries(d).filter(([k]) => k !== "type" && (own.has(k) || !KNOWN_AUTH_KEYS.has(k))));
  switch (d.type) {
    case "none":
      return prune<AuthOf<"none">>({ ...kept, type: "none" });
    case "api_key":
      return prune<AuthOf<"api_key">>({ ...kept, type: "api_key", header: d.header ?? "", secret: d.secret ?? "", prefix: d.prefix });
    case "bearer":
      return prune<AuthOf<"bearer">>({ ...kept, type: "bearer", secret: d.secret ?? "" });
    case "basic":
      return prune<AuthOf<"basic">>({ ...kept, type: "basic", username: d.username ?? "", secret: d.secret ?? "" });
    case "oauth2_client_credentials":
      return prune<AuthOf<"oauth2_client_credentials">>({ ...kept, type: "oauth2_client_credentials", token_url: d.token_url ?? "", client_id: d.client_id ?? "", secret: d.secret ?? "", scope: d.scope });
  }
}

/** One object's endpoints as the server should get them. */
function toObjectEndpoints(o: ObjectEndpoints): ObjectEndpoints {
  const { params, delete: del, ...rest } = o;
  const out = prune<ObjectEndpoints>(
    {
      ...rest,
      pagination: rest.pagination && prune(rest.pagination),
      incremental: rest.incremental && prune(rest.incremental),
      concurrency: rest.concurrency && prune(rest.concurrency),
      create: rest.create && prune(rest.create),
      update: rest.update && prune(rest.update),
      lookup: rest.lookup && prune(rest.lookup),
    },
    ["records_pointer", "record_pointer"],
  );
  // A parameter is sent as typed (an empty value is a value), and `delete: null` means the
  // system takes no deletes (left out, deletes use DELETE).
  if (params !== undefined) out.params = { ...params };
  if (del !== undefined) out.delete = del && prune(del);
  return out;
}

/**
 * The form as the config the server gets: blank optional values left out (so the engine's
 * defaults apply), and only the chosen auth type's keys. Everything else is kept as it is,
 * including keys this console does not know, so loading a saved config and saving it changes
 * nothing but blank values the engine reads as absent (`null`, or "" where "" means nothing).
 */
export function toConfig(f: RestForm): RestConfig {
  const { auth, objects, webhooks, poll, reconcile, ...rest } = f;
  return prune<RestConfig>({
    ...rest,
    auth: toAuth(auth),
    objects: Object.fromEntries(Object.entries(objects).map(([name, o]) => [name, toObjectEndpoints(o)])),
    // `events_pointer: ""`: the body is an array of events (left out: the body is one event).
    webhooks: webhooks && prune(webhooks, ["record_pointer", "events_pointer"]),
    poll: poll && prune(poll),
    reconcile: reconcile && prune(reconcile),
  });
}

/** A saved config of a connector with an auth (rest, scim) in its form's shape, the auth as a draft (a copy: editing the form leaves the saved one alone). */
export function withAuthDraft<C extends { auth?: Auth }>(c: C): Omit<C, "auth"> & { auth: AuthDraft } {
  const copy = structuredClone(c);
  return { ...copy, auth: { ...(copy.auth ?? { type: "none" }) } };
}

/** A saved config in the form's shape. */
export function toForm(c: RestConfig): RestForm {
  return withAuthDraft(c);
}

/**
 * A stored system's config as the config of a connector with a base URL and objects (rest, scim).
 * The engine validated it when it was saved; an absent or malformed one reads as empty (the form
 * shows blanks, and a save is validated).
 */
export function storedConfigOf<C extends { base_url: string; objects: Record<string, unknown> }>(config: unknown): C {
  const c: Partial<{ base_url: unknown; objects: unknown }> = config && typeof config === "object" && !Array.isArray(config) ? config : {};
  return {
    ...c,
    base_url: typeof c.base_url === "string" ? c.base_url : "",
    objects: c.objects && typeof c.objects === "object" && !Array.isArray(c.objects) ? c.objects : {},
  } as unknown as C;
}

/** A stored system's config as the `rest` connector's. */
export function restConfigOf(config: unknown): RestConfig {
  return storedConfigOf<RestConfig>(config);
}

/** What a new object starts with. */
export function newObjectEndpoints(): ObjectEndpoints {
  return { path: "/employees", pagination: { style: "none" }, concurrency: { style: "none" } };
}

/** What a new system's form starts with. */
export function newRestForm(): RestForm {
  return { base_url: "https://", auth: { type: "none" }, objects: { employee: newObjectEndpoints() } };
}

/** What each pagination style starts with when chosen. */
const PAGINATION_DEFAULTS: { [S in PaginationStyle]: Extract<Pagination, { style: S }> } = {
  none: { style: "none" },
  page: { style: "page", page_param: "page", size_param: "size", size: 100, first_page: 1 },
  offset: { style: "offset", offset_param: "offset", limit_param: "limit", limit: 100 },
  cursor: { style: "cursor", cursor_param: "cursor", next_pointer: "/next" },
  link_header: { style: "link_header" },
};

export function newPagination<S extends PaginationStyle>(style: S): Extract<Pagination, { style: S }> {
  return structuredClone(PAGINATION_DEFAULTS[style]);
}

/** What each incremental style starts with when chosen. */
const INCREMENTAL_DEFAULTS: { [S in IncrementalStyle]: Extract<Incremental, { style: S }> } = {
  param: { style: "param", param: "updated_since", format: "rfc3339" },
  filter: { style: "filter", param: "filter", template: "modified_at ge '{since}'", format: "rfc3339" },
};

export function newIncremental<S extends IncrementalStyle>(style: S): Extract<Incremental, { style: S }> {
  return structuredClone(INCREMENTAL_DEFAULTS[style]);
}

/** What each concurrency style starts with when chosen. */
const CONCURRENCY_DEFAULTS: { [S in ConcurrencyStyle]: Extract<Concurrency, { style: S }> } = {
  none: { style: "none" },
  etag: { style: "etag" },
  version_field: { style: "version_field", field: "version" },
};

export function newConcurrency<S extends ConcurrencyStyle>(style: S): Extract<Concurrency, { style: S }> {
  return structuredClone(CONCURRENCY_DEFAULTS[style]);
}

/** The write endpoints and their methods when the config names none (the engine's defaults). */
export const DEFAULT_METHOD = { create: "POST", update: "PATCH", delete: "DELETE" } as const satisfies Record<"create" | "update" | "delete", string>;

/** A write endpoint with a change; an endpoint the config left out starts from the default method. */
export function editEndpoint(e: Endpoint | null | undefined, kind: keyof typeof DEFAULT_METHOD, patch: Partial<Endpoint>): Endpoint {
  return { ...(e ?? { method: DEFAULT_METHOD[kind] }), ...patch };
}

/** The methods offered for a write, with the one the config has first if it is another. */
export function methodOptions(current: string | undefined, offered: string[]): string[] {
  return current && !offered.includes(current) ? [current, ...offered] : offered;
}

/** What a signed-webhooks config starts with when turned on. */
export function newWebhooks(systemId: string, objectNames: string[]): WebhookConfig {
  return {
    secret: `${systemId || "system"}-webhook`,
    signature_header: "X-Signature",
    signature_prefix: "sha256=",
    timestamp_header: "X-Timestamp",
    tolerance_secs: 300,
    signed_payload: "timestamp_dot_body",
    object: objectNames[0] ?? "employee",
    record_pointer: "/data",
  };
}

/** How a webhook body holds its events: `events_pointer` absent, "" (the body), or a pointer. */
export type EventsShape = "one" | "array" | "pointer";

export function eventsShape(eventsPointer: string | null | undefined): EventsShape {
  return eventsPointer === null || eventsPointer === undefined ? "one" : eventsPointer === "" ? "array" : "pointer";
}

/** The `events_pointer` for a shape, keeping a pointer already typed. */
export function eventsPointerFor(shape: EventsShape, current: string | null | undefined): string | null {
  return shape === "one" ? null : shape === "array" ? "" : current || "/events";
}

/** What polling starts with when turned on. */
export function newPoll(): PollConfig {
  return { interval_secs: 60 };
}

/** What each look-up style starts with when chosen. */
const LOOKUP_DEFAULTS: { [S in LookupStyle]: Extract<Lookup, { style: S }> } = {
  param: { style: "param" },
  filter: { style: "filter", param: "filter", template: '{path} eq "{value}"' },
};

export function newLookup<S extends LookupStyle>(style: S): Extract<Lookup, { style: S }> {
  return structuredClone(LOOKUP_DEFAULTS[style]);
}

/** Why a filter look-up's template cannot work, for its hint: the value must go somewhere. */
export function lookupTemplateProblem(template: string | null | undefined): string | null {
  if (!template?.trim()) return "Needs a template, e.g. {path} eq \"{value}\".";
  if (!template.includes("{value}")) return "Needs {value}: the match key's value goes there.";
  return null;
}

/** The first index an offset listing asks for (0 unless the config says 1, as SCIM's startIndex). */
export const FIRST_OFFSETS: [number, string][] = [
  [0, "0 (the first record is offset 0)"],
  [1, "1 (the first record is index 1, as SCIM's startIndex)"],
];

/** Re-reads in a row before the engine stops and opens an exception (model.rs `max_rereads`). */
export const DEFAULT_MAX_REREADS = 5;

/** Seconds between reconciliations of a polled system without webhooks whose config sets none (rest.rs). */
export const DEFAULT_RECONCILE_SECS = 600;

/** The share of linked records one reconciliation may delete before it asks an admin (rest.rs). */
export const DEFAULT_MAX_DELETE_SHARE = 0.1;

/** What a reconciliation schedule starts with when it is set. */
export function newReconcile(): ReconcileConfig {
  return { interval_secs: DEFAULT_RECONCILE_SECS, max_delete_share: DEFAULT_MAX_DELETE_SHARE };
}

/** When a system is reconciled on a schedule, as the engine decides it (`reconcile_schedule` in rest.rs). */
export interface ReconcileSchedule {
  /** Seconds between scheduled runs, or null for none (on demand only). */
  everySecs: number | null;
  /** From the config, the engine's default for a polled system without webhooks, or neither. */
  source: "config" | "default" | "none";
  maxDeleteShare: number;
}

export function reconcileSchedule(c: Pick<RestConfig, "reconcile" | "poll" | "webhooks">): ReconcileSchedule {
  const r = c.reconcile;
  if (r) {
    const every = Number.isFinite(r.interval_secs) && r.interval_secs > 0 ? r.interval_secs : null;
    return { everySecs: every, source: "config", maxDeleteShare: r.max_delete_share ?? DEFAULT_MAX_DELETE_SHARE };
  }
  // A polled system that sends no webhooks reports no deletes: it is reconciled by default.
  if (c.poll && !c.webhooks) return { everySecs: DEFAULT_RECONCILE_SECS, source: "default", maxDeleteShare: DEFAULT_MAX_DELETE_SHARE };
  return { everySecs: null, source: "none", maxDeleteShare: DEFAULT_MAX_DELETE_SHARE };
}

/** The schedule in a sentence. */
export function describeSchedule(s: ReconcileSchedule): string {
  if (s.source === "config") return s.everySecs === null ? "Scheduled runs are off (interval 0); Reconcile now still works." : `Every ${s.everySecs} s, and on demand.`;
  if (s.source === "default") return `Every ${s.everySecs} s (the default for a polled system without webhooks), and on demand.`;
  return "On demand only: by default only polled systems without webhooks are reconciled on a schedule.";
}

/** A share (0.1) as the percent the form shows (10), without float noise (0.07 is 7, not 7.000000000000001). */
export function shareToPercent(share: number | null | undefined): number | undefined {
  return share === null || share === undefined || Number.isNaN(share) ? undefined : Math.round(share * 100 * 1e6) / 1e6;
}

/** A percent typed in the form (10) as the share the config holds (0.1). */
export function percentToShare(percent: number | null | undefined): number | undefined {
  return percent === null || percent === undefined || Number.isNaN(percent) ? undefined : Math.round(percent * 1e6) / 1e8;
}

/** One fixed query parameter as the form edits it (a list, so a name can be typed freely). */
export interface ParamRow {
  name: string;
  value: string;
}

export function paramRows(params: Record<string, string> | undefined): ParamRow[] {
  return Object.entries(params ?? {}).map(([name, value]) => ({ name, value }));
}

/** The rows as `params`: a row with neither name nor value is left out; of a repeated name, the last row counts. */
export function paramsOf(rows: ParamRow[]): Record<string, string> {
  return Object.fromEntries(rows.filter((r) => r.name !== "" || r.value !== "").map((r) => [r.name, r.value]));
}

/** What is wrong with each row, for its hint: no name, or a name a later row repeats. */
export function paramProblems(rows: ParamRow[]): (string | null)[] {
  return rows.map((r, i) => {
    if (r.name === "" && r.value === "") return null;
    if (r.name === "") return "Needs a name.";
    if (rows.slice(i + 1).some((x) => x.name === r.name)) return "Repeated below: only the last one is sent.";
    return null;
  });
}

/** What of a connector's config names keychain entries: the auth, and webhooks where the connector takes them (scim does not). */
export type SecretHolder = Pick<RestConfig, "auth"> & Partial<Pick<RestConfig, "webhooks">>;

/** The keychain names a config refers to: the auth secret and the webhook signing key. */
export function secretNames(c: SecretHolder): { auth: string | null; webhook: string | null } {
  return { auth: c.auth && c.auth.type !== "none" ? c.auth.secret : null, webhook: c.webhooks?.secret ?? null };
}

/** What the auth secret of each auth type is, for people. */
export const AUTH_SECRET_PURPOSE: Record<Exclude<AuthType, "none">, string> = {
  api_key: "API key",
  bearer: "Bearer token",
  basic: "Password",
  oauth2_client_credentials: "OAuth client secret",
};

export const WEBHOOK_SECRET_PURPOSE = "Webhook signing key";

/** One keychain entry a config refers to, and what it is used for. */
export interface SecretRef {
  name: string;
  purposes: string[];
}

/** Every keychain entry a config refers to, once each (two uses of one name are one entry). */
export function secretRefs(c: SecretHolder): SecretRef[] {
  const out: SecretRef[] = [];
  const add = (name: string | null | undefined, purpose: string) => {
    const n = name?.trim();
    if (!n) return;
    const hit = out.find((r) => r.name === n);
    if (!hit) out.push({ name: n, purposes: [purpose] });
    else if (!hit.purposes.includes(purpose)) hit.purposes.push(purpose);
  };
  if (c.auth && c.auth.type !== "none") add(c.auth.secret, AUTH_SECRET_PURPOSE[c.auth.type]);
  add(c.webhooks?.secret, WEBHOOK_SECRET_PURPOSE);
  return out;
}

/** JSON with object keys sorted, so two equal configs compare equal whatever their key order. */
export function stableJson(v: unknown): string {
  const sort = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(sort);
    if (x && typeof x === "object") {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(x).sort()) out[k] = sort((x as Record<string, unknown>)[k]);
      return out;
    }
    return x;
  };
  return JSON.stringify(sort(v)) ?? "null";
}

/**
 * How to test a connection: a saved system whose form is unchanged is tested as the engine runs
 * it (`POST /api/systems/{id}/test`); a new system or an edited form is tested as drafted
 * (`POST /api/systems/test`), before anything is saved.
 */
export function testTarget(draft: unknown, saved: unknown | undefined): "saved" | "draft" {
  return saved !== undefined && stableJson(draft) === stableJson(saved) ? "saved" : "draft";
}

/** A connection test's discovered fields, in path order, with their example values. */
export function fieldRows(fields: Record<string, unknown> | null | undefined): [string, unknown][] {
  return Object.entries(fields ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
