import { describe, expect, it } from "vitest";
import { pagesFor, rowCount } from "./paged";

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
});

describe("pagesFor", () => {
  it("lists the pages covering a row range", () => {
    expect(pagesFor(0, 10, 200)).toEqual([0]);
    expect(pagesFor(190, 410, 200)).toEqual([0, 1, 2]);
    expect(pagesFor(99990, 99999, 200)).toEqual([499]);
    expect(pagesFor(5, 2, 200)).toEqual([]);
  });
});
