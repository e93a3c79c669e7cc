// Server-paginated rows for virtualized tables: pages of `limit` rows fetched by offset as the
// visible range needs them, kept in a sparse cache, so a list of 100,000 rows costs only the
// pages a person scrolls past. The lists answer with `X-Total-Count`, so the table is sized
// exactly from the first page (the audit counts only up to a cap: then it is "at least" that
// many and grows past it as one scrolls). Without a total (a cross-origin page that cannot read
// the header), the row count is the exact total once a short page has been seen, else a known
// estimate (e.g. from /api/metrics), else the loaded rows plus one more page.

import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import type { Listed } from "../api/client";
import { formatCount } from "./format";

export const PAGE_SIZE = 200;
const MAX_CACHED_PAGES = 150;

/** The API counts audit entries up to this many; a total of exactly this means "at least". */
export const AUDIT_COUNT_CAP = 100_000;

/** A page of rows, with the list's total when the answer gave one. */
export type FetchPage<T> = (offset: number, limit: number, signal: AbortSignal) => Promise<T[] | Listed<T>>;

/** What the server said of the total: exactly `count`, or (counted up to a cap) at least `count`. */
export interface ServerTotal {
  count: number;
  atLeast: boolean;
}

/** A total from `X-Total-Count`; one that reached the cap is a floor. Exported for tests. */
export function serverTotal(total: number | null | undefined, cap?: number | null): ServerTotal | null {
  if (total === null || total === undefined || !Number.isFinite(total) || total < 0) return null;
  return { count: total, atLeast: cap !== null && cap !== undefined && total >= cap };
}

/** The pure part: how many rows to show, from what has been seen. Exported for tests. */
export function rowCount(opts: {
  exact: number | null;
  total?: ServerTotal | null;
  estimate: number | null | undefined;
  loadedEnd: number;
  lastPageFull: boolean;
  pageSize: number;
}): number {
  const grow = opts.loadedEnd + (opts.lastPageFull ? opts.pageSize : 0);
  if (opts.total) {
    if (!opts.total.atLeast) return opts.total.count;
    // At least `count`: past it, the list grows as one scrolls until a short page ends it.
    return opts.exact ?? Math.max(opts.total.count, grow);
  }
  if (opts.exact !== null) return opts.exact;
  const est = opts.estimate ?? 0;
  return Math.max(grow, est > opts.loadedEnd ? est : 0);
}

/**
 * What a table's footer says: the rows in view and of how many, e.g. "Showing 1–18 of
 * 12,345 rows", "… of 100,000+ rows" (a capped count), "… of about 4,000 rows" (an estimate).
 * `visible` is the first and last row index in view. Exported for tests.
 */
export function countText(
  list: { count: number; exactTotal: number | null; atLeast: number | null; estimated: boolean; loadedRows: number },
  visible: [number, number] | null,
): { range: string | null; total: string } {
  const rows = (n: number, plus = "") => `${formatCount(n)}${plus} ${n === 1 && !plus ? "row" : "rows"}`;
  const total =
    list.exactTotal !== null
      ? rows(list.exactTotal)
      : list.atLeast !== null
        ? rows(list.atLeast, "+")
        : list.estimated
          ? `about ${rows(list.count)} (${formatCount(list.loadedRows)} loaded)`
          : list.loadedRows > 0
            ? `${rows(list.loadedRows, "+")} loaded; scroll for more`
            : "";
  let range: string | null = null;
  if (visible && list.count > 0 && total) {
    const first = Math.max(0, Math.min(visible[0], list.count - 1));
    const last = Math.max(first, Math.min(visible[1], list.count - 1));
    range = `${formatCount(first + 1)}–${formatCount(last + 1)}`;
  }
  return { range, total };
}

/** Page indexes covering rows [start, end]. */
export function pagesFor(start: number, end: number, pageSize: number): number[] {
  if (end < start) return [];
  const first = Math.floor(Math.max(0, start) / pageSize);
  const last = Math.floor(Math.max(0, end) / pageSize);
  const out: number[] = [];
  for (let p = first; p <= last; p++) out.push(p);
  return out;
}

export interface PagedList<T> {
  count: number;
  /** How many rows match, exactly (the server's total, or the end of a short page). */
  exactTotal: number | null;
  /** The server counted up to a cap: at least this many rows match (null otherwise). */
  atLeast: number | null;
  /** The count comes from an estimate (the total is not known exactly yet). */
  estimated: boolean;
  loadedRows: number;
  /** The first page is loading (show a loading state rather than an empty one). */
  initialLoading: boolean;
  error: unknown;
  rowAt(index: number): T | undefined;
  ensure(start: number, end: number): void;
  reload(): void;
  /** Every row loaded so far, in order (for "select all loaded"). */
  loaded(): T[];
}

export function usePagedList<T>(
  key: string,
  fetchPage: FetchPage<T>,
  opts: { estimate?: number | null; pageSize?: number; enabled?: boolean; totalCap?: number | null } = {},
): PagedList<T> {
  const pageSize = opts.pageSize ?? PAGE_SIZE;
  const enabled = opts.enabled ?? true;
  const totalCap = opts.totalCap ?? null;
  const pages = useRef(new Map<number, T[]>());
  const inflight = useRef(new Map<number, AbortController>());
  const exact = useRef<number | null>(null);
  // The newest total the server gave (by when its request was sent, as pages may answer out of order).
  const total = useRef<ServerTotal | null>(null);
  const totalSeq = useRef(0);
  const seq = useRef(0);
  const lastRange = useRef<[number, number]>([0, pageSize - 1]);
  const fetchRef = useRef(fetchPage);
  fetchRef.current = fetchPage;
  const [version, setVersion] = useState(0);
  const [error, setError] = useState<unknown>(null);
  const [firstDone, setFirstDone] = useState(false);
  const generation = useRef(0);

  /** Where the list ends, when known exactly. */
  const knownEnd = useCallback((): number | null => (total.current && !total.current.atLeast ? total.current.count : exact.current), []);

  const load = useCallback(
    (page: number, replace: boolean) => {
      if (inflight.current.has(page)) return;
      if (!replace && pages.current.has(page)) return;
      const end = knownEnd();
      if (end !== null && page * pageSize >= end && page > 0) return;
      const ctl = new AbortController();
      inflight.current.set(page, ctl);
      const gen = generation.current;
      const mySeq = ++seq.current;
      fetchRef
        .current(page * pageSize, pageSize, ctl.signal)
        .then((answer) => {
          if (gen !== generation.current) return;
          const rows = Array.isArray(answer) ? answer : answer.items;
          const t = Array.isArray(answer) ? null : serverTotal(answer.total, totalCap);
          if (t && mySeq >= totalSeq.current) {
            total.current = t;
            totalSeq.current = mySeq;
          }
          pages.current.set(page, rows);
          if (rows.length < pageSize) {
            exact.current = page * pageSize + rows.length;
          } else if (exact.current !== null && exact.current <= page * pageSize + rows.length) {
            exact.current = null; // the list grew past what we thought was its end
          }
          const last = knownEnd();
          if (last !== null) for (const p of [...pages.current.keys()]) if (p * pageSize >= last && p > 0) pages.current.delete(p);
          if (pages.current.size > MAX_CACHED_PAGES) {
            const [s, e] = lastRange.current;
            const mid = (s + e) / 2 / pageSize;
            const far = [...pages.current.keys()].sort((a, b) => Math.abs(b - mid) - Math.abs(a - mid));
            for (const p of far.slice(0, pages.current.size - MAX_CACHED_PAGES)) pages.current.delete(p);
          }
          setError(null);
        })
        .catch((e: unknown) => {
          if (gen !== generation.current) return;
          if (e instanceof DOMException && e.name === "AbortError") return;
          setError(e);
        })
        .finally(() => {
          if (gen !== generation.current) return;
          inflight.current.delete(page);
          if (page === 0) setFirstDone(true);
          setVersion((v) => v + 1);
        });
    },
    [pageSize, totalCap, knownEnd],
  );

  // A new filter (key) starts over.
  useEffect(() => {
    generation.current++;
    for (const c of inflight.current.values()) c.abort();
    inflight.current.clear();
    pages.current.clear();
    exact.current = null;
    total.current = null;
    totalSeq.current = 0;
    lastRange.current = [0, pageSize - 1];
    setError(null);
    setFirstDone(false);
    setVersion((v) => v + 1);
    if (enabled) load(0, false);
  }, [key, enabled, load, pageSize]);

  const ensure = useCallback(
    (start: number, end: number) => {
      if (!enabled) return;
      lastRange.current = [start, end];
      for (const p of pagesFor(start, end, pageSize)) load(p, false);
    },
    [enabled, load, pageSize],
  );

  const reload = useCallback(() => {
    if (!enabled) return;
    const [s, e] = lastRange.current;
    const keep = new Set(pagesFor(s, e, pageSize));
    keep.add(0);
    for (const p of [...pages.current.keys()]) if (!keep.has(p)) pages.current.delete(p);
    exact.current = null;
    for (const p of keep) load(p, true);
  }, [enabled, load, pageSize]);

  return useMemo(() => {
    void version;
    let loadedEnd = 0;
    let lastPageFull = true;
    let loadedRows = 0;
    const keys = [...pages.current.keys()].sort((a, b) => a - b);
    for (const p of keys) {
      const rows = pages.current.get(p) ?? [];
      loadedRows += rows.length;
      const end = p * pageSize + rows.length;
      if (end >= loadedEnd) {
        loadedEnd = end;
        lastPageFull = rows.length === pageSize;
      }
    }
    const t = total.current;
    const count = rowCount({ exact: exact.current, total: t, estimate: opts.estimate, loadedEnd, lastPageFull, pageSize });
    return {
      count,
      exactTotal: t && !t.atLeast ? t.count : exact.current,
      atLeast: t?.atLeast && exact.current === null ? t.count : null,
      estimated: t === null && exact.current === null && !!opts.estimate && count === opts.estimate,
      loadedRows,
      initialLoading: enabled && !firstDone,
      error,
      rowAt: (i: number) => pages.current.get(Math.floor(i / pageSize))?.[i % pageSize],
      ensure,
      reload,
      loaded: () => keys.flatMap((p) => pages.current.get(p) ?? []),
    };
  }, [version, opts.estimate, pageSize, enabled, firstDone, error, ensure, reload]);
}
