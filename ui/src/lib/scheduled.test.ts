import { describe, expect, it } from "vitest";
import { fieldChanges, outcome, relativeDay } from "./scheduled";

describe("scheduled changes", () => {
  it("lists each held field with what the system held before and the dated value", () => {
    expect(fieldChanges({ values: { pay_rate: "85000", pay_currency: "USD" }, base: { pay_rate: "80000" } })).toEqual([
      { field: "pay_currency", now: null, then: "USD" },
      { field: "pay_rate", now: "80000", then: "85000" },
    ]);
  });

  it("counts whole UTC days to the date", () => {
    const now = new Date("2026-12-15T23:30:00Z");
    expect(relativeDay("2026-12-15T00:00:00Z", now)).toBe("today");
    expect(relativeDay("2026-12-16T00:00:00Z", now)).toBe("tomorrow");
    expect(relativeDay("2027-01-01T00:00:00Z", now)).toBe("in 17 days");
    expect(relativeDay("2026-12-13T00:00:00Z", now)).toBe("2 days ago");
    expect(relativeDay("not a date", now)).toBe("");
  });

  it("says what became of a change, trusting the released event's outcome", () => {
    expect(outcome({ status: "scheduled", outcome: null, reason: null }).text).toBe("Waiting for its date");
    expect(outcome({ status: "released", outcome: "applied", reason: null })).toEqual({ text: "Applied on its date", tone: "success" });
    expect(outcome({ status: "released", outcome: "failed", reason: null }).tone).toBe("danger");
    expect(outcome({ status: "superseded", outcome: null, reason: "replaced by the system's later change dated 2027-02-01" }).text).toContain("2027-02-01");
  });
});
