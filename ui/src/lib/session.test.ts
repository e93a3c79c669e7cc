import { describe, expect, it } from "vitest";
import { fragmentWithoutToken, normalizeBase, tokenFromFragment } from "./session";

describe("tokenFromFragment", () => {
  it("reads the token concord serve prints", () => {
    expect(tokenFromFragment("#token=813c2270e0dfb1dad9")).toBe("813c2270e0dfb1dad9");
  });
  it("reads it among other fragment parts", () => {
    expect(tokenFromFragment("#/exceptions&token=abc&x=1")).toBe("abc");
    expect(tokenFromFragment("#x=1?token=abc")).toBe("abc");
  });
  it("decodes percent-escapes", () => {
    expect(tokenFromFragment("#token=a%2Bb")).toBe("a+b");
  });
  it("finds nothing in an empty, tokenless or blank fragment", () => {
    expect(tokenFromFragment("")).toBeNull();
    expect(tokenFromFragment("#")).toBeNull();
    expect(tokenFromFragment("#/audit")).toBeNull();
    expect(tokenFromFragment("#token=")).toBeNull();
    expect(tokenFromFragment("#tokens=abc")).toBeNull();
  });
  it("refuses a malformed escape instead of throwing", () => {
    expect(tokenFromFragment("#token=%E0%A4%A")).toBeNull();
  });
});

describe("fragmentWithoutToken", () => {
  it("removes the whole fragment when only the token was there", () => {
    expect(fragmentWithoutToken("#token=abc")).toBe("");
  });
  it("keeps the other parts", () => {
    expect(fragmentWithoutToken("#section&token=abc")).toBe("#section");
  });
});

describe("normalizeBase", () => {
  it("drops trailing slashes", () => {
    expect(normalizeBase("http://127.0.0.1:8470/")).toBe("http://127.0.0.1:8470");
    expect(normalizeBase("http://127.0.0.1:8470")).toBe("http://127.0.0.1:8470");
  });
});
