import { describe, expect, it } from "vitest";
import type { Auth, AuthType, Concurrency, ConcurrencyStyle, Endpoint, Incremental, IncrementalStyle, ObjectEndpoints, Pagination, PaginationStyle, RestConfig, SignedPayload, TimeFormat, WebhookConfig } from "../api/types";
import {
  AUTH_KEYS,
  DEFAULT_MAX_REREADS,
  authMissing,
  baseUrlProblem,
  describeSchedule,
  lookupTemplateProblem,
  newLookup,
  newReconcile,
  percentToShare,
  reconcileSchedule,
  shareToPercent,
  authTakes,
  editEndpoint,
  eventsPointerFor,
  eventsShape,
  fieldRows,
  methodOptions,
  newConcurrency,
  newIncremental,
  newObjectEndpoints,
  newPagination,
  newPoll,
  newRestForm,
  newWebhooks,
  paramProblems,
  paramRows,
  paramsOf,
  restConfigOf,
  secretNames,
  secretRefs,
  stableJson,
  testTarget,
  toAuth,
  toConfig,
  toForm,
  type AuthDraft,
} from "./restconfig";

// Every option the engine takes, each with every optional key set. `Required<...>` makes a key
// the engine adds fail `tsc` here until it has a round-trip case below.
const AUTHS: { [T in AuthType]: Required<Extract<Auth, { type: T }>> } = {
  none: { type: "none" },
  api_key: { type: "api_key", header: "X-API-Key", secret: "hris-key", prefix: "Key " },
  bearer: { type: "bearer", secret: "hris-token" },
  basic: { type: "basic", username: "sync", secret: "hris-password" },
  oauth2_client_credentials: { type: "oauth2_client_credentials", token_url: "/oauth/token", client_id: "concord", secret: "payroll-client", scope: "employees.rw" },
};

const PAGINATIONS: { [S in PaginationStyle]: Required<Extract<Pagination, { style: S }>> } = {
  none: { style: "none" },
  page: { style: "page", page_param: "page", size_param: "per_page", size: 50, first_page: 0 },
  offset: { style: "offset", offset_param: "startIndex", limit_param: "count", limit: 200, first_offset: 1 },
  cursor: { style: "cursor", cursor_param: "after", next_pointer: "/meta/next", size_param: "limit", size: 25 },
  link_header: { style: "link_header", size_param: "_limit", size: 40 },
};

const INCREMENTALS: { [S in IncrementalStyle]: Required<Extract<Incremental, { style: S }>> } = {
  param: { style: "param", param: "updated_since", format: "unix" },
  filter: { style: "filter", param: "$filter", template: "modified_at ge '{since}'", format: "unix_ms" },
};

const TIME_FORMATS: Record<TimeFormat, true> = { raw: true, rfc3339: true, unix: true, unix_ms: true };

const CONCURRENCIES: { [S in ConcurrencyStyle]: Required<Extract<Concurrency, { style: S }>> } = {
  none: { style: "none" },
  etag: { style: "etag" },
  version_field: { style: "version_field", field: "row_version" },
};

const ENDPOINT: Required<Endpoint> = { method: "PUT", path: "/employees/{id}/replace" };

const OBJECT: Required<ObjectEndpoints> = {
  path: "/employees",
  params: { _page: "1", include: "" },
  item_path: "/employees/{id}",
  records_pointer: "/data",
  record_pointer: "/data",
  pagination: PAGINATIONS.page,
  id_field: "employee/id",
  version_field: "version",
  modified_field: "meta/updated_at",
  incremental: INCREMENTALS.filter,
  concurrency: CONCURRENCIES.version_field,
  create: { method: "PUT", path: "/employees/new" },
  update: ENDPOINT,
  delete: { method: "POST", path: "/employees/{id}/archive" },
  total_pointer: "/meta/total",
  total_header: "X-Total-Count",
  lookup: { style: "filter", param: "filter", template: '{path} eq "{value}"' },
};

const SIGNED_PAYLOADS: Record<SignedPayload, true> = { body: true, timestamp_dot_body: true };

const WEBHOOKS: Required<WebhookConfig> = {
  secret: "hris-webhook",
  signature_header: "X-Acme-Signature",
  signature_prefix: "sha256=",
  timestamp_header: "X-Acme-Timestamp",
  tolerance_secs: 0,
  signed_payload: "body",
  object: "employee",
  events_pointer: "/events",
  record_pointer: "/data",
  event_key_pointer: "/id",
  op_pointer: "/type",
  delete_values: ["worker.deleted", "worker.purged"],
  occurred_at_pointer: "/occurred_at",
};

const FULL: Required<RestConfig> = {
  base_url: "https://hris.example/v1",
  auth: AUTHS.api_key,
  timeout_ms: 2500,
  user_agent: "Concord/1",
  objects: { employee: OBJECT, department: { path: "/departments", pagination: PAGINATIONS.cursor, delete: null } },
  webhooks: WEBHOOKS,
  poll: { interval_secs: 0.5 },
  reconcile: { interval_secs: 900, max_delete_share: 0.05 },
  error_message_pointer: "/result/reason",
};

/** Loaded into the form and saved again, untouched. */
const roundTrip = (c: RestConfig) => toConfig(toForm(c));
const withObject = (o: ObjectEndpoints): RestConfig => ({ base_url: "https://h", auth: { type: "none" }, objects: { employee: o } });

describe("load and save", () => {
  it("keeps a config that uses every option unchanged", () => {
    expect(roundTrip(FULL)).toEqual(FULL);
  });
  it("keeps each auth type", () => {
    for (const auth of Object.values(AUTHS)) expect(roundTrip({ ...FULL, auth }).auth).toEqual(auth);
  });
  it("keeps each pagination style", () => {
    for (const pagination of Object.values(PAGINATIONS)) expect(roundTrip(withObject({ path: "/e", pagination })).objects.employee!.pagination).toEqual(pagination);
  });
  it("keeps each incremental style in each time format, and an absent format", () => {
    for (const inc of Object.values(INCREMENTALS)) {
      for (const format of Object.keys(TIME_FORMATS) as TimeFormat[]) {
        const incremental = { ...inc, format };
        expect(roundTrip(withObject({ path: "/e", modified_field: "updated_at", incremental })).objects.employee!.incremental).toEqual(incremental);
      }
      const { format: _f, ...noFormat } = inc;
      expect(roundTrip(withObject({ path: "/e", modified_field: "updated_at", incremental: noFormat })).objects.employee!.incremental).toEqual(noFormat);
    }
  });
  it("keeps each concurrency style", () => {
    for (const concurrency of Object.values(CONCURRENCIES)) expect(roundTrip(withObject({ path: "/e", version_field: "v", concurrency })).objects.employee!.concurrency).toEqual(concurrency);
  });
  it("keeps write endpoints with and without a path, and deletes turned off", () => {
    const o: ObjectEndpoints = { path: "/e", create: { method: "POST" }, update: ENDPOINT, delete: { method: "DELETE", path: "/e/{id}/gone" } };
    expect(roundTrip(withObject(o)).objects.employee).toEqual(o);
    expect(roundTrip(withObject({ path: "/e", delete: null })).objects.employee).toEqual({ path: "/e", delete: null });
  });
  it("keeps query parameters, an empty value included", () => {
    const params = { _page: "1", expand: "", "page[size]": "100" };
    expect(roundTrip(withObject({ path: "/e", params })).objects.employee!.params).toEqual(params);
  });
  it("keeps webhooks with each signed payload, and webhooks off", () => {
    for (const signed_payload of Object.keys(SIGNED_PAYLOADS) as SignedPayload[]) {
      const webhooks = { ...WEBHOOKS, signed_payload };
      expect(roundTrip({ ...FULL, webhooks }).webhooks).toEqual(webhooks);
    }
    const minimal: WebhookConfig = { secret: "k", signature_header: "X-Sig", object: "employee", record_pointer: "/data" };
    expect(roundTrip({ ...FULL, webhooks: minimal }).webhooks).toEqual(minimal);
    expect(roundTrip({ ...FULL, webhooks: null })).not.toHaveProperty("webhooks");
  });
  it("keeps a pointer to the whole body or event, which is not a blank", () => {
    // events_pointer "": the body is an array of events (left out: the body is one event);
    // record_pointer "": the event is the record.
    const webhooks: WebhookConfig = { secret: "k", signature_header: "X-Sig", object: "employee", events_pointer: "", record_pointer: "" };
    expect(roundTrip({ ...FULL, webhooks }).webhooks).toEqual(webhooks);
    const o: ObjectEndpoints = { path: "/e", records_pointer: "", record_pointer: "" };
    expect(roundTrip(withObject(o)).objects.employee).toEqual(o);
  });
  it("keeps the poll interval, and polling off", () => {
    expect(roundTrip({ ...FULL, poll: { interval_secs: 90 } }).poll).toEqual({ interval_secs: 90 });
    expect(roundTrip({ ...FULL, poll: null })).not.toHaveProperty("poll");
  });
  it("keeps options this console does not know, at every level", () => {
    const newer = {
      ...FULL,
      retry: { max: 3 },
      auth: { ...AUTHS.bearer, header: "X-Token" },
      objects: { employee: { ...OBJECT, batch_size: 10, pagination: { ...PAGINATIONS.cursor, max_pages: 9 }, update: { ...ENDPOINT, headers: { "X-Why": "sync" } } } },
      webhooks: { ...WEBHOOKS, algorithm: "sha512" },
      poll: { interval_secs: 30, jitter_secs: 5 },
    } as RestConfig;
    // `header` belongs to another auth type and is refused by the server for bearer; the rest stays.
    const auth = newer.auth as Record<string, unknown>;
    const { header: _h, ...bearer } = auth;
    expect(roundTrip(newer)).toEqual({ ...newer, auth: bearer });
    expect(roundTrip({ ...newer, auth: { ...AUTHS.bearer, mtls: true } as unknown as Auth }).auth).toEqual({ ...AUTHS.bearer, mtls: true });
  });
  it("does not change the saved config it was loaded from", () => {
    const saved = structuredClone(FULL);
    const form = toForm(saved);
    form.objects.employee!.path = "/people";
    form.auth.header = "X-Other";
    expect(saved).toEqual(FULL);
  });
});

describe("toConfig", () => {
  it("drops blank optional values so the server's defaults apply", () => {
    const c = newRestForm();
    c.base_url = "https://hris.example";
    c.user_agent = "";
    c.objects.employee!.item_path = "";
    c.objects.employee!.version_field = null;
    c.objects.employee!.incremental = null;
    c.objects.employee!.update = { method: "PATCH", path: "" };
    c.timeout_ms = Number.NaN;
    c.webhooks = null;
    expect(toConfig(c)).toEqual({
      base_url: "https://hris.example",
      auth: { type: "none" },
      objects: { employee: { path: "/employees", pagination: { style: "none" }, concurrency: { style: "none" }, update: { method: "PATCH" } } },
    });
  });
  it("leaves out a blank required value, so the server names the missing key", () => {
    const c = newRestForm();
    c.objects.employee!.pagination = { ...newPagination("page"), page_param: "" };
    expect(toConfig(c).objects.employee!.pagination).toEqual({ style: "page", size_param: "size", size: 100, first_page: 1 });
  });
  it("keeps only the keys of the chosen auth type", () => {
    const c = newRestForm();
    c.auth = { type: "bearer", secret: "hris-token", header: "X-Old", username: "old" };
    expect(toConfig(c).auth).toEqual({ type: "bearer", secret: "hris-token" });
  });
  it("keeps delete: null, which means the system takes no deletes", () => {
    const c = newRestForm();
    c.objects.employee!.delete = null;
    expect(toConfig(c).objects.employee!.delete).toBeNull();
  });
});

describe("auth in the form", () => {
  const everything: AuthDraft = { type: "none", header: "X-Key", prefix: "Key ", secret: "s", username: "u", token_url: "/t", client_id: "c", scope: "sc" };
  it("sends each type with exactly its keys", () => {
    for (const type of Object.keys(AUTHS) as AuthType[]) {
      const auth = toAuth({ ...everything, type });
      expect(Object.keys(auth).sort()).toEqual(["type", ...AUTH_KEYS[type]].sort());
      expect(auth.type).toBe(type);
    }
  });
  it("remembers what was typed for another type while the person switches types", () => {
    const form = toForm({ ...FULL, auth: AUTHS.basic });
    form.auth = { ...form.auth, type: "oauth2_client_credentials", token_url: "/oauth/token", client_id: "c" };
    form.auth = { ...form.auth, type: "basic" };
    expect(toConfig(form).auth).toEqual(AUTHS.basic);
  });
  it("says which inputs each type shows", () => {
    expect(authTakes("api_key", "header")).toBe(true);
    expect(authTakes("api_key", "prefix")).toBe(true);
    expect(authTakes("bearer", "header")).toBe(false);
    expect(authTakes("oauth2_client_credentials", "scope")).toBe(true);
    expect(authTakes("none", "secret")).toBe(false);
  });
  it("names the keys the chosen type needs while they are blank, and never an optional one", () => {
    expect(authMissing({ type: "none" })).toEqual([]);
    expect(authMissing({ type: "bearer", secret: " " })).toEqual(["secret"]);
    expect(authMissing({ type: "api_key", secret: "k" })).toEqual(["header"]);
    expect(authMissing({ type: "oauth2_client_credentials", token_url: "/t", secret: "s" })).toEqual(["client_id"]);
    for (const auth of Object.values(AUTHS)) expect(authMissing(auth)).toEqual([]);
    // Another type's blank keys do not count.
    expect(authMissing({ type: "bearer", secret: "t", username: "" })).toEqual([]);
  });
  it("leaves out blank optional keys and reports blank required ones by leaving them out", () => {
    expect(toAuth({ type: "api_key", header: "X-Key", secret: "k", prefix: "" })).toEqual({ type: "api_key", header: "X-Key", secret: "k" });
    expect(toAuth({ type: "basic", secret: "k" })).toEqual({ type: "basic", secret: "k" });
  });
});

describe("choices in the form", () => {
  it("starts each pagination style with values the engine takes", () => {
    for (const style of Object.keys(PAGINATIONS) as PaginationStyle[]) {
      const pagination = newPagination(style);
      expect(pagination.style).toBe(style);
      expect(roundTrip(withObject({ path: "/e", pagination })).objects.employee!.pagination).toEqual(pagination);
    }
    expect(newPagination("page")).toEqual({ style: "page", page_param: "page", size_param: "size", size: 100, first_page: 1 });
  });
  it("starts each incremental and concurrency style with values the engine takes", () => {
    for (const style of Object.keys(INCREMENTALS) as IncrementalStyle[]) {
      const incremental = newIncremental(style);
      expect(incremental.style).toBe(style);
      expect(roundTrip(withObject({ path: "/e", modified_field: "m", incremental })).objects.employee!.incremental).toEqual(incremental);
    }
    for (const style of Object.keys(CONCURRENCIES) as ConcurrencyStyle[]) {
      const concurrency = newConcurrency(style);
      expect(concurrency.style).toBe(style);
      expect(roundTrip(withObject({ path: "/e", version_field: "v", concurrency })).objects.employee!.concurrency).toEqual(concurrency);
    }
  });
  it("gives a fresh default each time", () => {
    const a = newPagination("offset");
    a.limit = 5;
    expect(newPagination("offset").limit).toBe(100);
  });
  it("starts webhooks and polling with values the engine takes", () => {
    const webhooks = newWebhooks("hris", ["employee"]);
    expect(webhooks).toMatchObject({ secret: "hris-webhook", object: "employee", timestamp_header: "X-Timestamp" });
    expect(roundTrip({ ...FULL, webhooks }).webhooks).toEqual(webhooks);
    expect(newWebhooks("", []).secret).toBe("system-webhook");
    expect(roundTrip({ ...FULL, poll: newPoll() }).poll).toEqual({ interval_secs: 60 });
  });
  it("changes a write method and keeps its path, starting a missing endpoint from the default method", () => {
    expect(editEndpoint({ method: "PATCH", path: "/e/{id}" }, "update", { method: "PUT" })).toEqual({ method: "PUT", path: "/e/{id}" });
    expect(editEndpoint(undefined, "create", { path: "/e/new" })).toEqual({ method: "POST", path: "/e/new" });
    expect(editEndpoint(undefined, "delete", { path: "/e/{id}" })).toEqual({ method: "DELETE", path: "/e/{id}" });
  });
  it("offers a saved method the list does not have, so the select shows it", () => {
    expect(methodOptions("MERGE", ["PATCH", "PUT"])).toEqual(["MERGE", "PATCH", "PUT"]);
    expect(methodOptions("PUT", ["PATCH", "PUT"])).toEqual(["PATCH", "PUT"]);
    expect(methodOptions(undefined, ["PATCH"])).toEqual(["PATCH"]);
  });
  it("new objects and systems save as the engine's defaults", () => {
    expect(toConfig({ ...newRestForm(), objects: { employee: newObjectEndpoints() } }).objects.employee).toEqual({ path: "/employees", pagination: { style: "none" }, concurrency: { style: "none" } });
  });
});

describe("how a webhook body holds its events", () => {
  it("reads and writes each shape", () => {
    expect([null, undefined, "", "/events"].map(eventsShape)).toEqual(["one", "one", "array", "pointer"]);
    expect(eventsPointerFor("one", "/events")).toBeNull();
    expect(eventsPointerFor("array", "/events")).toBe("");
    expect(eventsPointerFor("pointer", "/items")).toBe("/items");
    expect(eventsPointerFor("pointer", "")).toBe("/events");
    expect(eventsPointerFor("pointer", null)).toBe("/events");
  });
});

describe("query parameter rows", () => {
  it("round-trips parameters through rows", () => {
    const params = { _page: "1", expand: "" };
    expect(paramsOf(paramRows(params))).toEqual(params);
    expect(paramRows(undefined)).toEqual([]);
  });
  it("leaves out an empty row; the last of a repeated name counts", () => {
    expect(paramsOf([{ name: "", value: "" }, { name: "a", value: "1" }, { name: "a", value: "2" }])).toEqual({ a: "2" });
  });
  it("says what is wrong with a row", () => {
    expect(paramProblems([{ name: "", value: "" }, { name: "", value: "x" }, { name: "a", value: "1" }, { name: "a", value: "2" }])).toEqual([null, "Needs a name.", "Repeated below: only the last one is sent.", null]);
  });
});

describe("baseUrlProblem", () => {
  it("takes http and https URLs, and says nothing while only the scheme is typed", () => {
    for (const ok of ["https://hris.example/v1", "http://127.0.0.1:8080", "", "https://", "http://", undefined, null]) expect(baseUrlProblem(ok)).toBeNull();
  });
  it("says why another value cannot work", () => {
    expect(baseUrlProblem("hris.example/v1")).toMatch(/Not a URL/);
    expect(baseUrlProblem("ftp://hris.example")).toMatch(/http:\/\/ or https:\/\//);
  });
});

describe("restConfigOf", () => {
  it("reads a stored config as it is", () => {
    expect(restConfigOf(FULL)).toEqual(FULL);
  });
  it("reads an absent or malformed config as an empty one", () => {
    for (const bad of [undefined, null, "x", [], { base_url: 3, objects: [] }]) expect(restConfigOf(bad)).toMatchObject({ base_url: "", objects: {} });
  });
  it("adds no key to a config that has no auth", () => {
    expect(roundTrip(restConfigOf({ base_url: "https://h", objects: {} }))).toEqual({ base_url: "https://h", auth: { type: "none" }, objects: {} });
  });
});

describe("secretNames", () => {
  it("names the keychain entries a config uses, never values", () => {
    const c = restConfigOf({ base_url: "x", auth: { type: "basic", username: "u", secret: "payroll-pw" }, objects: {}, webhooks: { secret: "payroll-hook", signature_header: "X-Sig", object: "employee", record_pointer: "/data" } });
    expect(secretNames(c)).toEqual({ auth: "payroll-pw", webhook: "payroll-hook" });
    expect(secretNames(toConfig(newRestForm()))).toEqual({ auth: null, webhook: null });
  });
});

describe("secretRefs", () => {
  it("lists each keychain entry with what it is for", () => {
    const c = restConfigOf({ base_url: "x", auth: { type: "oauth2_client_credentials", token_url: "/t", client_id: "c", secret: "payroll-client" }, objects: {}, webhooks: { secret: "payroll-hook", signature_header: "X-Sig", object: "employee", record_pointer: "/data" } });
    expect(secretRefs(c)).toEqual([
      { name: "payroll-client", purposes: ["OAuth client secret"] },
      { name: "payroll-hook", purposes: ["Webhook signing key"] },
    ]);
  });
  it("names a shared entry once, and skips blank names and auth none", () => {
    const c = restConfigOf({ base_url: "x", auth: { type: "api_key", header: "X-Key", secret: " shared " }, objects: {}, webhooks: { secret: "shared", signature_header: "X-Sig", object: "employee", record_pointer: "/data" } });
    expect(secretRefs(c)).toEqual([{ name: "shared", purposes: ["API key", "Webhook signing key"] }]);
    expect(secretRefs(restConfigOf({ base_url: "x", auth: { type: "bearer", secret: "" }, objects: {} }))).toEqual([]);
    expect(secretRefs(restConfigOf({ base_url: "x", auth: { type: "none", secret: "left-over" }, objects: {} }))).toEqual([]);
  });
});

describe("testTarget", () => {
  const saved = { id: "hris", name: "HRIS", connector: "rest", config: { base_url: "https://h", objects: {} }, max_attempts: 8 };
  it("tests an unchanged saved system as the engine runs it", () => {
    expect(testTarget({ max_attempts: 8, config: { objects: {}, base_url: "https://h" }, connector: "rest", name: "HRIS", id: "hris" }, saved)).toBe("saved");
  });
  it("tests a new system or an edited form as drafted", () => {
    expect(testTarget(saved, undefined)).toBe("draft");
    expect(testTarget({ ...saved, config: { base_url: "https://h2", objects: {} } }, saved)).toBe("draft");
  });
  it("tests a saved config loaded into the form and left alone as saved", () => {
    expect(testTarget(toConfig(toForm(FULL)), FULL)).toBe("saved");
  });
});

describe("stableJson", () => {
  it("ignores key order, keeps array order", () => {
    expect(stableJson({ b: 1, a: { d: [2, 1], c: null } })).toBe('{"a":{"c":null,"d":[2,1]},"b":1}');
    expect(stableJson(undefined)).toBe("null");
  });
});

describe("fieldRows", () => {
  it("sorts discovered paths and keeps their example values", () => {
    expect(fieldRows({ "home_address/zip": "78728", email: "a@b", "bank/account_number": "••••" })).toEqual([
      ["bank/account_number", "••••"],
      ["email", "a@b"],
      ["home_address/zip", "78728"],
    ]);
    expect(fieldRows(undefined)).toEqual([]);
  });
});

describe("the reconciliation schedule in the form", () => {
  const polled = { poll: { interval_secs: 60 }, webhooks: null };
  it("reconciles a polled system without webhooks every 600 s when the config says nothing", () => {
    expect(reconcileSchedule(polled)).toEqual({ everySecs: 600, source: "default", maxDeleteShare: 0.1 });
    expect(describeSchedule(reconcileSchedule(polled))).toMatch(/^Every 600 s \(the default for a polled system without webhooks\)/);
  });
  it("reconciles a system with webhooks, or one not polled, only on demand by default", () => {
    expect(reconcileSchedule({ ...polled, webhooks: WEBHOOKS }).everySecs).toBeNull();
    expect(reconcileSchedule({ poll: null }).source).toBe("none");
    expect(describeSchedule(reconcileSchedule({}))).toMatch(/^On demand only/);
  });
  it("follows the config's interval, and 0 turns scheduled runs off", () => {
    expect(reconcileSchedule({ ...polled, reconcile: { interval_secs: 900, max_delete_share: 0.05 } })).toEqual({ everySecs: 900, source: "config", maxDeleteShare: 0.05 });
    const off = reconcileSchedule({ ...polled, reconcile: { interval_secs: 0 } });
    expect(off).toEqual({ everySecs: null, source: "config", maxDeleteShare: 0.1 });
    expect(describeSchedule(off)).toMatch(/off \(interval 0\); Reconcile now still works/);
  });
  it("starts a schedule at the engine's defaults, and saves it as set", () => {
    expect(newReconcile()).toEqual({ interval_secs: 600, max_delete_share: 0.1 });
    expect(roundTrip({ ...FULL, reconcile: newReconcile() }).reconcile).toEqual({ interval_secs: 600, max_delete_share: 0.1 });
  });
  it("leaves out a blank delete share so the engine's default applies, and a schedule turned off", () => {
    const f = toForm(FULL);
    f.reconcile = { interval_secs: 300, max_delete_share: Number.NaN };
    expect(toConfig(f).reconcile).toEqual({ interval_secs: 300 });
    f.reconcile = null;
    expect(toConfig(f)).not.toHaveProperty("reconcile");
  });
  it("shows the delete share as a percent and stores it as a share, without float noise", () => {
    expect(shareToPercent(0.07)).toBe(7);
    expect(shareToPercent(0.125)).toBe(12.5);
    expect(percentToShare(7)).toBe(0.07);
    expect(percentToShare(10)).toBe(0.1);
    expect(percentToShare(undefined)).toBeUndefined();
    expect(shareToPercent(null)).toBeUndefined();
  });
});

describe("look-ups by match keys in the form", () => {
  it("starts each style with values the engine takes, and saves them as set", () => {
    expect(newLookup("param")).toEqual({ style: "param" });
    expect(newLookup("filter")).toEqual({ style: "filter", param: "filter", template: '{path} eq "{value}"' });
    for (const lookup of [newLookup("param"), newLookup("filter")]) expect(roundTrip(withObject({ path: "/e", lookup })).objects.employee!.lookup).toEqual(lookup);
  });
  it("leaves the look-up out when it is off (the whole listing is searched)", () => {
    expect(roundTrip(withObject({ path: "/e", lookup: null })).objects.employee).toEqual({ path: "/e" });
  });
  it("asks for {value} in a filter template; {path} may be left out", () => {
    expect(lookupTemplateProblem('userName eq "{value}"')).toBeNull();
    expect(lookupTemplateProblem('{path} eq "x"')).toMatch(/Needs \{value\}/);
    expect(lookupTemplateProblem("  ")).toMatch(/Needs a template/);
  });
});

describe("offset paging and re-reads in the form", () => {
  it("keeps a first offset of 0 or 1, and leaves it out when blank", () => {
    for (const first_offset of [0, 1]) {
      const pagination: Pagination = { ...newPagination("offset"), first_offset };
      expect(roundTrip(withObject({ path: "/e", pagination })).objects.employee!.pagination).toEqual(pagination);
    }
    const f = toForm(withObject({ path: "/e", pagination: { ...newPagination("offset"), first_offset: Number.NaN } }));
    expect(toConfig(f).objects.employee!.pagination).toEqual(newPagination("offset"));
  });
  it("says the engine re-reads a record 5 times in a row before it stops", () => {
    expect(DEFAULT_MAX_REREADS).toBe(5);
  });
});
