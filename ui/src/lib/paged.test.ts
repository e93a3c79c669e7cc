import { describe, expect, it } from "vitest";
import { AUDIT_COUNT_CAP, countText, pagesFor, rowCount, serverTotal } from "./paged";

describe("rowCount", () => {
  it("is exact once a short page was seen", () => {
    expect(rowCount({ exact: 1234, estimate: 100000, loadedEnd: 1234, lastPageFull: false, pageSize: 200 })).toBe(1234);
  });
  it("uses an estimate to let one scroll to rows not loaded yet", () => {
    expect(rowCount({ exact: null, estimate: 100000, loadedEnd: 200, lastPageFull: true, pageSize: 200 })).toBe(100000);
  });
  it("grows by a page as one scrolls when nothing is known", () => {
    expect(rowCount({ exact: null, estimate: null, loadedEnd: 400, lastPageFull: true, pageSize: 200 })).toBe(600);
  });
  it("ignores an estimate smaller than what is loaded", () => {
    expect(rowCount({ exact: null, estimate: 10, loadedEnd: 400, lastPageFull: true, pageSize: 200 })).toBe(600);
  });
  it("is the server's total from the first page, over any estimate", () => {
    const total = { count: 5731, atLeast: false };
    expect(rowCount({ exact: null, total, estimate: 100000, loadedEnd: 200, lastPageFull: true, pageSize: 200 })).toBe(5731);
    expect(rowCount({ exact: null, total: { count: 0, atLeast: false }, estimate: 12, loadedEnd: 0, lastPageFull: false, pageSize: 200 })).toBe(0);
  });
  it("prefers the newest server total to the end of an older short page", () => {
    expect(rowCount({ exact: 1000, total: { count: 1010, atLeast: false }, estimate: null, loadedEnd: 1000, lastPageFull: false, pageSize: 200 })).toBe(1010);
  });
  it("treats a capped total as a floor the list grows past", () => {
    const total = { count: AUDIT_COUNT_CAP, atLeast: true };
    expect(rowCount({ exact: null, total, estimate: null, loadedEnd: 200, lastPageFull: true, pageSize: 200 })).toBe(100000);
    expect(rowCount({ exact: null, total, estimate: null, loadedEnd: 100000, lastPageFull: true, pageSize: 200 })).toBe(100200);
    expect(rowCount({ exact: 100150, total, estimate: null, loadedEnd: 100150, lastPageFull: false, pageSize: 200 })).toBe(100150);
  });
});

describe("serverTotal", () => {
  it("is exact below the cap and a floor at it", () => {
    expect(serverTotal(5731)).toEqual({ count: 5731, atLeast: false });
    expect(serverTotal(99999, AUDIT_COUNT_CAP)).toEqual({ count: 99999, atLeast: false });
    expect(serverTotal(100000, AUDIT_COUNT_CAP)).toEqual({ count: 100000, atLeast: true });
    expect(serverTotal(100000)).toEqual({ count: 100000, atLeast: false });
  });
  it("is null without a usable total", () => {
    expect(serverTotal(null, AUDIT_COUNT_CAP)).toBeNull();
    expect(serverTotal(undefined)).toBeNull();
    expect(serverTotal(-1)).toBeNull();
    expect(serverTotal(Number.NaN)).toBeNull();
  });
});

describe("countText", () => {
  const list = { count: 12345, exactTotal: 12345, atLeast: null, estimated: false, loadedRows: 200 };
  it("says which rows are in view, of how many", () => {
    expect(countText(list, [0, 17])).toEqual({ range: "1–18", total: "12,345 rows" });
    expect(countText(list, [12340, 12344])).toEqual({ range: "12,341–12,345", total: "12,345 rows" });
    expect(countText({ ...list, count: 1, exactTotal: 1 }, [0, 0])).toEqual({ range: "1–1", total: "1 row" });
  });
  it("shows a capped count as at least", () => {
    expect(countText({ count: 100000, exactTotal: null, atLeast: 100000, estimated: false, loadedRows: 200 }, [0, 17])).toEqual({ range: "1–18", total: "100,000+ rows" });
  });
  it("falls back to an estimate or the rows loaded without a total", () => {
    expect(countText({ count: 4000, exactTotal: null, atLeast: null, estimated: true, loadedRows: 200 }, [0, 9]).total).toBe("about 4,000 rows (200 loaded)");
    expect(countText({ count: 400, exactTotal: null, atLeast: null, estimated: false, loadedRows: 200 }, [0, 9]).total).toBe("200+ rows loaded; scroll for more");
  });
  it("names no range when nothing is in view or the list is empty", () => {
    expect(countText(list, null).range).toBeNull();
    expect(countText({ ...list, count: 0, exactTotal: 0 }, [0, 0])).toEqual({ range: null, total: "0 rows" });
  });
  it("keeps the range inside the list", () => {
    expect(countText({ ...list, count: 10, exactTotal: 10 }, [5, 30]).range).toBe("6–10");
  });
});

describe("pagesFor", () => {
  it("lists the pages covering a row range", () => {
    expect(pagesFor(0, 10, 200)).toEqual([0]);
    expect(pagesFor(190, 410, 200)).toEqual([0, 1, 2]);
    expect(pagesFor(99990, 99999, 200)).toEqual([499]);
    expect(pagesFor(5, 2, 200)).toEqual([]);
  });
});
