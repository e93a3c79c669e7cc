// A tiny typed fetch wrapper over the generated OpenAPI types (schema.d.ts): every call names
// a path and method of the document, and its parameters, body and result are checked against
// it. Parameters whose name appears in the path template (`{id}`) fill it; every other
// parameter goes in the query string. Errors are the API's `{code, message}`.

import type { paths } from "./schema";
import { apiBase } from "../lib/session";

type Method = "get" | "put" | "post" | "delete";

type Op<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;

/** Paths that have method M. */
export type PathsFor<M extends Method> = {
  [P in keyof paths]: paths[P][M] extends undefined ? never : [paths[P][M]] extends [never] ? never : P;
}[keyof paths];

type Obj<T> = [T] extends [never] ? {} : T extends Record<string, unknown> ? T : {};
type Loose<T> = { [K in keyof T]?: T[K] | null | undefined };

/** Every parameter of an operation (path and query), all optional at the type level. */
export type ParamsOf<O> = O extends { parameters: infer X }
  ? Loose<Obj<X extends { path?: infer A } ? A : never> & Obj<X extends { query?: infer Q } ? Q : never>>
  : {};

export type BodyOf<O> = O extends { requestBody?: infer RB }
  ? [NonNullable<RB>] extends [never]
    ? never
    : NonNullable<RB> extends { content: { "application/json": infer B } }
      ? B
      : never
  : never;

/** The JSON an operation answers with on success: its 200, or its 201 or 202 (a run started in the background). */
export type ResultOf<O> = O extends { responses: infer R }
  ? R extends { 200: { content: { "application/json": infer T } } }
    ? T
    : R extends { 201: { content: { "application/json": infer T } } }
      ? T
      : R extends { 202: { content: { "application/json": infer T } } }
        ? T
        : void
  : void;

/** The body argument: required when the operation takes one, absent when it takes none. */
type BodyArg<O> = [BodyOf<O>] extends [never] ? [] : [body: BodyOf<O>];

/** What the API answers when it refuses: a short code the UI may branch on, and a message for people. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  /** The whole error body, for refusals that say more than a message (a 409 `confirmation_required` lists what would be removed). */
  readonly details: unknown;
  constructor(status: number, code: string, message: string, details?: unknown) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

let token: string | null = null;
let onUnauthorized: (() => void) | null = null;

export function setToken(t: string | null): void {
  token = t;
}

export function onAuthLost(handler: () => void): void {
  onUnauthorized = handler;
}

/** Builds `/api/x/{id}?a=1` from a template and parameters; exported for tests. */
export function buildUrl(template: string, params: Record<string, unknown> = {}): string {
  const used = new Set<string>();
  const path = template.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const v = params[name];
    if (v === undefined || v === null || v === "") {
      throw new Error(`missing path parameter '${name}' for ${template}`);
    }
    used.add(name);
    return encodeURIComponent(String(v));
  });
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (used.has(k) || v === undefined || v === null || v === "") continue;
    query.append(k, String(v));
  }
  const qs = query.toString();
  return qs ? `${path}?${qs}` : path;
}

async function errorFrom(res: Response): Promise<ApiError> {
  let code = `http_${res.status}`;
  let message = res.statusText || `The engine answered ${res.status}`;
  let details: unknown = undefined;
  try {
    const body: unknown = await res.json();
    details = body;
    if (body && typeof body === "object") {
      const b = body as { code?: unknown; message?: unknown };
      if (typeof b.code === "string") code = b.code;
      if (typeof b.message === "string" && b.message) message = b.message;
    }
  } catch {
    /* not JSON: keep the status text */
  }
  return new ApiError(res.status, code, message, details);
}

/**
 * The total an `X-Total-Count` header gives: a non-negative whole number, else null (absent,
 * or hidden from a cross-origin page that the server does not expose it to). Exported for tests.
 */
export function parseTotal(header: string | null | undefined): number | null {
  if (header === null || header === undefined) return null;
  const t = header.trim();
  if (!/^\d+$/.test(t)) return null;
  const n = Number(t);
  return Number.isSafeInteger(n) ? n : null;
}

async function send(method: Method, template: string, params: object | undefined, body: unknown, signal?: AbortSignal): Promise<{ res: Response; data: unknown }> {
  const url = apiBase() + buildUrl(template, (params ?? {}) as Record<string, unknown>);
  const headers: Record<string, string> = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(url, {
      method: method.toUpperCase(),
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") throw e;
    throw new ApiError(0, "unreachable", `Cannot reach the Concord engine at ${apiBase()}. Is it running?`);
  }
  if (!res.ok) {
    const err = await errorFrom(res);
    if (res.status === 401 && onUnauthorized) onUnauthorized();
    throw err;
  }
  if (res.status === 204) return { res, data: undefined };
  const text = await res.text();
  return { res, data: text ? JSON.parse(text) : undefined };
}

async function call<T>(method: Method, template: string, params: object | undefined, body: unknown, signal?: AbortSignal): Promise<T> {
  return (await send(method, template, params, body, signal)).data as T;
}

/** One page of a list, and how many items match the filter whatever the limit and offset. */
export interface Listed<T> {
  items: T[];
  /** `X-Total-Count`, or null when the answer carried none the page could read. */
  total: number | null;
}

/** GET paths whose answer is a list. */
export type ListPaths = {
  [P in PathsFor<"get">]: ResultOf<Op<P, "get">> extends readonly unknown[] ? P : never;
}[PathsFor<"get">];

type ItemOf<T> = T extends readonly (infer I)[] ? I : never;

export const api = {
  get<P extends PathsFor<"get">>(path: P, params?: ParamsOf<Op<P, "get">>, signal?: AbortSignal) {
    return call<ResultOf<Op<P, "get">>>("get", path, params, undefined, signal);
  },
  /** A list with its total (`X-Total-Count`): `{items, total}`. */
  async list<P extends ListPaths>(path: P, params?: ParamsOf<Op<P, "get">>, signal?: AbortSignal): Promise<Listed<ItemOf<ResultOf<Op<P, "get">>>>> {
    const { res, data } = await send("get", path, params, undefined, signal);
    return { items: (Array.isArray(data) ? data : []) as ItemOf<ResultOf<Op<P, "get">>>[], total: parseTotal(res.headers.get("X-Total-Count")) };
  },
  post<P extends PathsFor<"post">>(path: P, params: ParamsOf<Op<P, "post">>, ...body: BodyArg<Op<P, "post">>) {
    return call<ResultOf<Op<P, "post">>>("post", path, params, body[0]);
  },
  put<P extends PathsFor<"put">>(path: P, params: ParamsOf<Op<P, "put">>, body: BodyOf<Op<P, "put">>) {
    return call<ResultOf<Op<P, "put">>>("put", path, params, body);
  },
  /** A PUT whose answer's headers say something too (what an ownership save decided). */
  async putWithHeaders<P extends PathsFor<"put">>(path: P, params: ParamsOf<Op<P, "put">>, body: BodyOf<Op<P, "put">>): Promise<{ data: ResultOf<Op<P, "put">>; headers: Headers }> {
    const { res, data } = await send("put", path, params, body);
    return { data: data as ResultOf<Op<P, "put">>, headers: res.headers };
  },
  delete<P extends PathsFor<"delete">>(path: P, params: ParamsOf<Op<P, "delete">>) {
    return call<ResultOf<Op<P, "delete">>>("delete", path, params, undefined);
  },
};

/** A GET whose answer is not JSON (a CSV download), as text. */
export async function getText(template: PathsFor<"get">, params?: object): Promise<string> {
  const url = apiBase() + buildUrl(template, (params ?? {}) as Record<string, unknown>);
  const headers: Record<string, string> = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch(url, { headers });
  } catch {
    throw new ApiError(0, "unreachable", `Cannot reach the Concord engine at ${apiBase()}. Is it running?`);
  }
  if (!res.ok) {
    const err = await errorFrom(res);
    if (res.status === 401 && onUnauthorized) onUnauthorized();
    throw err;
  }
  return res.text();
}

/** The human message of any error thrown by a call. */
export function errorMessage(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}
