import { describe, expect, it } from "vitest";
import { cleanConfig, fieldRows, newRestConfig, secretNames, secretRefs, stableJson, testTarget, toForm } from "./restconfig";

describe("cleanConfig", () => {
  it("drops blank optional values so the server's defaults apply", () => {
    const c = newRestConfig();
    c.base_url = "https://hris.example";
    c.user_agent = "";
    c.objects.employee!.item_path = "";
    c.objects.employee!.version_field = null;
    expect(cleanConfig(c)).toEqual({
      base_url: "https://hris.example",
      auth: { type: "none" },
      objects: { employee: { path: "/employees", pagination: { style: "none" }, concurrency: { style: "none" } } },
    });
  });
  it("keeps only the keys of the chosen auth type", () => {
    const c = newRestConfig();
    c.auth = { type: "bearer", secret: "hris-token", header: "X-Old", username: "old" };
    expect(cleanConfig(c).auth).toEqual({ type: "bearer", secret: "hris-token" });
  });
  it("keeps delete: null, which means the system takes no deletes", () => {
    const c = newRestConfig();
    c.objects.employee!.delete = null;
    expect(cleanConfig(c).objects.employee!.delete).toBeNull();
  });
});

describe("secretNames", () => {
  it("names the keychain entries a config uses, never values", () => {
    const c = toForm({ base_url: "x", auth: { type: "basic", username: "u", secret: "payroll-pw" }, objects: {}, webhooks: { secret: "payroll-hook", signature_header: "X-Sig", object: "employee", record_pointer: "/data" } });
    expect(secretNames(c)).toEqual({ auth: "payroll-pw", webhook: "payroll-hook" });
    expect(secretNames(newRestConfig())).toEqual({ auth: null, webhook: null });
  });
});

describe("secretRefs", () => {
  it("lists each keychain entry with what it is for", () => {
    const c = toForm({ base_url: "x", auth: { type: "oauth2_client_credentials", token_url: "/t", client_id: "c", secret: "payroll-client" }, objects: {}, webhooks: { secret: "payroll-hook", signature_header: "X-Sig", object: "employee", record_pointer: "/data" } });
    expect(secretRefs(c)).toEqual([
      { name: "payroll-client", purposes: ["OAuth client secret"] },
      { name: "payroll-hook", purposes: ["Webhook signing key"] },
    ]);
  });
  it("names a shared entry once, and skips blank names and auth none", () => {
    const c = toForm({ base_url: "x", auth: { type: "api_key", header: "X-Key", secret: " shared " }, objects: {}, webhooks: { secret: "shared", signature_header: "X-Sig", object: "employee", record_pointer: "/data" } });
    expect(secretRefs(c)).toEqual([{ name: "shared", purposes: ["API key", "Webhook signing key"] }]);
    expect(secretRefs(toForm({ base_url: "x", auth: { type: "bearer", secret: "" }, objects: {} }))).toEqual([]);
    expect(secretRefs(toForm({ base_url: "x", auth: { type: "none", secret: "left-over" }, objects: {} }))).toEqual([]);
  });
});

describe("testTarget", () => {
  const saved = { id: "hris", name: "HRIS", connector: "rest", config: { base_url: "https://h", objects: {} }, max_attempts: 8 };
  it("tests an unchanged saved system as the engine runs it", () => {
    expect(testTarget({ max_attempts: 8, config: { objects: {}, base_url: "https://h" }, connector: "rest", name: "HRIS", id: "hris" }, saved)).toBe("saved");
  });
  it("tests a new system or an edited form as drafted", () => {
    expect(testTarget(saved, undefined)).toBe("draft");
    expect(testTarget({ ...saved, config: { base_url: "https://h2", objects: {} } }, saved)).toBe("draft");
  });
});

describe("stableJson", () => {
  it("ignores key order, keeps array order", () => {
    expect(stableJson({ b: 1, a: { d: [2, 1], c: null } })).toBe('{"a":{"c":null,"d":[2,1]},"b":1}');
    expect(stableJson(undefined)).toBe("null");
  });
});

describe("fieldRows", () => {
  it("sorts discovered paths and keeps their example values", () => {
    expect(fieldRows({ "home_address/zip": "78728", email: "a@b", "bank/account_number": "••••" })).toEqual([
      ["bank/account_number", "••••"],
      ["email", "a@b"],
      ["home_address/zip", "78728"],
    ]);
    expect(fieldRows(undefined)).toEqual([]);
  });
});
