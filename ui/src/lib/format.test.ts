import { describe, expect, it } from "vitest";
import { MASK, ageSeconds, containsMasked, formatAge, isMasked, parseTyped, sameValue, showValue, formatMoney, timeTicks } from "./format";

describe("showValue (the masking renderer)", () => {
  it("renders the API's mask as masked, never as the value", () => {
    const s = showValue(MASK);
    expect(s.kind).toBe("masked");
    expect(s.text).toBe(MASK);
    expect(s.label).toMatch(/hidden/);
    expect(isMasked("••••")).toBe(true);
  });
  it("does not mistake other bullets or strings for the mask", () => {
    expect(showValue("•••").kind).toBe("string");
    expect(showValue("secret").kind).toBe("string");
    expect(isMasked(null)).toBe(false);
  });
  it("finds the mask anywhere inside a request body, and nothing else", () => {
    expect(containsMasked({ name: "Ana", bank: { account: MASK } })).toBe(true);
    expect(containsMasked({ emails: [{ type: "work", value: MASK }] })).toBe(true);
    expect(containsMasked({ name: "Ana", note: "•••" })).toBe(false);
    expect(containsMasked(null)).toBe(false);
  });
  it("renders null and missing as empty", () => {
    expect(showValue(null)).toMatchObject({ kind: "null", text: "—" });
    expect(showValue(undefined).kind).toBe("null");
  });
  it("keeps numbers, booleans and JSON distinct from strings", () => {
    expect(showValue(85000)).toMatchObject({ kind: "number", text: "85000" });
    expect(showValue("85000")).toMatchObject({ kind: "string", text: "85000" });
    expect(showValue(true)).toMatchObject({ kind: "bool", text: "true" });
    expect(showValue({ a: 1 })).toMatchObject({ kind: "json", text: '{"a":1}' });
  });
});

describe("sameValue", () => {
  it("compares JSON values structurally", () => {
    expect(sameValue("a", "a")).toBe(true);
    expect(sameValue({ a: [1] }, { a: [1] })).toBe(true);
    expect(sameValue("1", 1)).toBe(false);
    expect(sameValue(null, undefined)).toBe(false);
  });
});

describe("ages", () => {
  it("formats coarse ages", () => {
    expect(formatAge(5)).toBe("5 s");
    expect(formatAge(125)).toBe("2 min");
    expect(formatAge(7200)).toBe("2 h");
    expect(formatAge(200000)).toBe("2 d");
    expect(formatAge(Number.NaN)).toBe("—");
  });
  it("measures from an RFC 3339 time", () => {
    const now = Date.parse("2026-01-01T00:01:00Z");
    expect(ageSeconds("2026-01-01T00:00:00Z", now)).toBe(60);
    expect(Number.isNaN(ageSeconds("nope", now))).toBe(true);
  });
});

describe("parseTyped", () => {
  it("types the value by the canonical field type", () => {
    expect(parseTyped("42", "number")).toBe(42);
    expect(parseTyped("42", "string")).toBe("42");
    expect(parseTyped("85000.50", "money")).toBe("85000.50");
    expect(parseTyped(" yes ", "bool")).toBe(true);
    expect(parseTyped("+14155550123", "phone")).toBe("+14155550123");
  });
  it("reads JSON when it is JSON and text otherwise, with no type", () => {
    expect(parseTyped("42")).toBe(42);
    expect(parseTyped('"42"')).toBe("42");
    expect(parseTyped("+14155550123")).toBe("+14155550123");
    expect(parseTyped("Mary Ann")).toBe("Mary Ann");
  });
  it("reads blank as null", () => {
    expect(parseTyped("  ", "string")).toBeNull();
  });
});

describe("formatMoney", () => {
  it("formats a canonical decimal in its currency", () => {
    expect(formatMoney("80500", "USD", "en-US")).toBe("$80,500.00");
    expect(formatMoney("85000.5", "EUR", "en-US")).toBe("€85,000.50");
    expect(formatMoney(1200, "GBP", "en-GB")).toBe("£1,200.00");
  });
  it("keeps every digit of a large amount", () => {
    expect(formatMoney("12345678901234567.89", "USD", "en-US")).toBe("$12,345,678,901,234,567.89");
  });
  it("gives nothing to format without a currency code or a decimal", () => {
    expect(formatMoney("80500", null)).toBeNull();
    expect(formatMoney("80500", "dollars")).toBeNull();
    expect(formatMoney("••••", "USD")).toBeNull();
    expect(formatMoney("eighty", "USD")).toBeNull();
    expect(formatMoney(null, "USD")).toBeNull();
  });
});

describe("timeTicks", () => {
  it("labels ticks by hour and minute within two days, by day beyond", () => {
    const t = Date.parse("2026-03-01T13:05:00Z") / 1000;
    expect(timeTicks([t], 3600, "en-GB")[0]).toMatch(/^\d{2}:\d{2}$/);
    expect(timeTicks([t], 7 * 86_400, "en-GB")[0]).toMatch(/^\d{1,2} Mar$/);
  });
});
