import { describe, expect, it } from "vitest";
import { describeChain } from "./AuditChain";

describe("describeChain", () => {
  it("names the first broken entry and why", () => {
    const text = describeChain({
      state: "broken",
      entries: 12,
      head: { id: 11, hash: "ab".repeat(32) },
      first_broken: { id: 12, reason: "it has no hash: it was written around the engine" },
      triggers_present: true,
    });
    expect(text).toBe("Audit chain broken at entry 12: it has no hash: it was written around the engine.");
  });
  it("gives the head to record elsewhere, and says when the triggers are gone", () => {
    const text = describeChain({
      state: "intact",
      entries: 1200,
      head: { id: 1200, hash: "0123456789abcdef".repeat(4) },
      triggers_present: false,
    });
    expect(text).toContain("intact over 1,200 entries");
    expect(text).toContain("entry 1200, 0123456789ab…");
    expect(text).toContain("triggers were removed");
  });
});
