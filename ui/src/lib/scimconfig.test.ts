import { describe, expect, it } from "vitest";
import type { FeatureOverrides, OnDelete, ScimConfig, ScimObject } from "../api/types";
import { newReconcile } from "./restconfig";
import {
  defaultEndpoint,
  featureChoice,
  featureValue,
  memberObjectChoices,
  newScimForm,
  newScimObject,
  resourceKind,
  scimAuthTypes,
  scimBaseUrlProblem,
  scimConfigOf,
  scimObjectProblems,
  scimSchedule,
  toScimConfig,
  toScimForm,
  withResource,
  DEFAULT_POLL_SECS,
  FEATURE_LABELS,
  ON_DELETE_LABELS,
} from "./scimconfig";

// Every option the engine takes, each with every optional key set. `Required<...>` makes a key
// the engine adds fail `tsc` here until it has a round-trip case below.
const GROUPS: Required<ScimObject> = { resource: "Group", endpoint: "/Groups", page_size: 50, on_delete: "delete", member_key: "externalId", member_object: "employee" };
const FEATURES: Required<FeatureOverrides> = { patch: false, filter: true };
const ON_DELETES: Record<OnDelete, true> = { delete: true, deactivate: true };
const USERS: ScimObject = { resource: "User", endpoint: "/Users", page_size: 200, on_delete: "deactivate" };

const FULL: Required<ScimConfig> = {
  base_url: "https://example.okta.com/scim/v2",
  auth: { type: "oauth2_client_credentials", token_url: "https://example.okta.com/oauth2/v1/token", client_id: "concord", secret: "okta-client", scope: "okta.users.manage" },
  timeout_ms: 5000,
  user_agent: "Concord/1",
  objects: { employee: USERS, team: GROUPS },
  poll: { interval_secs: 45 },
  reconcile: { interval_secs: 900, max_delete_share: 0.05 },
  features: FEATURES,
};

/** Loaded into the form and saved again, untouched. */
const roundTrip = (c: ScimConfig) => toScimConfig(toScimForm(c));
const withObjects = (objects: Record<string, ScimObject>): ScimConfig => ({ base_url: "https://h/scim/v2", auth: { type: "bearer", secret: "t" }, objects });

describe("load and save", () => {
  it("keeps a config that uses every option unchanged", () => {
    expect(roundTrip(FULL)).toEqual(FULL);
  });
  it("keeps each delete behaviour and each feature override", () => {
    for (const on_delete of Object.keys(ON_DELETES) as OnDelete[]) expect(roundTrip(withObjects({ u: { resource: "User", on_delete } })).objects.u!.on_delete).toBe(on_delete);
    for (const features of [{ patch: true }, { patch: false }, { filter: false }, FEATURES]) expect(roundTrip({ ...FULL, features }).features).toEqual(features);
  });
  it("keeps options this console does not know, at every level", () => {
    const c = { ...withObjects({ u: { resource: "User", future: 1 } as ScimObject }), future: "x", features: { patch: true, future: true } as FeatureOverrides };
    expect(roundTrip(c)).toEqual(c);
  });
  it("does not change the saved config it was loaded from", () => {
    const saved = structuredClone(FULL);
    const form = toScimForm(saved);
    form.objects.team!.member_key = "userName";
    form.auth.secret = "other";
    expect(saved).toEqual(FULL);
  });
});

describe("toScimConfig", () => {
  it("drops blank optional values so the server's defaults apply", () => {
    const form = toScimForm(withObjects({ u: { resource: "User", endpoint: "", page_size: Number.NaN, member_key: null, member_object: "" } }));
    form.user_agent = "";
    form.poll = null;
    form.reconcile = null;
    expect(toScimConfig(form)).toEqual(withObjects({ u: { resource: "User" } }));
  });
  it("leaves out feature overrides when every feature is as the server says", () => {
    const form = toScimForm({ ...withObjects({ u: { resource: "User" } }), features: { patch: null, filter: null } });
    expect(toScimConfig(form)).not.toHaveProperty("features");
    form.features = { ...form.features, filter: featureValue("no") };
    expect(toScimConfig(form).features).toEqual({ filter: false });
  });
  it("leaves out a blank resource, so the server names the missing key", () => {
    expect(toScimConfig(toScimForm(withObjects({ u: { resource: "" } }))).objects.u).toEqual({});
  });
  it("keeps only the keys of the chosen auth type, and a secret by name only", () => {
    const form = toScimForm(FULL);
    form.auth = { ...form.auth, type: "bearer", secret: "okta-token" };
    expect(toScimConfig(form).auth).toEqual({ type: "bearer", secret: "okta-token" });
  });
});

describe("a new system and new objects", () => {
  it("starts with a bearer token and a User object, which the server reads as its defaults", () => {
    const f = newScimForm();
    expect(f.auth.type).toBe("bearer");
    expect(toScimConfig(f).objects).toEqual({ employee: { resource: "User" } });
  });
  it("adds a User object first, then Groups", () => {
    expect(newScimObject({})).toEqual({ resource: "User" });
    expect(newScimObject({ employee: { resource: "User" } })).toEqual({ resource: "Group" });
  });
});

describe("resource types", () => {
  it("tells the core types from others", () => {
    expect(resourceKind("User")).toBe("User");
    expect(resourceKind("Group")).toBe("Group");
    expect(resourceKind("Device")).toBe("other");
    expect(resourceKind("")).toBe("other");
  });
  it("names the endpoint the engine uses when the object names none", () => {
    expect(defaultEndpoint("User")).toBe("/Users");
    expect(defaultEndpoint("Group")).toBe("/Groups");
    expect(defaultEndpoint("Device")).toBe("/Devices");
  });
  it("drops member settings when an object stops being a Group", () => {
    expect(withResource(GROUPS, "User")).toEqual({ resource: "User", endpoint: "/Groups", page_size: 50, on_delete: "delete" });
    expect(withResource(GROUPS, "Group")).toEqual(GROUPS);
  });
  it("labels every delete behaviour and feature", () => {
    expect(Object.keys(ON_DELETE_LABELS).sort()).toEqual(Object.keys(ON_DELETES).sort());
    expect(Object.keys(FEATURE_LABELS).sort()).toEqual(Object.keys(FEATURES).sort());
  });
});

describe("feature overrides in the form", () => {
  it("reads and writes each choice", () => {
    for (const v of [true, false, null]) expect(featureValue(featureChoice(v))).toBe(v);
    expect(featureChoice(undefined)).toBe("server");
  });
});

describe("auth types offered", () => {
  it("offers bearer and OAuth2 client credentials first, and keeps a saved config's other type", () => {
    expect(scimAuthTypes("bearer")).toEqual(["bearer", "oauth2_client_credentials", "none"]);
    expect(scimAuthTypes("basic")).toEqual(["bearer", "oauth2_client_credentials", "none", "basic"]);
  });
});

describe("what the form flags before the server does", () => {
  it("flags each object key the server refuses, naming what to do", () => {
    const objects: Record<string, ScimObject> = {
      a: { resource: " " },
      b: { resource: "User", endpoint: "Users" },
      c: { resource: "User", endpoint: "/Users?x=1", page_size: 0 },
      d: { resource: "User", page_size: 1001, member_key: "externalId" },
      e: { resource: "Group", member_key: "externalId", member_object: "f" },
      f: { resource: "Group", member_object: "nobody" },
    };
    expect(scimObjectProblems(objects, "a")).toEqual({ resource: expect.stringMatching(/resource type/) });
    expect(scimObjectProblems(objects, "b")).toEqual({ endpoint: expect.stringMatching(/starting with \//) });
    expect(Object.keys(scimObjectProblems(objects, "c")).sort()).toEqual(["endpoint", "page_size"]);
    expect(scimObjectProblems(objects, "d")).toEqual({ page_size: expect.stringMatching(/1 to 1000/), member_key: "Only Groups have members." });
    expect(scimObjectProblems(objects, "e")).toEqual({ member_object: expect.stringMatching(/not Groups/) });
    expect(scimObjectProblems(objects, "f")).toEqual({ member_object: expect.stringMatching(/No object “nobody”/) });
    expect(scimObjectProblems(objects, "missing")).toEqual({});
  });
  it("takes the objects a valid config has", () => {
    for (const name of Object.keys(FULL.objects)) expect(scimObjectProblems(FULL.objects, name)).toEqual({});
    expect(scimObjectProblems({ u: { resource: "User", page_size: 1 } }, "u")).toEqual({});
    expect(scimObjectProblems({ u: { resource: "User", page_size: 1000 } }, "u")).toEqual({});
  });
  it("asks for a User object (or a member object) before a Group's members can be synced", () => {
    expect(scimObjectProblems({ team: { resource: "Group", member_key: "externalId" } }, "team").member_key).toMatch(/User object/);
    expect(scimObjectProblems({ team: { resource: "Group", member_key: "externalId", member_object: "dev" }, dev: { resource: "Device" } }, "team")).toEqual({});
  });
  it("takes a SCIM base URL, and not a resource endpoint", () => {
    expect(scimBaseUrlProblem("https://example.okta.com/scim/v2")).toBeNull();
    expect(scimBaseUrlProblem("https://example.okta.com/scim/v2/Users")).toMatch(/without \/Users/);
    expect(scimBaseUrlProblem("https://example.okta.com/scim/v2/Groups/")).toMatch(/without \/Groups/);
    expect(scimBaseUrlProblem("ldap://example")).toMatch(/http/);
  });
});

describe("a Group's members", () => {
  it("offers the non-Group objects and names the one used by default", () => {
    expect(memberObjectChoices({ team: GROUPS, dev: { resource: "Device" }, employee: USERS })).toEqual({ choices: ["dev", "employee"], byDefault: "employee" });
    expect(memberObjectChoices({ team: GROUPS })).toEqual({ choices: [], byDefault: null });
  });
});

describe("polling and reconciliation", () => {
  it("is polled every 30 s and reconciled every 600 s when the config says nothing: SCIM sends no webhooks", () => {
    expect(DEFAULT_POLL_SECS).toBe(30);
    expect(scimSchedule({})).toEqual({ everySecs: 600, source: "default", maxDeleteShare: 0.1 });
  });
  it("follows the config's schedule, and 0 turns scheduled runs off", () => {
    expect(scimSchedule({ reconcile: { interval_secs: 900, max_delete_share: 0.2 } })).toEqual({ everySecs: 900, source: "config", maxDeleteShare: 0.2 });
    expect(scimSchedule({ reconcile: { interval_secs: 0 } }).everySecs).toBeNull();
    const form = toScimForm(withObjects({ u: { resource: "User" } }));
    form.reconcile = newReconcile();
    expect(toScimConfig(form).reconcile).toEqual({ interval_secs: 600, max_delete_share: 0.1 });
  });
});

describe("scimConfigOf", () => {
  it("reads a stored config as it is", () => {
    expect(scimConfigOf(FULL)).toEqual(FULL);
  });
  it("reads an absent or malformed config as an empty one", () => {
    for (const bad of [undefined, null, "x", [], { base_url: 3, objects: [] }]) expect(scimConfigOf(bad)).toMatchObject({ base_url: "", objects: {} });
  });
  it("adds no key but the auth to a config that has none", () => {
    expect(roundTrip(scimConfigOf({ base_url: "https://h", objects: {} }))).toEqual({ base_url: "https://h", auth: { type: "none" }, objects: {} });
  });
});
