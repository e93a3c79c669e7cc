import { describe, expect, it } from "vitest";
import { EXCEPTION_KINDS, handling, kindLabel, kindTone } from "./exceptions";

const ex = (kind: string, patch: { record_id?: number | null; field?: string | null; detail?: unknown } = {}) => ({ kind, record_id: 7, field: null, detail: {}, ...patch });

describe("exception kinds", () => {
  it("gives every kind the engine opens a readable label", () => {
    expect(kindLabel("unstable_record")).toBe("Keeps changing");
    expect(kindLabel("reconcile_guard")).toBe("Mass delete held");
    expect(kindLabel("non_owner_change")).toBe("Non-owner change");
    for (const k of EXCEPTION_KINDS) expect(kindLabel(k)).not.toMatch(/_/);
  });
  it("shows a kind it does not know in words rather than hiding it", () => {
    expect(kindLabel("schema_drift")).toBe("Schema drift");
    expect(kindTone("schema_drift")).toBeUndefined();
  });
  it("marks held mass deletes as the most urgent, records that keep changing as a warning", () => {
    expect(kindTone("reconcile_guard")).toBe("danger");
    expect(kindTone("unstable_record")).toBe("warning");
  });
});

describe("handling", () => {
  it("lets a steward choose a value only where a field of a record is in question", () => {
    expect(handling(ex("conflict", { field: "pay_rate" }))).toEqual({ chooseValue: true, dismiss: true, decidedAt: null, perRecord: true });
    expect(handling(ex("validation", { field: "hire_date", record_id: null }))).toEqual({ chooseValue: false, dismiss: false, decidedAt: null, perRecord: true });
  });
  it("has no value to choose for a record that keeps changing, and lets a steward dismiss it", () => {
    expect(handling(ex("unstable_record", { detail: { message: "…", outbox_id: 3, rereads: 5 } }))).toEqual({ chooseValue: false, dismiss: true, decidedAt: null, perRecord: true });
  });
  it("sends a held mass delete to the Systems page, where an admin decides it, and offers no dismiss", () => {
    expect(handling(ex("reconcile_guard", { record_id: null, detail: { run: 12, vanished: 57, linked: 300 } }))).toEqual({ chooseValue: false, dismiss: false, decidedAt: "/systems?run=12", perRecord: false });
    expect(handling(ex("reconcile_guard", { detail: null })).decidedAt).toBe("/systems");
  });
});
