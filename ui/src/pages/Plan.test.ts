import { describe, expect, it } from "vitest";
import { describePlan } from "./Plan";

describe("describePlan", () => {
  it("counts each kind of write and what waits for a person", () => {
    expect(describePlan({ creates: 1, updates: 3, deletes: 0, conflicts: 0, rejections: 0 })).toBe("1 create, 3 updates and 0 deletes.");
    expect(describePlan({ creates: 1200, updates: 0, deletes: 2, conflicts: 1, rejections: 4 })).toBe(
      "1,200 creates, 0 updates and 2 deletes; 1 conflict and 4 rejections wait for a person.",
    );
  });
});
