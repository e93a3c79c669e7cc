import { describe, expect, it } from "vitest";
import type { FieldPolicy } from "../api/types";
import { accessOf, conflictFromKey, conflictKey, describePolicy, isOpen, openPolicy, policyWarnings, samePolicy, setAccess, suggestedDeactivation } from "./policy";
import type { WorkspaceConfig } from "../api/types";

describe("ownership matrix", () => {
  it("starts open: every system may write", () => {
    const p = openPolicy("work_email");
    expect(isOpen(p)).toBe(true);
    expect(accessOf(p, "hris")).toBe("read");
  });
  it("a new owner demotes the previous owner to a writer", () => {
    let p = setAccess(openPolicy("pay_rate"), "payroll", "owner");
    expect(p.owner).toBe("payroll");
    p = setAccess(p, "hris", "owner");
    expect(p.owner).toBe("hris");
    expect(p.writers).toEqual(["payroll"]);
    expect(accessOf(p, "payroll")).toBe("writer");
  });
  it("removing the owner leaves owner_wins impossible, so it falls back to last_write_wins", () => {
    let p: FieldPolicy = { ...setAccess(openPolicy("x"), "hris", "owner"), conflict: "owner_wins" };
    p = setAccess(p, "hris", "read");
    expect(p.owner).toBeNull();
    expect(p.conflict).toBe("last_write_wins");
  });
  it("round-trips prefer(system) through its select key", () => {
    expect(conflictKey({ prefer: "payroll" })).toBe("prefer:payroll");
    expect(conflictFromKey("prefer:payroll")).toEqual({ prefer: "payroll" });
    expect(conflictFromKey("manual")).toBe("manual");
  });
  it("compares policies regardless of writer order and defaults", () => {
    expect(samePolicy({ field: "a", writers: ["x", "y"] }, { field: "a", writers: ["y", "x"], conflict: "last_write_wins" })).toBe(true);
    expect(samePolicy({ field: "a" }, { field: "a", four_eyes: true })).toBe(false);
  });
  it("warns about settings that cannot work", () => {
    expect(policyWarnings({ field: "a", conflict: "owner_wins" }, ["hris"])).toEqual(["owner_wins needs an owner"]);
    expect(policyWarnings({ field: "a", conflict: { prefer: "crm" } }, ["hris"])).toEqual(["prefers unknown system crm"]);
  });
});

describe("suggestedDeactivation", () => {
  const ws = (over: Partial<WorkspaceConfig["objects"][number]>): WorkspaceConfig =>
    ({
      systems: [],
      mappings: [],
      policies: [],
      objects: [
        {
          name: "employee",
          fields: [
            { name: "given_name", type: "string" },
            { name: "employment_status", type: "enum", values: ["active", "on_leave", "terminated"] },
          ],
          ...over,
        },
      ],
    }) as unknown as WorkspaceConfig;
  it("takes the object's own deactivation policy first", () => {
    expect(suggestedDeactivation(ws({ delete_policy: { policy: "deactivate", field: "employment_status", value: "on_leave" } }), "employee")).toEqual({ field: "employment_status", value: "on_leave" });
  });
  it("otherwise picks a status enum and its ending value", () => {
    expect(suggestedDeactivation(ws({ delete_policy: { policy: "review" } }), "employee")).toEqual({ field: "employment_status", value: "terminated" });
  });
  it("suggests nothing when the object has no status field", () => {
    expect(suggestedDeactivation(ws({ fields: [{ name: "given_name", type: "string" }] }), "employee")).toBeNull();
    expect(suggestedDeactivation(ws({}), "dependent")).toBeNull();
  });
});

describe("a policy in words", () => {
  it("names who writes, how conflicts go and what a non-owner's change does", () => {
    expect(describePolicy(openPolicy("title"))).toBe("every system writes; conflicts: last write wins");
    expect(describePolicy({ field: "title", owner: "hris", writers: ["payroll"], conflict: "owner_wins", non_owner: "quarantine", four_eyes: true })).toBe(
      "owner hris, writers payroll; conflicts: owner wins; others' changes: held for a steward; four eyes",
    );
    expect(describePolicy({ field: "phone", writers: ["hris"], conflict: { prefer: "payroll" } })).toBe("writers hris; conflicts: prefer payroll; others' changes: reverted");
  });
});
