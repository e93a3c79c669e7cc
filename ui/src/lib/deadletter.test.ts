import { describe, expect, it } from "vitest";
import { deadLetterOutcome, justAfter } from "./deadletter";

const at = "2025-11-22T14:05:09.123456Z";
const time = (iso: string) => `<${iso}>`;
const row = (patch: Partial<Parameters<typeof deadLetterOutcome>[0]>) => ({ status: "dead", kind: "write", actor: null, discard_reason: null, updated_at: at, ...patch });

describe("deadLetterOutcome", () => {
  it("says who discarded it, when and why", () => {
    expect(deadLetterOutcome(row({ status: "discarded", actor: "ana", discard_reason: "left before onboarding" }), time, "admin")).toEqual({
      byline: "by ana",
      long: `Discarded by ana (admin) at <${at}>: left before onboarding`,
      tone: undefined,
    });
    expect(deadLetterOutcome(row({ status: "discarded", actor: "ana", discard_reason: "  " }), time)?.long).toBe(`Discarded by ana at <${at}>`);
  });
  it("says who replayed it and whether it was delivered", () => {
    expect(deadLetterOutcome(row({ status: "replayed", actor: "sam" }), time)).toEqual({ byline: "by sam", long: `Replayed by sam; delivered at <${at}>`, tone: "success" });
    expect(deadLetterOutcome(row({ status: "replayed", kind: "event", actor: "sam" }), time)?.long).toBe(`Replayed by sam at <${at}>`);
    expect(deadLetterOutcome(row({ status: "replaying", actor: "sam" }), time, "support")?.long).toBe(`Replay requested by sam (support) at <${at}>; not delivered yet`);
  });
  it("tells a replay that failed again from one nobody touched", () => {
    expect(deadLetterOutcome(row({ actor: "sam" }), time)).toEqual({ byline: "replayed by sam", long: `Replayed by sam; failed again at <${at}>`, tone: "warning" });
    expect(deadLetterOutcome(row({}), time)).toBeNull();
  });
  it("leaves out a missing actor rather than inventing one", () => {
    expect(deadLetterOutcome(row({ status: "discarded", discard_reason: "dup" }), time, "admin")).toEqual({ byline: "", long: `Discarded at <${at}>: dup`, tone: undefined });
  });
});

describe("justAfter", () => {
  it("ends a window a second after the time", () => {
    expect(justAfter("2025-11-22T14:05:09.123456Z")).toBe("2025-11-22T14:05:10.123Z");
    expect(justAfter("not a time")).toBeUndefined();
  });
});
