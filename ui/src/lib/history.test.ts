import { describe, expect, it } from "vitest";
import { describeVersion } from "./history";

describe("describeVersion", () => {
  const change = { path: "rules[0].transform.format", before: "%m/%d/%Y", after: "%Y-%m-%d" };
  it("says whether a version created, removed, changed or restored its target", () => {
    expect(describeVersion({ before: null, after: { id: "crm" }, changes: [{ path: "", before: null, after: { id: "crm" } }], restored_from: null })).toBe("Created");
    expect(describeVersion({ before: { id: "crm" }, after: null, changes: [], restored_from: null })).toBe("Removed");
    expect(describeVersion({ before: {}, after: {}, changes: [change, change], restored_from: null })).toBe("Changed 2 values");
    expect(describeVersion({ before: {}, after: {}, changes: [change], restored_from: 41 })).toBe("Restored version 41 (1 value)");
    expect(describeVersion({ before: {}, after: {}, changes: [], restored_from: null })).toBe("Saved unchanged");
  });
});
