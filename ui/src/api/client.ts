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

export type ResultOf<O> = O extends { responses: infer R }
  ? R extends { 200: { content: { "application/json": infer T } } }
    ? T
    : void
  : void;

/** The body argument: required when the operation takes one, absent when it takes none. */
type BodyArg<O> = [BodyOf<O>] extends [never] ? [] : [body: BodyOf<O>];

/** What the API answers when it refuses: a short code the UI may branch on, and a message for people. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
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
  try {
    const body: unknown = await res.json();
    if (body && typeof body === "object") {
      const b = body as { code?: unknown; message?: unknown };
      if (typeof b.code === "string") code = b.code;
      if (typeof b.message === "string" && b.message) message = b.message;
    }
  } catch {
    /* not JSON: keep the status text */
  }
  return new ApiError(res.status, code, message);
}

async function call<T>(method: Method, template: string, params: object | undefined, body: unknown, signal?: AbortSignal): Promise<T> {
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
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export const api = {
  get<P extends PathsFor<"get">>(path: P, params?: ParamsOf<Op<P, "get">>, signal?: AbortSignal) {
    return call<ResultOf<Op<P, "get">>>("get", path, params, undefined, signal);
  },
  post<P extends PathsFor<"post">>(path: P, params: ParamsOf<Op<P, "post">>, ...body: BodyArg<Op<P, "post">>) {
    return call<ResultOf<Op<P, "post">>>("post", path, params, body[0]);
  },
  put<P extends PathsFor<"put">>(path: P, params: ParamsOf<Op<P, "put">>, body: BodyOf<Op<P, "put">>) {
    return call<ResultOf<Op<P, "put">>>("put", path, params, body);
  },
};

/** The human message of any error thrown by a call. */
export function errorMessage(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}
