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
