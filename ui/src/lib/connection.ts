// A connection test's reading in words. Pure, so it is tested without a server.

import { formatCount } from "./format";

/** "The first page of employee held 25 records of 55; 5 shown as samples". */
export function pageSummary(r: { page_count?: number; sample_count: number; total?: number | null; more_pages?: boolean; object?: string | null }): string {
  const held = r.page_count ?? r.sample_count;
  const records = (n: number) => `${formatCount(n)} ${n === 1 ? "record" : "records"}`;
  const of = r.total != null ? ` of ${formatCount(r.total)}` : r.more_pages ? " (more pages follow)" : "";
  const object = r.object ? ` of ${r.object}` : "";
  const shown = r.sample_count < held ? `; ${formatCount(r.sample_count)} shown as samples` : "";
  return `The first page${object} held ${records(held)}${of}${shown}`;
}
