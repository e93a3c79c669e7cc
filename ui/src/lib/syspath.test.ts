import { describe, expect, it } from "vitest";
import { flatten, parsePath, readPath } from "./syspath";

const scim = {
  userName: "ana",
  name: { givenName: "Ana", familyName: "Silva" },
  emails: [
    { type: "home", value: "ana@home.example" },
    { type: "work", value: "ana@acme.example", primary: true },
  ],
  phoneNumbers: [{ value: "+14155550123" }, { value: "+14155550199" }],
  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { employeeNumber: "E-7", manager: { value: "12" } },
  codes: [{ n: 1, v: "one" }],
  contact: { email: "ana@contact.example" },
};

describe("readPath", () => {
  it("reads nested keys separated by /", () => {
    expect(readPath(scim, "name/givenName")).toBe("Ana");
    expect(readPath(scim, "contact/email")).toBe("ana@contact.example");
  });
  it("selects an array element by a member's value, then a member after '.' or '/'", () => {
    expect(readPath(scim, "emails[type=work].value")).toBe("ana@acme.example");
    expect(readPath(scim, "emails[type=work]/value")).toBe("ana@acme.example");
    expect(readPath(scim, "emails[type=other].value")).toBeUndefined();
  });
  it("compares a selector with a member rendered as text, as the engine does", () => {
    expect(readPath(scim, "emails[primary=true].value")).toBe("ana@acme.example");
    expect(readPath(scim, "codes[n=1].v")).toBe("one");
  });
  it("takes an array element by index, in brackets or as a bare digit segment", () => {
    expect(readPath(scim, "phoneNumbers[0].value")).toBe("+14155550123");
    expect(readPath(scim, "phoneNumbers/1/value")).toBe("+14155550199");
    expect(readPath(scim, "phoneNumbers[5].value")).toBeUndefined();
  });
  it("keeps dots inside a key that no selector precedes (SCIM extension keys)", () => {
    expect(readPath(scim, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/employeeNumber")).toBe("E-7");
    expect(readPath(scim, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/manager/value")).toBe("12");
  });
  it("finds nothing, rather than failing, where a selector meets a non-array or the path is malformed", () => {
    expect(readPath(scim, "name[0]")).toBeUndefined();
    expect(readPath(scim, "emails[type=work")).toBeUndefined();
    expect(readPath(scim, "a//b")).toBeUndefined();
    expect(readPath(null, "userName")).toBeUndefined();
  });
});

describe("parsePath", () => {
  it("accepts brackets, dots and slashes the engine accepts", () => {
    expect(parsePath("emails[type=work].value")).toEqual([{ key: "emails" }, { select: "type", equals: "work" }, { key: "value" }]);
    expect(parsePath("a.b/c")).toEqual([{ key: "a.b" }, { key: "c" }]);
  });
  it("refuses what the engine refuses: empty segments, an unclosed or empty selector, two selectors", () => {
    for (const bad of ["", "/a", "a/", "emails[]", "emails[0][1]", "[0]", "emails[0]x"]) expect(parsePath(bad)).toBeNull();
  });
});

describe("flatten", () => {
  it("lists nested fields as a/b paths, arrays as values", () => {
    expect(flatten({ name: { given: "Ana" }, emails: [{ value: "a@b" }], id: 7 })).toEqual([
      ["name/given", "Ana"],
      ["emails", [{ value: "a@b" }]],
      ["id", 7],
    ]);
  });
});
