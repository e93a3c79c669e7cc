// A system's state as the engine judged it (see the dashboard's per-system health): the pill
// each state gets, worst first, so "healthy" is only ever shown for what the engine called
// healthy.

import type { SystemHealth } from "../api/types";

export type SystemState = NonNullable<SystemHealth["state"]>;

export const STATE_TONE: Record<SystemState, "danger" | "warning" | "success" | "info" | "accent"> = {
  failing: "danger",
  stuck: "danger",
  retrying: "warning",
  paused: "warning",
  held: "danger",
  planning: "accent",
  reading: "info",
  writing: "info",
  healthy: "success",
};

/** The state and the sentence under it, for a title or a line of text. */
export function describeHealth(h: Pick<SystemHealth, "state" | "reason" | "last_error">): string {
  const state = h.state ?? "healthy";
  const why = h.reason ? `: ${h.reason}` : "";
  const error = h.last_error ? ` Last error: ${h.last_error}` : "";
  return `${state.charAt(0).toUpperCase()}${state.slice(1)}${why}.${error}`;
}
