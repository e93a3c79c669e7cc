import { describe, expect, it } from "vitest";
import { formatPilot, parsePilot } from "./pilot";

describe("pilot scope", () => {
  it("reads fields and values, and writes them back the same way", () => {
    const read = parsePilot(" employee_number = E1001, E1002 ; department=Finance ");
    expect(read).toEqual({ scope: { employee_number: ["E1001", "E1002"], department: ["Finance"] } });
    expect(formatPilot("scope" in read ? read.scope : null)).toBe("employee_number=E1001,E1002; department=Finance");
  });
  it("an empty line is no scope; a field without values or a bad field is an error", () => {
    expect(parsePilot("  ")).toEqual({ scope: null });
    expect(parsePilot("department=")).toEqual({ error: "department: give at least one value" });
    expect("error" in parsePilot("Finance")).toBe(true);
  });
});
