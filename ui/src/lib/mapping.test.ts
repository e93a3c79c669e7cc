import { describe, expect, it } from "vitest";
import type { Mapping } from "../api/types";
import { changeKind, checkSummary, connect, duplicateTargets, guessDateFormat, problemsByRule, problemsOfRule, readOnlyReason, ruleProblems, saveWarning, suggestTransform, describeRule, ruleDiff, fieldMatches, transformLabel, betterTransform } from "./mapping";

const empty: Mapping = { system: "hris", object: "employee", rules: [] };

describe("suggestTransform", () => {
  it("reads US dates from a sample", () => {
    expect(suggestTransform("date", "03/14/2021")).toEqual({ kind: "date", format: "%m/%d/%Y" });
    expect(guessDateFormat("31/01/2021")).toBe("%d/%m/%Y");
    expect(guessDateFormat("2021-01-31")).toBe("%Y-%m-%d");
  });
  it("takes integer money as minor units and decimals as decimals", () => {
    expect(suggestTransform("money", 8500000)).toEqual({ kind: "money_minor", exponent: 2 });
    expect(suggestTransform("money", "85000.00")).toEqual({ kind: "money_decimal", scale: 2 });
  });
  it("keeps phone formats as the system writes them", () => {
    expect(suggestTransform("phone", "(415) 555-0123")).toMatchObject({ kind: "phone", system_format: "national" });
    expect(suggestTransform("phone", "+14155550123")).toMatchObject({ kind: "phone", system_format: "e164" });
  });
  it("starts an enum table pairing the sample with its code, then the other codes", () => {
    expect(suggestTransform("enum", "Active", ["active", "terminated"])).toEqual({
      kind: "enum",
      table: [
        { system: "Active", canonical: "active" },
        { system: "terminated", canonical: "terminated" },
      ],
    });
  });
  it("copies strings", () => {
    expect(suggestTransform("string", "x")).toEqual({ kind: "copy" });
  });
});

describe("connect", () => {
  it("adds a rule for a new target", () => {
    const r = connect(empty, "email", "work_email", { kind: "copy" });
    expect(r.index).toBe(0);
    expect(r.mapping.rules[0]).toMatchObject({ canonical: ["work_email"], system: ["email"], transform: { kind: "copy" } });
  });
  it("re-points the rule that already yields the target, keeping its transform", () => {
    const m: Mapping = { ...empty, rules: [{ canonical: ["hire_date"], system: ["start"], transform: { kind: "date", format: "%m/%d/%Y" } }] };
    const r = connect(m, "hired_on", "hire_date", { kind: "copy" });
    expect(r.mapping.rules).toHaveLength(1);
    expect(r.mapping.rules[0]).toMatchObject({ system: ["hired_on"], transform: { kind: "date", format: "%m/%d/%Y" } });
    expect(m.rules[0]!.system).toEqual(["start"]);
  });
});

describe("rules", () => {
  it("switching to full_name asks for two canonical fields", () => {
    const r = changeKind({ canonical: ["given_name"], system: ["name"], transform: { kind: "copy" } }, "full_name");
    expect(r.canonical).toEqual(["given_name", "family_name"]);
    expect(r.transform).toEqual({ kind: "full_name" });
  });
  it("a constant yields no canonical field", () => {
    expect(changeKind({ canonical: ["x"], system: ["src"] }, "constant").canonical).toEqual([]);
  });
  it("names irreversible transforms", () => {
    expect(readOnlyReason({ kind: "lowercase" })).toMatch(/one-way/);
    expect(readOnlyReason({ kind: "enum", table: [{ system: "A", canonical: "a" }, { system: "a", canonical: "a" }] })).toMatch(/several/);
    expect(readOnlyReason({ kind: "date", format: "%m/%Y" })).toMatch(/lacks/);
    expect(readOnlyReason({ kind: "copy" })).toBeNull();
  });
  it("finds incomplete rules and duplicate targets", () => {
    expect(ruleProblems({ canonical: [], system: ["x"] }, ["a"])).toEqual(["choose the canonical field"]);
    expect(ruleProblems({ canonical: ["zz"], system: ["x"] }, ["a"])).toEqual(["'zz' is not in the canonical schema"]);
    expect(duplicateTargets({ ...empty, rules: [{ canonical: ["a"], system: ["x"] }, { canonical: ["a"], system: ["y"] }] })).toEqual(["a"]);
  });
});

describe("checking paths against records", () => {
  const p = (rule: number, path: string) => ({ rule, path, message: `${path}: no sample record has it` });
  it("puts each problem next to the rule it concerns", () => {
    const by = problemsByRule([p(0, "emails[type=work].value"), p(2, "phone"), p(0, "name/given")]);
    expect(by.get(0)?.map((x) => x.path)).toEqual(["emails[type=work].value", "name/given"]);
    expect(by.get(2)).toHaveLength(1);
    expect(by.has(1)).toBe(false);
  });
  it("stops flagging a path once the rule reads another, and follows a rule that moved after edits", () => {
    const problems = [p(1, "emails[type=work].value")];
    expect(problemsOfRule(problems, 1, { system: ["emails[type=work].value"] }, false)).toHaveLength(1);
    expect(problemsOfRule(problems, 1, { system: ["emails[type=home].value"] }, true)).toEqual([]);
    // Rule 0 was removed: the old rule 1 is rule 0 now.
    expect(problemsOfRule(problems, 0, { system: ["emails[type=work].value"] }, true)).toHaveLength(1);
    expect(problemsOfRule(problems, 0, { system: ["emails[type=work].value"] }, false)).toEqual([]);
  });
  it("says what the check found", () => {
    expect(checkSummary({ sample_count: 5, problems: [] }, "hris")).toBe("Every path finds a value in at least one of 5 sample records of hris.");
    expect(checkSummary({ sample_count: 5, problems: [p(0, "a"), p(0, "b"), p(1, "c")] }, "hris")).toBe("3 paths match none of 5 sample records of hris (2 connections).");
    expect(checkSummary({ sample_count: 0, problems: [] }, "hris")).toMatch(/no records to check/);
  });
  it("warns before saving only when the last check found problems, and says when the mapping changed since", () => {
    expect(saveWarning(null, false)).toBeNull();
    expect(saveWarning({ sample_count: 5, problems: [] }, false)).toBeNull();
    expect(saveWarning({ sample_count: 5, problems: [p(0, "a")] }, false)).toMatch(/^The check found 1 path that matches no record/);
    expect(saveWarning({ sample_count: 5, problems: [p(0, "a"), p(1, "b")] }, true)).toMatch(/before your latest edits, found 2 paths that match no record/);
  });
});

describe("ruleDiff", () => {
  it("lists the rules a draft adds, removes and changes", () => {
    const saved = { system: "hris", object: "employee", rules: [
      { system: ["title"], canonical: ["job_title"] },
      { system: ["hire_date"], canonical: ["hire_date"], transform: { kind: "date" as const, format: "%m/%d/%Y" } },
      { system: ["dept"], canonical: ["department"] },
    ] };
    const draft = { ...saved, rules: [
      saved.rules[0]!,
      { system: ["hire_date"], canonical: ["hire_date"], transform: { kind: "date" as const, format: "%Y-%m-%d" } },
      { system: ["phone"], canonical: ["work_phone"] },
    ] };
    const d = ruleDiff(saved as never, draft as never);
    expect(d.added.map(describeRule)).toEqual(["phone → work_phone"]);
    expect(d.removed.map(describeRule)).toEqual(["dept → department"]);
    expect(d.changed.map(([a, b]) => `${describeRule(a)} ⇒ ${JSON.stringify(b.transform)}`)).toEqual(['hire_date → hire_date (date) ⇒ {"kind":"date","format":"%Y-%m-%d"}']);
    expect(ruleDiff(saved as never, saved as never)).toEqual({ added: [], removed: [], changed: [] });
  });
});

describe("the table view's helpers", () => {
  it("finds a field by its name or its sample value", () => {
    expect(fieldMatches("zip", "home_address/zip")).toBe(true);
    expect(fieldMatches("dallas", "home_address/city", "Dallas")).toBe(true);
    expect(fieldMatches("dallas", "home_address/city", { city: "Dallas" })).toBe(false);
    expect(fieldMatches("  ", "anything")).toBe(true);
  });
  it("says a transform in a few words", () => {
    expect(transformLabel({ kind: "money_minor", exponent: 2 })).toBe("money in cents");
    expect(transformLabel({ kind: "date", format: "%m/%d/%Y" })).toBe("date %m/%d/%Y");
    expect(transformLabel({ kind: "enum", table: [{ system: "A", canonical: "active" }] })).toBe("enum, 1 value");
    expect(transformLabel(undefined)).toBe("copy");
  });
  it("offers the samples' transform only when it differs in kind or date format", () => {
    const iso = { transform: { kind: "date", format: "%Y-%m-%d" } as const, why: "ISO" };
    expect(betterTransform({ kind: "copy" }, iso)).toBe(iso);
    expect(betterTransform({ kind: "date", format: "%m/%d/%Y" }, iso)).toBe(iso);
    expect(betterTransform({ kind: "date", format: "%Y-%m-%d" }, iso)).toBeNull();
    expect(betterTransform({ kind: "phone", region: "US", system_format: "national" }, { transform: { kind: "copy" }, why: null })).toBeNull();
  });
});
