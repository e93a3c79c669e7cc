// One system's form, for the declarative `rest` connector config (base URL, auth and its
// keychain secret, objects' endpoints, pagination, incremental reads, concurrency, look-ups,
// webhooks, polling, reconciliation), the `scim` connector's (components/ScimFormFields.tsx) or
// the `sql` connector's (components/SqlFormFields.tsx); another connector's config is edited as JSON. A draft is tested before it is saved (the fields
// found, with an example value each). Secrets are typed once, sent to the OS keychain
// (PUT /api/secrets/{name}) and never shown again; the page says whether each is stored and can
// remove one.

import { formatPilot, parsePilot, type PilotScope } from "../lib/pilot";
import { useEffect, useMemo, useState } from "react";
import { UnsavedGuard } from "../components/UnsavedGuard";
import { Link, useNavigate, useParams } from "react-router";
import { useQueryClient } from "@tanstack/react-query";
import { toast } from "sonner";
import { KeyRound, Plug, XCircle } from "lucide-react";
import { api, ApiError, errorMessage } from "../api/client";
import { useMe, useWorkspace } from "../api/queries";
import type { ConcurrencyStyle, IncrementalStyle, ObjectEndpoints, PaginationStyle, SignedPayload, SystemConfig } from "../api/types";
import { can, whyNot } from "../lib/roles";
import { apiBase } from "../lib/session";
import {
  baseUrlProblem,
  editEndpoint,
  methodOptions,
  newConcurrency,
  newIncremental,
  newObjectEndpoints,
  newPagination,
  newPoll,
  newRestForm,
  newWebhooks,
  restConfigOf,
  stableJson,
  testTarget,
  toConfig,
  toForm,
  DEFAULT_MAX_REREADS,
  DEFAULT_METHOD,
  WEBHOOK_SECRET_PURPOSE,
  type RestForm,
} from "../lib/restconfig";
import { newScimForm, scimConfigOf, toScimConfig, toScimForm, type ScimForm } from "../lib/scimconfig";
import { newSqlForm, sqlConfigOf, toSqlConfig, toSqlForm, type SqlForm } from "../lib/sqlconfig";
import { connectorOptions, normalConfig, systemSecretRefs } from "../lib/connectors";
import { EmptyState, ErrorState, Loading, PageHeader, Spinner } from "../components/ui";
import { ConnectionTestCard, useConnectionTest } from "../components/ConnectionTest";
import { SecretField, useSecretInput, type SecretInput } from "../components/SecretField";
import { ScimFormFields } from "../components/ScimFormFields";
import { SqlFormFields } from "../components/SqlFormFields";
import {
  CONCURRENCY_LABELS,
  ConfigPreview,
  ConnectionSection,
  EventsField,
  INCREMENTAL_LABELS,
  IncrementalFields,
  LookupFields,
  Num,
  PAGINATION_LABELS,
  PaginationFields,
  ObjectTabs,
  ParamsEditor,
  PollSection,
  ReconcileFields,
  SIGNED_PAYLOAD_LABELS,
  Section,
  Select,
  Text,
  options,
  type ConnectorFormProps,
} from "../components/SystemFormFields";

/** The form for one system; a new instance per route, so no state leaks between systems. */
export function SystemEditPage() {
  const { id } = useParams();
  return <SystemEditor key={id ?? "new"} routeId={id} />;
}

function SystemEditor({ routeId }: { routeId: string | undefined }) {
  const isNew = routeId === undefined;
  const me = useMe();
  const ws = useWorkspace();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const mayEdit = can(me.role, "edit_systems");
  const existing = ws.data?.systems.find((s) => s.id === routeId);

  const [sys, setSys] = useState<SystemConfig | null>(null);
  const [cfg, setCfg] = useState<RestForm>(newRestForm());
  const [scim, setScim] = useState<ScimForm>(newScimForm());
  const [sql, setSql] = useState<SqlForm>(newSqlForm());
  const [rawJson, setRawJson] = useState("{}");
  const [pilotLine, setPilotLine] = useState("");
  const pilot = parsePilot(pilotLine);
  // Typed secret values stay in their (write-only) inputs until they are stored.
  const authSecret = useSecretInput();
  const hookSecret = useSecretInput();
  const [saving, setSaving] = useState(false);
  const [justSaved, setJustSaved] = useState(false);
  const [serverError, setServerError] = useState<string | null>(null);
  const [activeObject, setActiveObject] = useState<string | null>(null);
  const test = useConnectionTest();

  useEffect(() => {
    if (isNew && !sys) {
      setSys({ id: "", name: "", connector: "rest", config: {}, max_attempts: 8, rate_limit_per_sec: null });
      setCfg(newRestForm());
      setActiveObject("employee");
    } else if (existing && !sys) {
      setSys(structuredClone(existing));
      setPilotLine(formatPilot(existing.pilot as PilotScope | null | undefined));
      // The other connector's form starts new: switching to it does not read this config as its own.
      const f = existing.connector === "rest" ? toForm(restConfigOf(existing.config)) : newRestForm();
      const g = existing.connector === "scim" ? toScimForm(scimConfigOf(existing.config)) : newScimForm();
      const h = existing.connector === "sql" ? toSqlForm(sqlConfigOf(existing.config)) : newSqlForm();
      setCfg(f);
      setScim(g);
      setSql(h);
      setRawJson(JSON.stringify(existing.config ?? {}, null, 2));
      setActiveObject(Object.keys(existing.connector === "scim" ? g.objects : existing.connector === "sql" ? h.objects : f.objects)[0] ?? null);
    }
  }, [isNew, existing, sys]);

  const objectNames = useMemo(() => (ws.data?.objects ?? []).map((o) => o.name), [ws.data]);

  if (ws.isPending || (!isNew && !sys && !ws.error && existing)) return <div className="page"><Loading /></div>;
  if (ws.error) return <div className="page"><ErrorState error={ws.error} retry={() => void ws.refetch()} /></div>;
  if (!isNew && !existing) {
    return (
      <div className="page">
        <PageHeader title="System not found" />
        <div className="card">
          <EmptyState title={`No system “${routeId}”`}>
            <Link to="/systems">Back to systems</Link>
          </EmptyState>
        </div>
      </div>
    );
  }
  if (!sys) return null;

  const ro = !mayEdit;
  const isRest = sys.connector === "rest";
  const isScim = sys.connector === "scim";
  const isSql = sys.connector === "sql";
  const formObjects = isRest ? cfg.objects : isScim ? scim.objects : isSql ? sql.objects : {};
  const setObj = (name: string, patch: Partial<ObjectEndpoints>) => setCfg((c) => ({ ...c, objects: { ...c.objects, [name]: { ...c.objects[name]!, ...patch } } }));
  const idValid = /^[a-z0-9][a-z0-9_-]*$/.test(sys.id);

  // The system as the form has it: what a save sends and what a test of the draft tries.
  const draft = (): { system: SystemConfig } | { error: string } => {
    let config: unknown;
    if (isRest) config = toConfig(cfg);
    else if (isScim) config = toScimConfig(scim);
    else if (isSql) config = toSqlConfig(sql);
    else {
      try {
        config = JSON.parse(rawJson);
      } catch (e) {
        return { error: `The config is not valid JSON: ${errorMessage(e)}` };
      }
    }
    if ("error" in pilot) return { error: `Pilot scope: ${pilot.error}` };
    const { pilot: _old, ...rest } = sys;
    return { system: { ...rest, name: sys.name.trim() || sys.id, config, ...(pilot.scope ? { pilot: pilot.scope } : {}) } };
  };
  // The saved system in the same shape, to tell an unchanged form from an edited one.
  const saved: SystemConfig | undefined = existing
    ? { ...existing, name: existing.name.trim() || existing.id, config: normalConfig(existing.connector, existing.config) }
    : undefined;
  const current = draft();
  const currentKey = "system" in current ? stableJson(current.system) : current.error;
  const testObject = activeObject && activeObject in formObjects ? activeObject : null;
  const target = "system" in current ? testTarget(current.system, saved) : "draft";

  const runTest = () => {
    if (!("system" in current)) {
      test.invalid(current.error, currentKey);
      return;
    }
    if (target === "saved") void test.run({ via: "saved", id: sys.id, object: testObject }, currentKey);
    else void test.run({ via: "draft", system: current.system, object: testObject }, currentKey);
  };

  // The saved systems that use a secret (for a removal's warning), and the typed values.
  const usedBy = (name: string | null | undefined) => (ws.data?.systems ?? []).filter((s) => systemSecretRefs(s).some((r) => r.name === name?.trim())).map((s) => s.name);
  // The auth secret's input is the database password's for a sql system (one form is shown at a time).
  const formAuth = isScim ? scim.auth : cfg.auth;
  const typedSecrets: [string | undefined, SecretInput][] = [
    [isSql ? sql.password_secret ?? undefined : formAuth.type !== "none" ? formAuth.secret ?? undefined : undefined, authSecret],
    [isRest ? cfg.webhooks?.secret : undefined, hookSecret],
  ];
  const connectorForm: ConnectorFormProps = { systemId: sys.id, activeObject, onActiveObject: setActiveObject, workspaceObjects: objectNames, usedBy, mayEdit, disabled: ro };
  const unstoredTyped = typedSecrets.some(([name, input]) => !!name?.trim() && input.filled);
  // Unsaved: an edited system whose form differs from what is saved (or typed secrets not
  // stored yet), or a new one given an id or a name. Not while it is being saved.
  const dirty = !saving && !justSaved && (isNew ? sys.id.trim() !== "" || sys.name.trim() !== "" : target !== "saved" || unstoredTyped);

  const save = async () => {
    setServerError(null);
    const d = draft();
    if (!("system" in d)) {
      setServerError(d.error);
      return;
    }
    const body = d.system;
    setSaving(true);
    try {
      await api.put("/api/systems/{id}", { id: sys.id }, body);
      const stored: string[] = [];
      for (const [rawName, input] of typedSecrets) {
        const name = rawName?.trim();
        const value = input.peek();
        if (name && value) {
          try {
            await api.put("/api/secrets/{name}", { name }, { value });
            input.clear();
            stored.push(name);
          } catch (e) {
            toast.error(`The system is saved, but the secret “${name}” is not`, { description: errorMessage(e) });
          }
        }
      }
      for (const name of stored) void qc.invalidateQueries({ queryKey: ["secret", name] });
      toast.success(`${body.name} saved`, { description: stored.length ? `Secrets stored in the keychain: ${stored.join(", ")}.` : undefined });
      await qc.invalidateQueries({ queryKey: ["workspace"] });
      if (isNew) {
        // After the guard has seen the saved state: this navigation loses nothing.
        setJustSaved(true);
        setTimeout(() => navigate(`/systems/${encodeURIComponent(sys.id)}`, { replace: true }), 0);
      }
    } catch (e) {
      setServerError(errorMessage(e));
      toast.error(e instanceof ApiError && e.status === 422 ? "The configuration is not valid" : "Could not save", { description: errorMessage(e) });
    } finally {
      setSaving(false);
    }
  };

  return (
    <form
      className="page"
      onSubmit={(e) => {
        e.preventDefault();
        void save();
      }}
      aria-label={isNew ? "Add a system" : `Edit ${sys.name}`}
    >
      <UnsavedGuard dirty={dirty} what={isNew ? "The new system" : sys.name} />
      <PageHeader
        title={isNew ? "Add a system" : sys.name}
        description={isNew ? "Describe how Concord reaches the system: where its records are, how they page, how to learn of changes, how to write." : <span className="mono">{sys.id}</span>}
        actions={
          <>
            <button
              type="button"
              className="btn"
              disabled={!mayEdit || test.state?.phase === "running"}
              onClick={runTest}
              title={
                !mayEdit
                  ? whyNot(me.role, "edit_systems")
                  : `Lists the first page${testObject ? ` of ${testObject}` : ""} with ${target === "saved" ? "the saved config" : "the config in this form, before saving"}`
              }
            >
              {test.state?.phase === "running" ? <Spinner /> : <Plug size={16} />} Test connection
            </button>
            <Link className="btn" to="/systems">
              Cancel
            </Link>
            <button type="submit" className="btn primary" disabled={ro || saving || !idValid} title={ro ? whyNot(me.role, "edit_systems") : undefined}>
              {saving ? <Spinner /> : null} Save
            </button>
          </>
        }
      />
      {test.state ? <ConnectionTestCard state={test.state} stale={test.state.phase !== "running" && test.state.key !== currentKey} onClose={test.clear} /> : null}
      {test.state && unstoredTyped ? (
        <div className="banner warning" role="status">
          <KeyRound size={16} />
          <div className="b-body">A secret value is typed but not stored: the test uses what the keychain holds. Store it first to test with it.</div>
        </div>
      ) : null}
      {serverError ? (
        <div className="banner danger" role="alert">
          <XCircle size={16} />
          <div className="b-body">
            <strong>Not saved</strong>
            {serverError}
          </div>
        </div>
      ) : null}
      {ro ? <div className="banner info"><div className="b-body">{whyNot(me.role, "edit_systems")} The form is read-only.</div></div> : null}

      <Section title="General">
        <div className="form-grid">
          <Text label="Name" value={sys.name} onChange={(v) => setSys({ ...sys, name: v })} placeholder="Acme HRIS" disabled={ro} required />
          <Text
            label="Id"
            value={sys.id}
            onChange={(v) => setSys({ ...sys, id: v.toLowerCase() })}
            placeholder="hris"
            mono
            disabled={ro || !isNew}
            hint={isNew ? (sys.id && !idValid ? "Lowercase letters, digits, - and _." : "Used in URLs and the audit; cannot change later.") : "Cannot change."}
          />
          <Select
            label="Connector"
            value={sys.connector}
            onChange={(v) => {
              setSys({ ...sys, connector: v });
              setActiveObject(Object.keys(v === "scim" ? scim.objects : v === "sql" ? sql.objects : cfg.objects)[0] ?? null);
            }}
            disabled={ro}
            options={connectorOptions(sys.connector)}
          />
          <Text
            label="Pilot scope"
            value={pilotLine}
            onChange={setPilotLine}
            placeholder="department=Finance"
            mono
            disabled={ro}
            hint={"error" in pilot ? pilot.error : "Only records matching every field (any of its values) are written to this system until you widen or clear it. Blank: every record."}
          />
          <Num label="Rate limit (writes/s)" value={sys.rate_limit_per_sec} onChange={(v) => setSys({ ...sys, rate_limit_per_sec: v ?? null })} step="any" disabled={ro} hint="Blank: no limit." />
          <Num label="Attempts before a dead letter" value={sys.max_attempts} onChange={(v) => setSys({ ...sys, max_attempts: v ?? 8 })} disabled={ro} />
          <Num
            label="Re-reads in a row"
            value={sys.max_rereads}
            placeholder={String(DEFAULT_MAX_REREADS)}
            onChange={(v) => setSys({ ...sys, max_rereads: v })}
            disabled={ro}
            hint={`Re-reads of a record whose writes were refused as out of date or that changed before a write, before the engine stops and opens an exception (“this record keeps changing”). Blank: ${DEFAULT_MAX_REREADS}.`}
          />
        </div>
      </Section>

      {isScim ? (
        <ScimFormFields cfg={scim} onChange={setScim} authSecret={authSecret} {...connectorForm} />
      ) : isSql ? (
        <SqlFormFields cfg={sql} onChange={setSql} saved={existing?.connector === "sql" ? sqlConfigOf(existing.config) : null} passwordSecret={authSecret} {...connectorForm} />
      ) : !isRest ? (
        <Section title="Connector config (JSON)">
          <textarea className="textarea code" rows={14} aria-label="Connector config as JSON" value={rawJson} onChange={(e) => setRawJson(e.target.value)} disabled={ro} />
        </Section>
      ) : (
        <>
          <ConnectionSection
            errorPointer
            cfg={cfg}
            onChange={(patch) => setCfg({ ...cfg, ...patch })}
            baseUrl={{ placeholder: "https://api.example.com/v1", problem: baseUrlProblem(cfg.base_url) }}
            systemId={sys.id}
            secret={authSecret}
            usedBy={usedBy(cfg.auth.secret)}
            mayEdit={mayEdit}
            disabled={ro}
          />

          <ObjectTabs<ObjectEndpoints>
            objects={cfg.objects}
            onChange={(objects) => setCfg({ ...cfg, objects })}
            active={activeObject}
            onActive={setActiveObject}
            workspaceObjects={objectNames}
            newObject={newObjectEndpoints}
            empty="Add the kind of record this system holds, e.g. employee."
            disabled={ro}
          >
            {(activeObject, obj, nameField) => (
              <>
                <div className="form-grid">
                  {nameField}
                  <Text label="Collection path" value={obj.path} onChange={(v) => setObj(activeObject, { path: v })} mono placeholder="/employees" disabled={ro} />
                  <Text label="Item path" value={obj.item_path} onChange={(v) => setObj(activeObject, { item_path: v })} mono placeholder="{path}/{id}" disabled={ro} />
                  <Text label="Id field" value={obj.id_field} onChange={(v) => setObj(activeObject, { id_field: v })} mono placeholder="id" disabled={ro} />
                  <Text label="Records pointer" value={obj.records_pointer} onChange={(v) => setObj(activeObject, { records_pointer: v })} mono placeholder="/data (blank: the body)" disabled={ro} />
                  <Text label="Record pointer" value={obj.record_pointer} onChange={(v) => setObj(activeObject, { record_pointer: v })} mono placeholder="blank: the body" disabled={ro} />
                  <Text label="Version field" value={obj.version_field} onChange={(v) => setObj(activeObject, { version_field: v })} mono placeholder="version" disabled={ro} />
                  <Text label="Modified field" value={obj.modified_field} onChange={(v) => setObj(activeObject, { modified_field: v })} mono placeholder="updated_at" disabled={ro} />
                  <ParamsEditor key={activeObject} className="span-all" params={obj.params} onChange={(params) => setObj(activeObject, { params })} disabled={ro} />
                </div>
                <h3>Pagination</h3>
                <div className="form-grid">
                  <Select<PaginationStyle>
                    label="Style"
                    value={obj.pagination?.style ?? "none"}
                    disabled={ro}
                    onChange={(v) => setObj(activeObject, { pagination: newPagination(v) })}
                    options={options(PAGINATION_LABELS)}
                  />
                  <PaginationFields p={obj.pagination ?? { style: "none" }} onChange={(p) => setObj(activeObject, { pagination: p })} disabled={ro} />
                  <Text label="Total count pointer" value={obj.total_pointer} onChange={(v) => setObj(activeObject, { total_pointer: v })} mono placeholder="/meta/total" disabled={ro} hint="In the listing body." />
                  <Text label="Total count header" value={obj.total_header} onChange={(v) => setObj(activeObject, { total_header: v })} mono placeholder="X-Total-Count" disabled={ro} />
                </div>
                <h3>Changes and writes</h3>
                <div className="form-grid">
                  <Select<IncrementalStyle | "off">
                    label="Incremental reads"
                    value={obj.incremental?.style ?? "off"}
                    disabled={ro}
                    hint={obj.incremental && !obj.modified_field ? "Needs the modified field." : undefined}
                    onChange={(v) => setObj(activeObject, { incremental: v === "off" ? null : newIncremental(v) })}
                    options={[["off", "Off (full reads)"], ...options(INCREMENTAL_LABELS)]}
                  />
                  {obj.incremental ? <IncrementalFields inc={obj.incremental} onChange={(incremental) => setObj(activeObject, { incremental })} disabled={ro} /> : null}
                  <Select<ConcurrencyStyle>
                    label="Concurrency"
                    value={obj.concurrency?.style ?? "none"}
                    disabled={ro}
                    hint={obj.concurrency && obj.concurrency.style !== "none" && !obj.version_field ? "Needs the version field." : undefined}
                    onChange={(v) => setObj(activeObject, { concurrency: newConcurrency(v) })}
                    options={options(CONCURRENCY_LABELS)}
                  />
                  {obj.concurrency?.style === "version_field" ? <Text label="Version body field" value={obj.concurrency.field} onChange={(v) => setObj(activeObject, { concurrency: { style: "version_field", field: v } })} mono disabled={ro} /> : null}
                  <Select
                    label="Create method"
                    value={obj.create?.method ?? DEFAULT_METHOD.create}
                    disabled={ro}
                    onChange={(v) => setObj(activeObject, { create: editEndpoint(obj.create, "create", { method: v }) })}
                    options={methodOptions(obj.create?.method, ["POST", "PUT"]).map((m) => [m, m])}
                  />
                  <Text label="Create path" value={obj.create?.path} onChange={(v) => setObj(activeObject, { create: editEndpoint(obj.create, "create", { path: v }) })} mono placeholder="the collection path" disabled={ro} />
                  <Select
                    label="Update method"
                    value={obj.update?.method ?? DEFAULT_METHOD.update}
                    disabled={ro}
                    onChange={(v) => setObj(activeObject, { update: editEndpoint(obj.update, "update", { method: v }) })}
                    options={methodOptions(obj.update?.method, ["PATCH", "PUT", "POST"]).map((m) => [m, m])}
                  />
                  <Text label="Update path" value={obj.update?.path} onChange={(v) => setObj(activeObject, { update: editEndpoint(obj.update, "update", { path: v }) })} mono placeholder="the item path" disabled={ro} hint="{id} is replaced." />
                  <Select
                    label="Deletes"
                    value={obj.delete === null ? "off" : obj.delete?.method ?? DEFAULT_METHOD.delete}
                    disabled={ro}
                    onChange={(v) => setObj(activeObject, { delete: v === "off" ? null : editEndpoint(obj.delete, "delete", { method: v }) })}
                    options={[...methodOptions(obj.delete?.method, ["DELETE", "POST"]).map((m): [string, string] => [m, m]), ["off", "Not accepted"]]}
                  />
                  {obj.delete !== null ? (
                    <Text label="Delete path" value={obj.delete?.path} onChange={(v) => setObj(activeObject, { delete: editEndpoint(obj.delete, "delete", { path: v }) })} mono placeholder="the item path" disabled={ro} hint="{id} is replaced." />
                  ) : null}
                </div>
                <h3>Finding a record by its match keys</h3>
                <div className="form-grid">
                  <LookupFields lookup={obj.lookup} onChange={(lookup) => setObj(activeObject, { lookup })} disabled={ro} />
                </div>
              </>
            )}
          </ObjectTabs>

          <Section
            title="Webhooks"
            extra={
              <label className="check">
                <input
                  type="checkbox"
                  checked={!!cfg.webhooks}
                  disabled={ro}
                  onChange={(e) =>
                    setCfg({
                      ...cfg,
                      webhooks: e.target.checked
                        ? newWebhooks(sys.id, Object.keys(cfg.objects))
                        : null,
                    })
                  }
                />
                The system signs its webhooks
              </label>
            }
          >
            <p className="muted">
              The system posts changes to <code>{apiBase()}/hooks/{sys.id || "{id}"}</code>. {cfg.webhooks ? "Each is verified by its HMAC-SHA256 signature." : "Without a signing config, webhooks must use Concord's own event format."}
            </p>
            {cfg.webhooks ? (
              <div className="form-grid">
                <Text label="Signing key name (keychain)" value={cfg.webhooks.secret} onChange={(v) => setCfg({ ...cfg, webhooks: { ...cfg.webhooks!, secret: v } })} mono disabled={ro} />
                <SecretField
                  className="span-2"
                  name={cfg.webhooks.secret}
                  label={WEBHOOK_SECRET_PURPOSE}
                  input={hookSecret}
                  mayManage={mayEdit}
                  disabled={ro}
                  usedBy={usedBy(cfg.webhooks.secret)}
                />
                <Text label="Signature header" value={cfg.webhooks.signature_header} onChange={(v) => setCfg({ ...cfg, webhooks: { ...cfg.webhooks!, signature_header: v } })} mono disabled={ro} />
                <Text label="Signature prefix" value={cfg.webhooks.signature_prefix} onChange={(v) => setCfg({ ...cfg, webhooks: { ...cfg.webhooks!, signature_prefix: v } })} mono placeholder="sha256=" disabled={ro} />
                <Text label="Timestamp header" value={cfg.webhooks.timestamp_header} onChange={(v) => setCfg({ ...cfg, webhooks: { ...cfg.webhooks!, timestamp_header: v } })} mono disabled={ro} />
                <Num label="Tolerance (s)" value={cfg.webhooks.tolerance_secs} onChange={(v) => setCfg({ ...cfg, webhooks: { ...cfg.webhooks!, tolerance_secs: v } })} disabled={ro} />
                <Select<SignedPayload> label="Signed payload" value={cfg.webhooks.signed_payload ?? "timestamp_dot_body"} disabled={ro} onChange={(v) => setCfg({ ...cfg, webhooks: { ...cfg.webhooks!, signed_payload: v } })} options={options(SIGNED_PAYLOAD_LABELS)} />
                <Select label="Object" value={cfg.webhooks.object} disabled={ro} onChange={(v) => setCfg({ ...cfg, webhooks: { ...cfg.webhooks!, object: v } })} options={[...new Set([cfg.webhooks.object, ...Object.keys(cfg.objects)])].map((n) => [n, n] as [string, string])} />
                <EventsField value={cfg.webhooks.events_pointer} onChange={(v) => setCfg({ ...cfg, webhooks: { ...cfg.webhooks!, events_pointer: v } })} disabled={ro} />
                <Text label="Record pointer" value={cfg.webhooks.record_pointer} onChange={(v) => setCfg({ ...cfg, webhooks: { ...cfg.webhooks!, record_pointer: v } })} mono placeholder="/data" disabled={ro} hint="In one event. Blank: the event is the record." />
                <Text label="Event key pointer" value={cfg.webhooks.event_key_pointer} onChange={(v) => setCfg({ ...cfg, webhooks: { ...cfg.webhooks!, event_key_pointer: v } })} mono disabled={ro} />
                <Text label="Operation pointer" value={cfg.webhooks.op_pointer} onChange={(v) => setCfg({ ...cfg, webhooks: { ...cfg.webhooks!, op_pointer: v } })} mono disabled={ro} />
                <Text
                  label="Delete values"
                  value={(cfg.webhooks.delete_values ?? []).join(", ")}
                  onChange={(v) => setCfg({ ...cfg, webhooks: { ...cfg.webhooks!, delete_values: v.split(",").map((x) => x.trim()).filter(Boolean) } })}
                  placeholder="deleted, employee.deleted"
                  disabled={ro}
                />
                <Text label="Occurred-at pointer" value={cfg.webhooks.occurred_at_pointer} onChange={(v) => setCfg({ ...cfg, webhooks: { ...cfg.webhooks!, occurred_at_pointer: v } })} mono disabled={ro} />
              </div>
            ) : null}
          </Section>

          <PollSection
            poll={cfg.poll}
            onChange={(poll) => setCfg({ ...cfg, poll })}
            disabled={ro}
            toggle="Poll for changes"
            off="Off: changes arrive by webhook only. Polling also repairs missed webhooks."
            start={newPoll()}
          />

          <ReconcileFields cfg={cfg} onChange={(reconcile) => setCfg({ ...cfg, reconcile })} disabled={ro} />

          <ConfigPreview config={toConfig(cfg)} />
        </>
      )}
    </form>
  );
}

