import { describe, expect, it } from "vitest";
import { tripReason } from "./breaker";

describe("tripReason", () => {
  it("says how many of how many records, the share, the window and the limit", () => {
    expect(tripReason({ overwrites: 12, deletes: 3, linked: 100, max_share: 0.1, window_secs: 300 })).toBe(
      "15 of 100 records (15%) would be overwritten or deleted within 5 min; the limit is 10%",
    );
    expect(tripReason({ overwrites: 300, deletes: 0, linked: 300, max_share: 0.5, window_secs: 10 })).toBe(
      "300 of 300 records (100%) would be overwritten or deleted within 10 s; the limit is 50%",
    );
  });
});
