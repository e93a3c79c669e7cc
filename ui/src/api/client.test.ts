import { describe, expect, it } from "vitest";
import { buildUrl } from "./client";

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
