import { describe, expect, it } from "vitest";
import { ApiError } from "../api/client";
import { describeRemoval, removalOf, removalTitle } from "./confirmation";

const refusal = (removes: unknown) =>
  new ApiError(409, "confirmation_required", "this removes all 8 rules", { code: "confirmation_required", message: "this removes all 8 rules", removes });

describe("confirmation", () => {
  it("reads what a 409 confirmation_required would remove", () => {
    const r = removalOf(refusal({ kind: "mapping_rules", system: "hris", object: "employee", count: 8, fields: ["work_email", "job_title"] }));
    expect(r?.kind).toBe("mapping_rules");
    expect(removalTitle(r!)).toBe("Remove every rule of the hris employee mapping?");
    expect(describeRemoval(r!)).toEqual(["8 mapping rules removed.", "No longer read or written in hris: work_email, job_title."]);
  });
  it("is not fooled by other errors", () => {
    expect(removalOf(new ApiError(409, "conflict", "already resolved", { code: "conflict", message: "x" }))).toBeNull();
    expect(removalOf(new ApiError(409, "confirmation_required", "no body"))).toBeNull();
    expect(removalOf(new Error("boom"))).toBeNull();
  });
  it("describes emptied policies and a system with linked records", () => {
    expect(describeRemoval({ kind: "policies", object: "employee", count: 1, fields: ["pay_rate"] })).toEqual([
      "1 ownership rule removed: every system may then write pay_rate.",
    ]);
    const sys = { kind: "system", system: "payroll", linked_records: 1200, mappings: ["payroll/employee"] };
    expect(removalTitle(sys)).toBe("Remove the system payroll?");
    expect(describeRemoval(sys)).toEqual(["1,200 linked records stop syncing with it.", "Its mapping payroll/employee is removed too."]);
  });
});
