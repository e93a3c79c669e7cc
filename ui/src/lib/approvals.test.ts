import { describe, expect, it } from "vitest";
import type { BulkItem } from "../api/types";
import { confirmLabel, describeCounts, stepCounts } from "./approvals";

const item = (step: BulkItem["step"]): BulkItem => ({
  exception: 1,
  kind: "conflict",
  object: "employee",
  record_id: 1,
  field: "pay_rate",
  system: "payroll",
  current: "80500",
  chosen: "85000",
  base: null,
  four_eyes: step !== "apply",
  first_approval: null,
  step,
  reason: null,
  currency: "USD",
});

describe("bulk steps", () => {
  it("counts what deciding each item does", () => {
    const c = stepCounts([item("apply"), item("first_approval"), item("first_approval"), item("refused")]);
    expect(c).toEqual({ apply: 1, first_approval: 2, second_approval: 0, refused: 1 });
    expect(describeCounts(c)).toBe("1 applied now, 2 approved by you, awaiting a second steward, 1 not resolved by this rule");
  });
  it("says on the button whether the click applies or only approves", () => {
    expect(confirmLabel(stepCounts([item("first_approval"), item("first_approval")]))).toBe("Approve 2");
    expect(confirmLabel(stepCounts([item("second_approval")]))).toBe("Approve and apply 1");
    expect(confirmLabel(stepCounts([item("apply"), item("first_approval")]))).toBe("Resolve 2");
    expect(confirmLabel(stepCounts([item("refused")]))).toBe("Nothing to resolve");
  });
});
