import { describe, expect, it } from "vitest";
import type { ChangeCapture, SqlConfig, SqlObject } from "../api/types";
import { newReconcile } from "./restconfig";
import {
  capturedObjects,
  connectTimeoutProblem,
  describeCapture,
  displayUrl,
  newSqlForm,
  newSqlObject,
  passwordSecretProblem,
  placeholders,
  relationKind,
  sqlConfigOf,
  sqlDialect,
  sqlObjectProblems,
  sqlSchedule,
  sqlSecretRefs,
  sqlUrlProblem,
  statementHint,
  toSqlConfig,
  toSqlForm,
  validIdentifier,
  withRelationKind,
  CHANGE_CAPTURE_LABELS,
} from "./sqlconfig";

// Every option the engine takes, each with every optional key set. `Required<...>` makes a key
// the engine adds fail `tsc` here until it has a round-trip case below.
const VIEW: Required<SqlObject> = {
  table: null,
  view: "hr.staff_view",
  insert: "INSERT INTO hr.staff (name) VALUES (:name) RETURNING id",
  update: "UPDATE hr.staff SET name = :name, version = version + 1 WHERE id = :id AND version = :version",
  delete: "DELETE FROM hr.staff WHERE id = :id",
  key_column: "id",
  version_column: "version",
  updated_at_column: "updated_at",
  page_size: 500,
  change_capture: "none",
};
const TABLE: SqlObject = { table: "employees", key_column: "id", version_column: "version", updated_at_column: "updated_at", change_capture: "table" };
const CAPTURES: Record<ChangeCapture, true> = { none: true, table: true, notify: true };

const FULL: Required<SqlConfig> = {
  url: "postgres://concord@db.internal:5432/hr",
  password_secret: "hrdb-password",
  connect_timeout_secs: 2.5,
  objects: { employee: TABLE, staff: { ...VIEW, table: undefined } },
  poll: { interval_secs: 10 },
  reconcile: { interval_secs: 900, max_delete_share: 0.05 },
};
const PG = "postgres://concord@db:5432/hr";

/** Loaded into the form and saved again, untouched. */
const roundTrip = (c: SqlConfig) => toSqlConfig(toSqlForm(c));

describe("load and save", () => {
  it("keeps a config that uses every option unchanged", () => {
    expect(roundTrip(FULL)).toEqual(FULL);
  });
  it("keeps each kind of change capture, and labels each for people", () => {
    for (const change_capture of Object.keys(CAPTURES) as ChangeCapture[]) {
      expect(roundTrip({ url: PG, objects: { e: { table: "t", key_column: "id", change_capture } } }).objects.e!.change_capture).toBe(change_capture);
      expect(CHANGE_CAPTURE_LABELS[change_capture]).toBeTruthy();
    }
  });
  it("keeps options this console does not know, at every level", () => {
    const c = { url: PG, future: 1, objects: { e: { table: "t", key_column: "id", future: "x" } as SqlObject } } as SqlConfig;
    expect(roundTrip(c)).toEqual(c);
  });
  it("drops blank optional values so the engine's defaults apply", () => {
    const form = toSqlForm({ url: PG, password_secret: "", connect_timeout_secs: Number.NaN, objects: { e: { table: "t", view: null, key_column: "id", version_column: "", page_size: Number.NaN } }, poll: null, reconcile: null });
    expect(toSqlConfig(form)).toEqual({ url: PG, objects: { e: { table: "t", key_column: "id" } } });
  });
  it("does not change the saved config it was loaded from", () => {
    const saved = structuredClone(FULL);
    const form = toSqlForm(saved);
    form.objects.employee!.table = "other";
    form.password_secret = "x";
    expect(saved).toEqual(FULL);
  });
  it("reads an absent or malformed stored config as empty", () => {
    expect(sqlConfigOf(null)).toEqual({ url: "", objects: {} });
    expect(sqlConfigOf({ url: 3, objects: [] })).toEqual({ url: "", objects: {} });
  });
  it("starts a new system with one table object and no URL", () => {
    expect(newSqlForm()).toEqual({ url: "", objects: { employee: { table: "employees", key_column: "id" } } });
    expect(newSqlObject({ employee: TABLE })).toEqual({ table: "", key_column: "id" });
  });
});

describe("the database URL, as SqlConfig::parse checks it", () => {
  it("takes PostgreSQL and SQLite URLs", () => {
    for (const u of [PG, "postgresql://concord@db/hr", "sqlite:///var/lib/hr.db", ""]) expect(sqlUrlProblem(u)).toBeNull();
    expect(sqlDialect("PostgreSQL://x@h/db")).toBe("postgres");
    expect(sqlDialect("sqlite:///a.db")).toBe("sqlite");
    expect(sqlDialect("mysql://h/db")).toBeNull();
  });
  it("refuses a password in the URL, and says where it goes instead", () => {
    expect(sqlUrlProblem("postgres://concord:hunter2@db:5432/hr")).toMatch(/password.*refuses.*keychain/);
  });
  it("refuses what is not a URL, another database and a PostgreSQL URL without a host", () => {
    expect(sqlUrlProblem("db.internal/hr")).toMatch(/^Not a URL/);
    expect(sqlUrlProblem("mysql://db/hr")).toMatch(/^Use postgres:\/\//);
    expect(sqlUrlProblem("postgres:///hr")).toMatch(/^Name the database host/);
  });
  it("refuses a password name for an SQLite file, and a connect timeout that is not positive", () => {
    expect(passwordSecretProblem({ url: "sqlite:///a.db", password_secret: "p" })).toMatch(/SQLite/);
    expect(passwordSecretProblem({ url: "sqlite:///a.db", password_secret: " " })).toBeNull();
    expect(passwordSecretProblem({ url: PG, password_secret: "p" })).toBeNull();
    for (const v of [0, -1, Number.POSITIVE_INFINITY]) expect(connectTimeoutProblem(v)).not.toBeNull();
    for (const v of [0.5, 5, undefined, null, Number.NaN]) expect(connectTimeoutProblem(v)).toBeNull();
  });
  it("shows a URL without its password", () => {
    expect(displayUrl("postgres://concord:hunter2@db:5432/hr")).toBe("postgres://concord@db:5432/hr");
    expect(displayUrl(PG)).toBe(PG);
    expect(displayUrl("sqlite:///var/lib/hr.db")).toBe("sqlite:///var/lib/hr.db");
    expect(displayUrl("postgres://u:p w@[bad")).toBe("postgres://u@[bad");
  });
});

describe("objects, as SqlConfig::parse checks them", () => {
  const problems = (o: Partial<SqlObject>, url = PG) => sqlObjectProblems({ key_column: "id", ...o }, url);
  it("takes a table and a view with its statements", () => {
    expect(problems(TABLE)).toEqual({});
    expect(problems(VIEW)).toEqual({});
  });
  it("asks for exactly one of table and view", () => {
    expect(problems({ table: "" })).toEqual({ table: "Name the table, e.g. employees or hr.employees." });
    expect(problems({ table: "a", view: "b", insert: "i", update: "u" }).table).toMatch(/either a table or a view/);
  });
  it("takes plain SQL names only, schema-qualified for tables and views", () => {
    expect(validIdentifier("hr.employees", true)).toBe(true);
    expect(validIdentifier("hr.employees", false)).toBe(false);
    expect(validIdentifier("a.b.c", true)).toBe(false);
    expect(validIdentifier("1abc", false)).toBe(false);
    expect(validIdentifier("x".repeat(64), false)).toBe(false);
    expect(problems({ table: "employees; drop" }).table).toMatch(/plain SQL name/);
    expect(problems({ table: "t", key_column: "e.id" }).key_column).toMatch(/plain SQL name/);
    expect(problems({ table: "t", key_column: "" }).key_column).toMatch(/^Required/);
    expect(problems({ table: "t", updated_at_column: "updated at" }).updated_at_column).toMatch(/plain SQL name/);
  });
  it("takes page sizes from 1 to 10000", () => {
    for (const page_size of [0, 10_001, 1.5]) expect(problems({ table: "t", page_size }).page_size).toBe("A whole number from 1 to 10000.");
    expect(problems({ table: "t", page_size: 10_000 })).toEqual({});
  });
  it("asks a view for insert and update statements, and gives a table none", () => {
    expect(problems({ view: "v" })).toEqual({ insert: "A view needs an insert statement.", update: "A view needs an update statement." });
    expect(problems({ table: "t", delete: "DELETE …" }).insert).toMatch(/Statements are for views/);
  });
  it("captures changes on tables only, and NOTIFY on PostgreSQL only", () => {
    expect(problems({ ...VIEW, change_capture: "table" }).change_capture).toMatch(/tables only/);
    expect(problems({ table: "t", change_capture: "notify" }, "sqlite:///a.db").change_capture).toMatch(/PostgreSQL/);
    expect(problems({ table: "t", change_capture: "table" }, "sqlite:///a.db")).toEqual({});
  });
  it("switches between table and view, dropping what the other refuses", () => {
    expect(relationKind(VIEW)).toBe("view");
    expect(relationKind(TABLE)).toBe("table");
    const asView = withRelationKind(TABLE, "view");
    expect(asView).toMatchObject({ view: "employees", change_capture: "none" });
    expect(asView).not.toHaveProperty("table");
    const asTable = withRelationKind(VIEW, "table");
    expect(asTable).toMatchObject({ table: "hr.staff_view", key_column: "id" });
    for (const k of ["view", "insert", "update", "delete"]) expect(asTable).not.toHaveProperty(k);
  });
});

describe("statements", () => {
  it("finds :column placeholders, not ::casts or quoted text", () => {
    expect(placeholders("UPDATE t SET a = :a, b = :b::int, c = ':no' WHERE id = :id AND v = :a")).toEqual(["a", "b", "id"]);
    expect(placeholders(null)).toEqual([]);
  });
  it("says when an update or delete does not name the row by its key", () => {
    expect(statementHint(VIEW, "update")).toBeNull();
    expect(statementHint({ ...VIEW, delete: "DELETE FROM t WHERE name = :name" }, "delete")).toBe("Without :id the statement does not name the record's row.");
    expect(statementHint(VIEW, "insert")).toBeNull();
  });
});

describe("secrets, change capture and schedule", () => {
  it("names the password's keychain entry, if any", () => {
    expect(sqlSecretRefs(FULL)).toEqual([{ name: "hrdb-password", purposes: ["Database password"] }]);
    expect(sqlSecretRefs({ password_secret: " " })).toEqual([]);
  });
  it("lists the tables whose changes triggers capture", () => {
    expect(capturedObjects(FULL)).toEqual(["employee"]);
    expect(capturedObjects({ objects: { a: { table: "a", key_column: "id", change_capture: "notify" }, b: { view: "b", key_column: "id", change_capture: "table" } } })).toEqual(["a"]);
    expect(describeCapture({ objects: { a: TABLE } })).toBe("a: change table");
    expect(describeCapture({ objects: { a: { table: "a", key_column: "id" } } })).toBe("none");
  });
  it("reconciles a database (always polled) by default, unless every object's deletes come from a change table", () => {
    expect(sqlSchedule({ poll: { interval_secs: 10 }, objects: { a: VIEW } })).toMatchObject({ everySecs: 600, source: "default" });
    expect(sqlSchedule({ poll: { interval_secs: 10 }, objects: { a: TABLE } })).toMatchObject({ everySecs: null, source: "none" });
    expect(sqlSchedule({ poll: null, objects: { a: VIEW } })).toMatchObject({ everySecs: 600, source: "default" });
    expect(sqlSchedule({ poll: { interval_secs: 10 }, objects: { a: TABLE }, reconcile: newReconcile() })).toMatchObject({ source: "config" });
  });
});
