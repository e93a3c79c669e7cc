import { afterEach, describe, expect, expectTypeOf, it, vi } from "vitest";
import { ApiError, api, buildUrl, parseTotal, type ResultOf } from "./client";
import type { paths } from "./schema";
import type { ReconcileStarted } from "./types";

describe("buildUrl", () => {
  it("fills path parameters and puts the rest in the query", () => {
    expect(buildUrl("/api/exceptions/{id}/resolve", { id: 42 })).toBe("/api/exceptions/42/resolve");
    expect(buildUrl("/api/exceptions", { kind: "conflict", system: null, limit: 200, offset: 0 })).toBe(
      "/api/exceptions?kind=conflict&limit=200&offset=0",
    );
  });
  it("escapes path parameters", () => {
    expect(buildUrl("/api/secrets/{name}", { name: "hris api/key" })).toBe("/api/secrets/hris%20api%2Fkey");
  });
  it("refuses a missing path parameter", () => {
    expect(() => buildUrl("/api/records/{id}", {})).toThrow(/missing path parameter 'id'/);
  });
});

describe("parseTotal", () => {
  it("reads a whole number", () => {
    expect(parseTotal("1234")).toBe(1234);
    expect(parseTotal(" 0 ")).toBe(0);
    expect(parseTotal("100000")).toBe(100000);
  });
  it("is null when the header is absent or not a count", () => {
    expect(parseTotal(null)).toBeNull();
    expect(parseTotal(undefined)).toBeNull();
    expect(parseTotal("")).toBeNull();
    expect(parseTotal("-3")).toBeNull();
    expect(parseTotal("12.5")).toBeNull();
    expect(parseTotal("1e3")).toBeNull();
    expect(parseTotal("many")).toBeNull();
    expect(parseTotal("99999999999999999999")).toBeNull();
  });
});

describe("api.list", () => {
  afterEach(() => vi.unstubAllGlobals());
  const stub = (res: Response) => {
    vi.stubGlobal("window", { location: { origin: "http://engine.test" } });
    const fetch = vi.fn(async () => res);
    vi.stubGlobal("fetch", fetch);
    return fetch;
  };
  it("gives the items and the X-Total-Count total", async () => {
    const fetch = stub(new Response(JSON.stringify([{ id: 1 }, { id: 2 }]), { headers: { "X-Total-Count": "5731" } }));
    const r = await api.list("/api/dead-letters", { status: "all", limit: 2, offset: 0 });
    expect(r.total).toBe(5731);
    expect(r.items.map((d) => d.id)).toEqual([1, 2]);
    expect(fetch).toHaveBeenCalledWith("http://engine.test/api/dead-letters?status=all&limit=2&offset=0", expect.objectContaining({ method: "GET" }));
  });
  it("has a null total when the header cannot be read", async () => {
    stub(new Response("[]"));
    expect(await api.list("/api/audit", { limit: 10 })).toEqual({ items: [], total: null });
  });
  it("throws the API's error", async () => {
    stub(new Response(JSON.stringify({ code: "forbidden", message: "Only admins" }), { status: 403 }));
    const e = await api.list("/api/exceptions").catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect((e as ApiError).code).toBe("forbidden");
    expect((e as ApiError).message).toBe("Only admins");
  });
});

describe("answers other than 200", () => {
  afterEach(() => vi.unstubAllGlobals());
  it("types and returns the body of a 202 (a run started in the background)", async () => {
    expectTypeOf<ResultOf<NonNullable<paths["/api/systems/{id}/reconcile"]["post"]>>>().toEqualTypeOf<ReconcileStarted>();
    vi.stubGlobal("window", { location: { origin: "http://engine.test" } });
    const body = { runs: [{ id: 7, status: "running" }] };
    vi.stubGlobal("fetch", vi.fn(async () => new Response(JSON.stringify(body), { status: 202 })));
    const r = await api.post("/api/systems/{id}/reconcile", { id: "hris" });
    expect(r.runs[0]!.id).toBe(7);
  });
  it("has no result for a 204", () => {
    expectTypeOf<ResultOf<NonNullable<paths["/api/exceptions/{id}/dismiss"]["post"]>>>().toEqualTypeOf<void>();
  });
});
