import { describe, expect, it } from "vitest";
import type { Principal, TokenInfo } from "../api/types";
import { nameProblem, normalizeName, revokeBlocked, sharedNames } from "./tokens";

const tok = (id: string, name: string, role: TokenInfo["role"]): TokenInfo => ({ id, name, role, issued_at: "2026-11-30T00:00:00Z", issued_by: null, last_used_at: null });

describe("tokens", () => {
  it("normalises names the way the API does", () => {
    expect(normalizeName("  Stella   Steward ")).toBe("Stella Steward");
    expect(nameProblem("Stella Steward ")).toBeNull();
    expect(nameProblem("   ")).toBe("Enter the person's name.");
    expect(nameProblem("Eve\u0007")).toMatch(/control characters/);
    expect(nameProblem("Eve\nAdmin")).toMatch(/control characters/);
    expect(nameProblem("x".repeat(101))).toMatch(/at most 100/);
  });
  it("never lets a person revoke their own token or the last admin's", () => {
    const me: Principal = { id: "tok_00000001", name: "local-admin", role: "admin" };
    const all = [tok("tok_00000001", "local-admin", "admin"), tok("tok_00000002", "Ana", "admin"), tok("tok_00000003", "Sam", "support")];
    expect(revokeBlocked(all[0]!, me, all)).toMatch(/signed in with/);
    expect(revokeBlocked(all[1]!, me, all)).toBeNull();
    expect(revokeBlocked(all[2]!, me, all)).toBeNull();
    expect(revokeBlocked(all[1]!, me, [all[1]!, all[2]!])).toMatch(/last admin/);
  });
  it("finds one person holding several tokens", () => {
    const all = [tok("tok_1", "Stella Steward", "steward"), tok("tok_2", "stella  STEWARD", "steward"), tok("tok_3", "Kim", "steward")];
    expect([...sharedNames(all)]).toEqual(["stella steward"]);
  });
});
