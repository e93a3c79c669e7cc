import { describe, expect, it } from "vitest";
import { STATE_TONE, describeHealth } from "./health";

describe("system health", () => {
  it("never shows a stuck or failing system in the healthy colour", () => {
    expect(STATE_TONE.stuck).toBe("danger");
    expect(STATE_TONE.failing).toBe("danger");
    expect(Object.entries(STATE_TONE).filter(([, tone]) => tone === "success").map(([s]) => s)).toEqual(["healthy"]);
  });
  it("says the state, why, and the last error", () => {
    expect(describeHealth({ state: "failing", reason: "reading it fails (3 times in a row)", last_error: "HTTP 503" })).toBe(
      "Failing: reading it fails (3 times in a row). Last error: HTTP 503",
    );
    expect(describeHealth({ state: "healthy", reason: "nothing queued, nothing failing" })).toBe("Healthy: nothing queued, nothing failing.");
  });
});
