import { describe, expect, it } from "vitest";
import { cleanConfig, newRestConfig, secretNames, toForm } from "./restconfig";

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
