// What each role may do, as the API checks it (src/api/mod.rs: `who.require(...)`, admins may
// do everything). The UI hides or disables what the role may not do, and still shows the API's
// message when a call is refused anyway.

import type { Role } from "../api/types";

export type Action =
  | "edit_systems" // PUT /api/systems, POST /test, GET /discover, PUT /api/secrets
  | "edit_mappings" // PUT /api/mappings, POST /api/mappings/preview, POST /api/mappings/check
  | "edit_ownership" // PUT /api/policies
  | "resolve_exceptions" // resolve, bulk-resolve, dismiss, match
  | "replay_dead_letters" // replay, replay matching, re-plan, discard
  | "repair_systems" // POST /api/systems/{id}/reconcile, POST /api/systems/{id}/repush
  | "decide_reconcile" // POST /api/reconciliations/{id}/confirm and /dismiss
  | "pause_sync" // PUT /api/engine
  | "enable_writes" // POST /api/systems/{id}/enable, POST /api/systems/{id}/breaker/confirm and /discard
  | "restore_config" // POST /api/config/history/{id}/restore
  | "manage_tokens"; // GET, POST /api/tokens, DELETE /api/tokens/{id}

const ALLOWED: Record<Action, Role[]> = {
  edit_systems: ["admin"],
  edit_mappings: ["admin"],
  edit_ownership: ["admin"],
  resolve_exceptions: ["admin", "steward"],
  replay_dead_letters: ["admin", "support"],
  repair_systems: ["admin", "support"],
  decide_reconcile: ["admin"],
  pause_sync: ["admin"],
  enable_writes: ["admin"],
  restore_config: ["admin"],
  manage_tokens: ["admin"],
};

export function can(role: Role | undefined, action: Action): boolean {
  return role !== undefined && ALLOWED[action].includes(role);
}

/** Whether the role sees sensitive values unmasked (the API masks them for the others). */
export function seesSensitive(role: Role | undefined): boolean {
  return role === "admin" || role === "steward";
}

export const ROLE_LABEL: Record<Role, string> = {
  admin: "Admin",
  steward: "Data steward",
  support: "Support",
  viewer: "Viewer",
  scrape: "Metrics scraper (/metrics only)",
};

/** Why an action is unavailable, for tooltips on disabled controls. */
export function whyNot(role: Role | undefined, action: Action): string {
  const who = ALLOWED[action].map((r) => ROLE_LABEL[r].toLowerCase()).join(" or ");
  return `Only ${who} roles may do this${role ? ` (you are ${ROLE_LABEL[role].toLowerCase()})` : ""}.`;
}
