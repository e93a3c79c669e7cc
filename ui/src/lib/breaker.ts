// The circuit breaker in words: why a system's writes are held, for the banner, the
// dashboard and the plan page. Pure, so it is tested without a server.

import type { BreakerTrip } from "../api/types";

function window(secs: number): string {
  if (secs < 120) return `${secs} s`;
  if (secs < 7200) return `${Math.floor(secs / 60)} min`;
  return `${Math.floor(secs / 3600)} h`;
}

/** "15 of 100 records (15%) would be overwritten or deleted within 5 min; the limit is 10%". */
export function tripReason(t: Pick<BreakerTrip, "overwrites" | "deletes" | "linked" | "max_share" | "window_secs">): string {
  const touched = t.overwrites + t.deletes;
  const share = t.linked > 0 ? ` (${Math.round((100 * touched) / t.linked)}%)` : "";
  return `${touched.toLocaleString("en-US")} of ${t.linked.toLocaleString("en-US")} records${share} would be overwritten or deleted within ${window(t.window_secs)}; the limit is ${Math.round(100 * t.max_share)}%`;
}
