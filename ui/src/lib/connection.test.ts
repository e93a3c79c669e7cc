import { describe, expect, it } from "vitest";
import { pageSummary } from "./connection";

describe("pageSummary", () => {
  it("counts what the page held, not the samples shown", () => {
    expect(pageSummary({ page_count: 25, sample_count: 5, total: 55, more_pages: true, object: "employee" })).toBe(
      "The first page of employee held 25 records of 55; 5 shown as samples",
    );
    expect(pageSummary({ page_count: 25, sample_count: 5, total: null, more_pages: true })).toBe("The first page held 25 records (more pages follow); 5 shown as samples");
    expect(pageSummary({ page_count: 1, sample_count: 1, total: null, more_pages: false })).toBe("The first page held 1 record");
  });
});
