// The `rest` connector's declarative config (src/connectors/rest.rs `RestConfig`) as the form
// edits it. The OpenAPI document types SystemConfig.config as free JSON, so these shapes
// mirror the Rust types by hand (see the API gaps in ui/README.md); the server validates every
// save and names the bad key.

export type AuthType = "none" | "api_key" | "bearer" | "basic" | "oauth2_client_credentials";

export interface Auth {
  type: AuthType;
  header?: string;
  prefix?: string | null;
  secret?: string;
  username?: string;
  token_url?: string;
  client_id?: string;
  scope?: string | null;
}

export type Pagination =
  | { style: "none" }
  | { style: "page"; page_param: string; size_param: string; size: number; first_page?: number }
  | { style: "offset"; offset_param: string; limit_param: string; limit: number }
  | { style: "cursor"; cursor_param: string; next_pointer: string; size_param?: string | null; size?: number | null }
  | { style: "link_header"; size_param?: string | null; size?: number | null };

export type TimeFormat = "raw" | "rfc3339" | "unix" | "unix_ms";

export type Incremental = { style: "param"; param: string; format?: TimeFormat } | { style: "filter"; param: string; template: string; format?: TimeFormat };

export type Concurrency = { style: "none" } | { style: "etag" } | { style: "version_field"; field: string };

export interface Endpoint {
  method: string;
  path?: string | null;
}

export interface ObjectEndpoints {
  path: string;
  item_path?: string | null;
  records_pointer?: string;
  record_pointer?: string;
  pagination?: Pagination;
  id_field?: string;
  version_field?: string | null;
  modified_field?: string | null;
  incremental?: Incremental | null;
  concurrency?: Concurrency;
  create?: Endpoint;
  update?: Endpoint;
  delete?: Endpoint | null;
  total_pointer?: string | null;
  total_header?: string | null;
}

export interface WebhookConfig {
  secret: string;
  signature_header: string;
  signature_prefix?: string;
  timestamp_header?: string | null;
  tolerance_secs?: number;
  signed_payload?: "body" | "timestamp_dot_body";
  object: string;
  events_pointer?: string | null;
  record_pointer: string;
  event_key_pointer?: string | null;
  op_pointer?: string | null;
  delete_values?: string[];
  occurred_at_pointer?: string | null;
}

export interface RestConfig {
  base_url: string;
  auth?: Auth;
  timeout_ms?: number;
  user_agent?: string | null;
  objects: Record<string, ObjectEndpoints>;
  webhooks?: WebhookConfig | null;
  poll?: { interval_secs: number } | null;
}

export function newObjectEndpoints(): ObjectEndpoints {
  return { path: "/employees", pagination: { style: "none" }, concurrency: { style: "none" } };
}

export function newRestConfig(): RestConfig {
  return { base_url: "https://", auth: { type: "none" }, objects: { employee: newObjectEndpoints() } };
}

/** Reads a stored config into the form's shape, filling what the form needs to show. */
export function toForm(config: unknown): RestConfig {
  const c = (config && typeof config === "object" ? structuredClone(config) : {}) as Partial<RestConfig>;
  return {
    ...c,
    base_url: c.base_url ?? "",
    auth: c.auth ?? { type: "none" },
    objects: c.objects ?? {},
  } as RestConfig;
}

/** Keys an auth type takes (the server refuses others: `deny_unknown_fields`). */
export const AUTH_KEYS: Record<AuthType, (keyof Auth)[]> = {
  none: [],
  api_key: ["header", "secret", "prefix"],
  bearer: ["secret"],
  basic: ["username", "secret"],
  oauth2_client_credentials: ["token_url", "client_id", "secret", "scope"],
};

/** The keychain names a config refers to: the auth secret and the webhook signing key. */
export function secretNames(c: RestConfig): { auth: string | null; webhook: string | null } {
  return { auth: c.auth && c.auth.type !== "none" ? c.auth.secret ?? null : null, webhook: c.webhooks?.secret ?? null };
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
export function secretRefs(c: RestConfig): SecretRef[] {
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

/**
 * The config as the server should get it: blank optional values dropped (so defaults apply),
 * and only the keys that the chosen auth type and pagination style take.
 */
export function cleanConfig(c: RestConfig): RestConfig {
  const drop = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(drop);
    if (v && typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        if (x === "" || x === null || x === undefined) continue;
        if (typeof x === "number" && Number.isNaN(x)) continue;
        out[k] = drop(x);
      }
      return out;
    }
    return v;
  };
  const copy = structuredClone(c);
  if (copy.auth) {
    const keys = AUTH_KEYS[copy.auth.type] ?? [];
    const a: Auth = { type: copy.auth.type };
    for (const k of keys) if (copy.auth[k] !== undefined) (a as unknown as Record<string, unknown>)[k] = copy.auth[k];
    copy.auth = a;
  }
  const cleaned = drop(copy) as RestConfig;
  // `delete: null` is meaningful (no deletes): restore it after dropping nulls.
  for (const [name, o] of Object.entries(c.objects)) {
    if (o.delete === null && cleaned.objects[name]) cleaned.objects[name]!.delete = null;
  }
  return cleaned;
}
