import { describe, expect, it } from "vitest";
import { deadLetterOutcome, justAfter, prettyBody, replanDelivery, replanMessage, requestBodyText, requestLine, sameRequest } from "./deadletter";

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
  it("says a re-planned dead letter was planned again, not that it was delivered", () => {
    expect(deadLetterOutcome(row({ status: "replayed", actor: "sam" }), time, "support", true)).toEqual({
      byline: "re-planned by sam",
      long: `Planned again by sam (support) at <${at}> from the current data, as a new write`,
      tone: "success",
    });
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

describe("the request a dead letter was sent as", () => {
  it("shows the method and path as sent, the method in capitals", () => {
    expect(requestLine({ method: "patch", path: "/employees/42" })).toBe("PATCH /employees/42");
  });
  it("shows the body as indented JSON, and no body as none (not an empty object)", () => {
    expect(requestBodyText({ body: { name: "Ana" } })).toBe('{\n  "name": "Ana"\n}');
    expect(requestBodyText({ body: null })).toBeNull();
    expect(requestBodyText({})).toBeNull();
    expect(requestBodyText({ body: {} })).toBe("{}");
  });
  it("tells a re-plan that would send the same request from one that would not", () => {
    const a = { method: "PATCH", path: "/e/1", body: { a: 1, b: { c: 2 } } };
    expect(sameRequest(a, { method: "patch", path: "/e/1", body: { b: { c: 2 }, a: 1 } })).toBe(true);
    expect(sameRequest(a, { ...a, body: { a: 2, b: { c: 2 } } })).toBe(false);
    expect(sameRequest(a, { ...a, path: "/e/2" })).toBe(false);
    expect(sameRequest(a, null)).toBe(false);
    // Two masked values may differ behind the mask: never call them the same.
    const masked = { method: "PATCH", path: "/e/1", body: { salary: "••••" } };
    expect(sameRequest(masked, { ...masked })).toBe(false);
  });
});

describe("replanMessage", () => {
  it("names the new write when one was queued", () => {
    expect(replanMessage({ outcome: "queued", outbox_id: 812 }, 5)).toEqual({
      tone: "success",
      title: "Dead letter #5 planned again",
      description: "A new write (#812) is queued from the current golden record and mapping.",
    });
  });
  it("says nothing is sent when there is nothing to write, or it was settled already", () => {
    expect(replanMessage({ outcome: "nothing_to_write", outbox_id: null }, 5)).toMatchObject({ tone: "info", title: "Nothing to write" });
    expect(replanMessage({ outcome: "already_replayed" }, 5).title).toMatch(/nothing is sent again/);
    expect(replanMessage({ outcome: "discarded" }, 5).title).toMatch(/discarded/);
  });
});

describe("replanDelivery", () => {
  const row = (id: number, rule: string) => ({ id, at: `t${id}`, rule, detail: null });
  it("waits while the audit has nothing about the write yet", () => {
    expect(replanDelivery([])).toEqual({ state: "queued" });
    expect(replanDelivery([row(1, "dead_letter:replan")])).toEqual({ state: "queued" });
  });
  it("is delivered once a delivered entry appears", () => {
    expect(replanDelivery([row(3, "delivered:update"), row(2, "dead_letter:replan")])).toEqual({ state: "delivered", at: "t3" });
  });
  it("failed again when a new dead letter or the loop guard is the newest word", () => {
    expect(replanDelivery([row(4, "delivered:update"), row(6, "dead_letter:validation")])).toEqual({ state: "failed", at: "t6", why: "Validation" });
    expect(replanDelivery([row(7, "delivery:loop_guard")])).toMatchObject({ state: "failed", why: /keeps changing/ });
  });
});

describe("prettyBody", () => {
  it("indents a JSON response and leaves any other text as it is", () => {
    expect(prettyBody('{"error":"bad date"}')).toBe('{\n  "error": "bad date"\n}');
    expect(prettyBody("<html>502</html>")).toBe("<html>502</html>");
    expect(prettyBody(null)).toBe("");
  });
});
