import { describe, expect, it } from "vitest";
import type { FieldDef } from "../api/types";
import { autoMap, nameScore, normalValue, shapeScore, SUGGEST_AT, tokens } from "./automap";
import { flatten } from "./syspath";

const f = (name: string, type: FieldDef["type"], values?: string[]): FieldDef => ({ name, type, ...(values ? { values } : {}) });
// The canonical employee, as the demo declares it.
const canonical: FieldDef[] = [
  f("employee_number", "string"),
  f("given_name", "string"),
  f("family_name", "string"),
  f("preferred_name", "string"),
  f("work_email", "email"),
  f("personal_email", "email"),
  f("work_phone", "phone"),
  f("mobile_phone", "phone"),
  f("home_address_line1", "string"),
  f("home_address_line2", "string"),
  f("home_city", "string"),
  f("home_region", "string"),
  f("home_postal_code", "string"),
  f("home_country", "string"),
  f("employment_status", "enum", ["active", "on_leave", "terminated", "pending"]),
  f("hire_date", "date"),
  f("termination_date", "date"),
  f("job_title", "string"),
  f("department", "string"),
  f("pay_rate", "money"),
  f("pay_currency", "currency"),
  f("pay_frequency", "enum", ["weekly", "biweekly", "semimonthly", "monthly"]),
  f("bank_account_number", "string"),
  f("bank_routing_number", "string"),
];

// Records as a payroll system returns them: its own names, cents, 1/0 for a state.
const payroll = (n: number) => ({
  id: `P${n}`,
  emp_no: `E10${n}`,
  first_name: ["Ada", "Grace", "Alan", "Edsger"][n % 4],
  last_name: ["Lovelace", "Hopper", "Turing", "Dijkstra"][n % 4],
  email: `person${n}@acme.example`,
  phone: `+1415555010${n}`,
  home_address: { street1: `${n} Main St`, city: "Springfield", state: "IL", zip: `6270${n}`, country: "US" },
  state: n % 3 === 0 ? 0 : 1,
  hire_date: `2021-0${n + 1}-1${n}`,
  salary_cents: 8_050_000 + n,
  currency: "USD",
  pay_frequency: "biweekly",
  bank: { routing_number: `02100002${n}`, account_number: `00012345${n}` },
  row_version: n + 3,
  modified_at: "2026-11-30T10:00:00Z",
});
const samples = [1, 2, 3, 4, 5, 6].map(payroll);
const systemFields = flatten(samples[0]!);

describe("names", () => {
  it("reads synonyms, camel case and parent paths", () => {
    expect(tokens("emp_no")).toEqual(["employee", "number"]);
    expect(tokens("lastName")).toEqual(["family", "name"]);
    expect(tokens("home_address/zip")).toEqual(["home", "address", "postal"]);
    expect(nameScore("emp_no", "employee_number")).toBe(1);
    expect(nameScore("home_address/zip", "home_postal_code")).toBeGreaterThan(0.6);
    expect(nameScore("row_version", "employee_number")).toBe(0);
  });
});

describe("values", () => {
  it("compares values in one form: dates, phones, numbers, text", () => {
    expect(normalValue("03/15/2021")).toBe(normalValue("2021-03-15"));
    expect(normalValue("(415) 555-0101")).toBe(normalValue("+14155550101"));
    expect(normalValue("80500.00")).toBe(normalValue(80500));
    expect(normalValue("On Leave")).toBe(normalValue("on_leave"));
    expect(normalValue("••••")).toBeNull();
  });
  it("judges whether values have a field's shape", () => {
    expect(shapeScore(f("hire_date", "date"), ["2021-01-01", "03/04/2020"])).toBe(1);
    expect(shapeScore(f("hire_date", "date"), ["Engineer"])).toBe(0);
    expect(shapeScore(f("work_email", "email"), ["a@b.example"])).toBe(1);
  });
});

describe("autoMap", () => {
  it("maps a payroll's own names to the canonical fields, each once, with transforms from the samples", () => {
    const got = autoMap({ canonical, systemFields, samples, golden: [], rules: [] });
    const pairs = Object.fromEntries(got.map((s) => [s.path, s.field]));
    expect(pairs).toMatchObject({
      emp_no: "employee_number",
      first_name: "given_name",
      last_name: "family_name",
      email: "work_email",
      "home_address/street1": "home_address_line1",
      "home_address/city": "home_city",
      "home_address/state": "home_region",
      phone: "work_phone",
      "home_address/zip": "home_postal_code",
      "home_address/country": "home_country",
      hire_date: "hire_date",
      salary_cents: "pay_rate",
      currency: "pay_currency",
      pay_frequency: "pay_frequency",
      "bank/routing_number": "bank_routing_number",
      "bank/account_number": "bank_account_number",
    });
    expect(pairs.row_version).toBeUndefined();
    expect(pairs.modified_at).toBeUndefined();
    expect(new Set(got.map((s) => s.field)).size, "each canonical field is suggested once").toBe(got.length);
    const pay = got.find((s) => s.path === "salary_cents")!;
    expect(pay.transform).toEqual({ kind: "money_minor", exponent: 2 });
    expect(pay.transformWhy).toBe("the name says minor units");
    expect(got.every((s) => s.score >= SUGGEST_AT)).toBe(true);
  });
  it("finds a field with an opaque name by the values Concord already holds", () => {
    const odd = samples.map((s) => ({ c_17: s.email, c_18: s.row_version }));
    const golden = samples.map((s) => ({ work_email: s.email, employee_number: s.emp_no }));
    const got = autoMap({ canonical, systemFields: flatten(odd[0]!), samples: odd, golden, rules: [] });
    expect(got.map((s) => [s.path, s.field])).toEqual([["c_17", "work_email"]]);
    expect(got[0]!.reasons).toContain("6 of 6 sample values are held in work_email");
  });
  it("leaves alone the fields and paths the draft already connects", () => {
    const got = autoMap({ canonical, systemFields, samples, golden: [], rules: [{ canonical: ["work_email"], system: ["phone"], transform: { kind: "copy" } }] });
    expect(got.some((s) => s.field === "work_email" || s.path === "phone")).toBe(false);
  });
});
