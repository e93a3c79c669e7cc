// Server-paginated rows for virtualized tables: pages of `limit` rows fetched by offset as the
// visible range needs them, kept in a sparse cache, so a list of 100,000 rows costs only the
// pages a person scrolls past. The API returns no total, so the row count is the exact total
// once a short page has been seen, else a known estimate (e.g. from /api/metrics), else the
// loaded rows plus one more page (the list grows as one scrolls).

import { useCallback, useEffect, useMemo, useRef, useState } from "react";

export const PAGE_SIZE = 200;
const MAX_CACHED_PAGES = 150;

export type FetchPage<T> = (offset: number, limit: number, signal: AbortSignal) => Promise<T[]>;

/** The pure part: how many rows to show, from what has been seen. Exported for tests. */
export function rowCount(opts: {
  exact: number | null;
  estimate: number | null | undefined;
  loadedEnd: number;
  lastPageFull: boolean;
  pageSize: number;
}): number {
  if (opts.exact !== null) return opts.exact;
  const grow = opts.loadedEnd + (opts.lastPageFull ? opts.pageSize : 0);
  const est = opts.estimate ?? 0;
  return Math.max(grow, est > opts.loadedEnd ? est : 0);
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
  exactTotal: number | null;
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
  opts: { estimate?: number | null; pageSize?: number; enabled?: boolean } = {},
): PagedList<T> {
  const pageSize = opts.pageSize ?? PAGE_SIZE;
  const enabled = opts.enabled ?? true;
  const pages = useRef(new Map<number, T[]>());
  const inflight = useRef(new Map<number, AbortController>());
  const exact = useRef<number | null>(null);
  const lastRange = useRef<[number, number]>([0, pageSize - 1]);
  const fetchRef = useRef(fetchPage);
  fetchRef.current = fetchPage;
  const [version, setVersion] = useState(0);
  const [error, setError] = useState<unknown>(null);
  const [firstDone, setFirstDone] = useState(false);
  const generation = useRef(0);

  const load = useCallback(
    (page: number, replace: boolean) => {
      if (inflight.current.has(page)) return;
      if (!replace && pages.current.has(page)) return;
      if (exact.current !== null && page * pageSize >= exact.current && page > 0) return;
      const ctl = new AbortController();
      inflight.current.set(page, ctl);
      const gen = generation.current;
      fetchRef
        .current(page * pageSize, pageSize, ctl.signal)
        .then((rows) => {
          if (gen !== generation.current) return;
          pages.current.set(page, rows);
          if (rows.length < pageSize) {
            exact.current = page * pageSize + rows.length;
            for (const p of [...pages.current.keys()]) if (p * pageSize >= exact.current && p > 0) pages.current.delete(p);
          } else if (exact.current !== null && exact.current <= page * pageSize + rows.length) {
            exact.current = null; // the list grew past what we thought was its end
          }
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
    [pageSize],
  );

  // A new filter (key) starts over.
  useEffect(() => {
    generation.current++;
    for (const c of inflight.current.values()) c.abort();
    inflight.current.clear();
    pages.current.clear();
    exact.current = null;
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
    const count = rowCount({ exact: exact.current, estimate: opts.estimate, loadedEnd, lastPageFull, pageSize });
    return {
      count,
      exactTotal: exact.current,
      estimated: exact.current === null && !!opts.estimate && count === opts.estimate,
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
