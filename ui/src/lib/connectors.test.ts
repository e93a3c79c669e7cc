import { describe, expect, it } from "vitest";
import { connectorOptions, hasForm, normalConfig, systemSecretRefs, systemSummary } from "./connectors";
import { testTarget } from "./restconfig";

const rest = {
  connector: "rest",
  config: {
    base_url: "https://hris.example/v1",
    auth: { type: "api_key", header: "X-Key", secret: "hris-key" },
    objects: { employee: { path: "/employees" } },
    webhooks: { secret: "hris-hook", signature_header: "X-Sig", object: "employee", record_pointer: "/data" },
  },
};
const sql = {
  connector: "sql",
  config: {
    url: "postgres://concord@db.internal:5432/hr",
    password_secret: "hrdb-password",
    objects: { employee: { table: "hr.employees", key_column: "id", change_capture: "table" }, staff: { view: "staff_view", key_column: "id", insert: "INSERT …", update: "UPDATE …" } },
    poll: { interval_secs: 10 },
  },
};
const scim = {
  connector: "scim",
  config: {
    base_url: "https://example.okta.com/scim/v2",
    auth: { type: "bearer", secret: "okta-token" },
    objects: { employee: { resource: "User" }, team: { resource: "Group", member_key: "externalId" } },
  },
};

describe("the connector select", () => {
  it("lists REST, SCIM and SQL, and a connector without a form when the system uses it", () => {
    expect(connectorOptions("rest")).toEqual([
      ["rest", "REST (declarative)"],
      ["scim", "SCIM 2.0"],
      ["sql", "SQL database (PostgreSQL, SQLite)"],
    ]);
    expect(connectorOptions("scim")).toEqual(connectorOptions("rest"));
    expect(connectorOptions("sql")).toEqual(connectorOptions("rest"));
    expect(connectorOptions("ldap").at(-1)).toEqual(["ldap", "ldap"]);
    expect(hasForm("scim")).toBe(true);
    expect(hasForm("toString")).toBe(false);
  });
});

describe("systemSummary", () => {
  it("reads a rest system's URL, auth, objects, secrets and how changes arrive", () => {
    expect(systemSummary(rest)).toEqual({
      urlLabel: "Base URL",
      url: "https://hris.example/v1",
      auth: "api_key",
      objects: ["employee"],
      secrets: [
        { name: "hris-key", purposes: ["API key"] },
        { name: "hris-hook", purposes: ["Webhook signing key"] },
      ],
      changesBy: "webhooks",
      schedule: { everySecs: null, source: "none", maxDeleteShare: 0.1 },
    });
  });
  it("reads a scim system the same way: polled by default, reconciled by default", () => {
    expect(systemSummary(scim)).toEqual({
      urlLabel: "Base URL",
      url: "https://example.okta.com/scim/v2",
      auth: "bearer",
      objects: ["employee (User)", "team (Group)"],
      secrets: [{ name: "okta-token", purposes: ["Bearer token"] }],
      changesBy: "polling every 30 s (default)",
      schedule: { everySecs: 600, source: "default", maxDeleteShare: 0.1 },
    });
    expect(systemSummary({ ...scim, config: { ...scim.config, poll: { interval_secs: 120 } } })?.changesBy).toBe("polling every 120 s");
  });
  it("reads a sql system's database (never a password), tables and views, change capture and schedule", () => {
    expect(systemSummary(sql)).toEqual({
      urlLabel: "Database",
      url: "postgres://concord@db.internal:5432/hr",
      auth: "password",
      objects: ["employee (table hr.employees)", "staff (view staff_view)"],
      secrets: [{ name: "hrdb-password", purposes: ["Database password"] }],
      changesBy: "polling every 10 s + NOTIFY",
      capture: "employee: change table, staff: none",
      schedule: { everySecs: 600, source: "default", maxDeleteShare: 0.1 },
    });
    const leaked = systemSummary({ connector: "sql", config: { ...sql.config, url: "postgres://concord:hunter2@db:5432/hr" } });
    expect(leaked?.url).toBe("postgres://concord@db:5432/hr");
    expect(JSON.stringify(leaked)).not.toContain("hunter2");
    const sqlite = systemSummary({ connector: "sql", config: { url: "sqlite:///var/lib/hr.db", objects: { employee: { table: "employees", key_column: "id", change_capture: "table" } }, poll: { interval_secs: 5 } } });
    expect(sqlite).toMatchObject({ auth: "none", secrets: [], changesBy: "polling every 5 s", capture: "employee: change table", schedule: { everySecs: null, source: "none" } });
  });
  it("summarises no other connector, and reads a malformed config as empty", () => {
    expect(systemSummary({ connector: "ldap", config: {} })).toBeNull();
    expect(systemSummary({ connector: "scim", config: null })).toMatchObject({ url: "", objects: [], secrets: [] });
    expect(systemSummary({ connector: "sql", config: [] })).toMatchObject({ url: "", objects: [], secrets: [], changesBy: "polling every 30 s (default)", capture: "none" });
  });
});

describe("systemSecretRefs", () => {
  it("counts the secrets of rest, scim and sql systems, and none of other connectors", () => {
    expect(systemSecretRefs(rest).map((r) => r.name)).toEqual(["hris-key", "hris-hook"]);
    expect(systemSecretRefs(scim).map((r) => r.name)).toEqual(["okta-token"]);
    expect(systemSecretRefs(sql).map((r) => r.name)).toEqual(["hrdb-password"]);
    expect(systemSecretRefs({ connector: "ldap", config: { auth: { type: "bearer", secret: "x" } } })).toEqual([]);
  });
});

describe("normalConfig", () => {
  it("tests an unchanged saved scim system as saved, and an edited one as drafted", () => {
    const saved = { id: "okta", name: "Okta", connector: "scim", config: { ...scim.config, user_agent: null }, max_attempts: 8 };
    const asLoaded = { ...saved, config: normalConfig("scim", saved.config) };
    expect(asLoaded.config).not.toHaveProperty("user_agent");
    expect(testTarget(asLoaded, { ...saved, config: normalConfig(saved.connector, saved.config) })).toBe("saved");
    expect(testTarget({ ...asLoaded, config: { ...scim.config, base_url: "https://other/scim/v2" } }, asLoaded)).toBe("draft");
  });
  it("tests an unchanged saved sql system as saved", () => {
    const saved = { id: "hrdb", name: "HR database", connector: "sql", config: { ...sql.config, password_secret: null, connect_timeout_secs: null }, max_attempts: 8 };
    const asLoaded = { ...saved, config: normalConfig("sql", saved.config) };
    expect(asLoaded.config).not.toHaveProperty("password_secret");
    expect(testTarget(asLoaded, { ...saved, config: normalConfig(saved.connector, saved.config) })).toBe("saved");
  });
  it("keeps a config of another connector as it is", () => {
    const c = { anything: [1, null] };
    expect(normalConfig("ldap", c)).toBe(c);
  });
});
