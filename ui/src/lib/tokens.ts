// Tokens as the Tokens page shows them: names checked the way the API checks them (trimmed,
// whitespace collapsed, no control characters), and which token a person may not revoke.

import type { Principal, TokenInfo } from "../api/types";

/** The name as the API stores it: trimmed, runs of whitespace made one space. */
export function normalizeName(name: string): string {
  return name.trim().split(/\s+/).filter(Boolean).join(" ");
}

/** Why a name would be refused (422), or null when it is fine. */
export function nameProblem(name: string): string | null {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return "A name may not hold control characters.";
  const n = normalizeName(name);
  if (!n) return "Enter the person's name.";
  if ([...n].length > 100) return "A name is at most 100 characters.";
  return null;
}

/** Why a token cannot be revoked from this session, or null when it can. */
export function revokeBlocked(t: TokenInfo, me: Principal, all: TokenInfo[]): string | null {
  if (t.id === me.id) return "This is the token you are signed in with: revoke it from another admin's token.";
  if (t.role === "admin" && all.filter((x) => x.role === "admin").length <= 1) return "The last admin token cannot be revoked.";
  return null;
}

/** The same person holding more than one token (by normalised, case-folded name): they still count as one approver. */
export function sharedNames(all: TokenInfo[]): Set<string> {
  const seen = new Map<string, number>();
  for (const t of all) {
    const k = normalizeName(t.name).toLowerCase();
    seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  return new Set([...seen].filter(([, n]) => n > 1).map(([k]) => k));
}
