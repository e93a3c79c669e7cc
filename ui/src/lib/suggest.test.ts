import { describe, expect, it } from "vitest";
import { dateFormatOf, matchCode, suggestFromSamples } from "./suggest";

describe("dateFormatOf", () => {
  it("tells day-first from month-first by a day above 12, in any sample", () => {
    expect(dateFormatOf(["03/04/2021", "25/12/2020"]).format).toBe("%d/%m/%Y");
    expect(dateFormatOf(["03/04/2021", "12/25/2020"]).format).toBe("%m/%d/%Y");
    expect(dateFormatOf(["03/04/2021"]).why).toMatch(/no sample has a day above 12/);
  });
  it("reads ISO, compact and dotted dates, and says when it cannot", () => {
    expect(dateFormatOf(["2021-03-04"]).format).toBe("%Y-%m-%d");
    expect(dateFormatOf(["20210304"]).format).toBe("%Y%m%d");
    expect(dateFormatOf(["04.03.2021"]).format).toBe("%d.%m.%Y");
    expect(dateFormatOf(["March 4th"]).why).toMatch(/no date format known/);
  });
});

describe("suggestFromSamples", () => {
  it("reads money as a decimal when any sample has decimals, else as minor units, and says why", () => {
    expect(suggestFromSamples({ type: "money" }, "salary", [80500, "91000.50"]).transform).toEqual({ kind: "money_decimal", scale: 2 });
    const cents = suggestFromSamples({ type: "money" }, "salary_cents", [8050000]);
    expect(cents).toEqual({ transform: { kind: "money_minor", exponent: 2 }, why: "the name says minor units" });
    expect(suggestFromSamples({ type: "money" }, "pay", [80500]).why).toMatch(/If they are whole currency units/);
  });
  it("keeps phones as the system writes them", () => {
    expect(suggestFromSamples({ type: "phone" }, "tel", ["+14155550101", "+442071234567"]).transform).toMatchObject({ system_format: "e164" });
    const national = suggestFromSamples({ type: "phone" }, "tel", ["(415) 555-0101", "415.555.0102"]);
    expect(national.transform).toMatchObject({ system_format: "national", region: "US" });
    expect(national.why).toMatch(/US/);
  });
  it("pairs each enum value the system uses with the code it means, and names the ones it cannot", () => {
    const codes = ["active", "on_leave", "terminated", "full_time"];
    const s = suggestFromSamples({ type: "enum", values: codes }, "status", ["Active", "On Leave", "FT", "Retired", "Active"]);
    expect(s.transform).toEqual({
      kind: "enum",
      table: [
        { system: "Active", canonical: "active" },
        { system: "On Leave", canonical: "on_leave" },
        { system: "FT", canonical: "full_time" },
        { system: "terminated", canonical: "terminated" },
      ],
    });
    expect(s.why).toBe('3 sample values paired with codes; no code found for "Retired": add them to the table');
  });
  it("maps booleans to active and terminated", () => {
    expect(matchCode(true, ["active", "terminated"])).toBe("active");
    expect(matchCode(false, ["active", "terminated"])).toBe("terminated");
    expect(matchCode("xy", ["active"])).toBeNull();
  });
  it("copies text", () => {
    expect(suggestFromSamples({ type: "string" }, "title", ["Engineer"])).toEqual({ transform: { kind: "copy" }, why: null });
  });
});
