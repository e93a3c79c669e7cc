import { describe, expect, it } from "vitest";
import { can, seesSensitive } from "./roles";

describe("roles", () => {
  it("lets admins do everything", () => {
    for (const a of ["edit_systems", "edit_mappings", "edit_ownership", "resolve_exceptions", "replay_dead_letters", "repair_systems", "decide_reconcile", "pause_sync", "manage_tokens"] as const) {
      expect(can("admin", a)).toBe(true);
    }
  });
  it("gives stewards exceptions and support dead letters, nothing else", () => {
    expect(can("steward", "resolve_exceptions")).toBe(true);
    expect(can("steward", "replay_dead_letters")).toBe(false);
    expect(can("support", "replay_dead_letters")).toBe(true);
    expect(can("support", "resolve_exceptions")).toBe(false);
    expect(can("steward", "edit_mappings")).toBe(false);
    expect(can("support", "pause_sync")).toBe(false);
  });
  it("lets support reconcile and re-push a system, and only admins decide a held mass delete", () => {
    expect(can("support", "repair_systems")).toBe(true);
    expect(can("steward", "repair_systems")).toBe(false);
    expect(can("support", "decide_reconcile")).toBe(false);
    expect(can("steward", "decide_reconcile")).toBe(false);
    expect(can("support", "edit_systems")).toBe(false);
  });
  it("lets only admins list, issue and revoke tokens", () => {
    for (const r of ["steward", "support", "viewer"] as const) expect(can(r, "manage_tokens")).toBe(false);
  });
  it("lets viewers only read", () => {
    expect(can("viewer", "repair_systems")).toBe(false);
    expect(can("viewer", "resolve_exceptions")).toBe(false);
    expect(can(undefined, "resolve_exceptions")).toBe(false);
    expect(seesSensitive("viewer")).toBe(false);
    expect(seesSensitive("support")).toBe(false);
    expect(seesSensitive("steward")).toBe(true);
  });
});
