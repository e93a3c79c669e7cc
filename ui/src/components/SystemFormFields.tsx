// The Systems form's building blocks: labelled inputs, the choices of each kind the `rest`
// connector takes (auth, pagination, incremental reads, concurrency, webhook payloads, look-ups),
// the editors of the parts that have their own shape (query parameters, pagination,
// incremental reads, a webhook body's events, look-ups by match keys, the reconciliation
// schedule), and the sections the connectors' forms share (connection and auth for `rest` and
// `scim`; objects as tabs, polling, reconciliation and the config as saved for `sql` too).

import { useId, useState, type ReactNode } from "react";
import { AlertTriangle, Plus, Trash2 } from "lucide-react";
import type { AuthType, ConcurrencyStyle, Incremental, IncrementalStyle, Lookup, LookupStyle, Pagination, PaginationStyle, PollConfig, RestConfig, SignedPayload, TimeFormat } from "../api/types";
import {
  authMissing,
  authTakes,
  describeSchedule,
  eventsPointerFor,
  eventsShape,
  lookupTemplateProblem,
  newLookup,
  newReconcile,
  paramProblems,
  paramRows,
  paramsOf,
  percentToShare,
  reconcileSchedule,
  shareToPercent,
  stableJson,
  DEFAULT_MAX_DELETE_SHARE,
  DEFAULT_RECONCILE_SECS,
  AUTH_SECRET_PURPOSE,
  FIRST_OFFSETS,
  type AuthDraft,
  type AuthKey,
  type EventsShape,
  type ParamRow,
  type ReconcileSchedule,
  type RestForm,
} from "../lib/restconfig";
import { SecretField, type SecretInput } from "./SecretField";
import { EmptyState, Field } from "./ui";

export function Section({ title, children, extra }: { title: string; children: ReactNode; extra?: ReactNode }) {
  return (
    <section className="card">
      <div className="card-head">
        <h2>{title}</h2>
        {extra}
      </div>
      <div className="card-body col" style={{ gap: 14 }}>
        {children}
      </div>
    </section>
  );
}

export function Text(props: { label: string; value: string | null | undefined; onChange: (v: string) => void; hint?: ReactNode; error?: string | null; placeholder?: string; mono?: boolean; disabled?: boolean; required?: boolean; className?: string }) {
  return (
    <Field label={props.label} hint={props.hint} error={props.error} className={props.className}>
      {(id) => (
        <input
          id={id}
          className={`input ${props.mono ? "mono" : ""}`}
          value={props.value ?? ""}
          placeholder={props.placeholder}
          disabled={props.disabled}
          required={props.required}
          aria-invalid={props.error ? true : undefined}
          onChange={(e) => props.onChange(e.target.value)}
        />
      )}
    </Field>
  );
}

export function Num(props: { label: string; value: number | null | undefined; onChange: (v: number | undefined) => void; hint?: ReactNode; error?: string | null; disabled?: boolean; step?: string; min?: number; max?: number; placeholder?: string }) {
  return (
    <Field label={props.label} hint={props.hint} error={props.error}>
      {(id) => (
        <input
          id={id}
          type="number"
          step={props.step ?? "1"}
          min={props.min ?? 0}
          aria-invalid={props.error ? true : undefined}
          max={props.max}
          placeholder={props.placeholder}
          className="input"
          value={props.value ?? ""}
          disabled={props.disabled}
          onChange={(e) => props.onChange(e.target.value === "" ? undefined : Number(e.target.value))}
        />
      )}
    </Field>
  );
}

export function Select<T extends string>(props: { label: string; value: T; options: [T, string][]; onChange: (v: T) => void; disabled?: boolean; hint?: ReactNode; error?: string | null }) {
  return (
    <Field label={props.label} hint={props.hint} error={props.error}>
      {(id) => (
        <select id={id} className="select" value={props.value} disabled={props.disabled} aria-invalid={props.error ? true : undefined} onChange={(e) => props.onChange(e.target.value as T)}>
          {props.options.map(([v, l]) => (
            <option key={v} value={v}>
              {l}
            </option>
          ))}
        </select>
      )}
    </Field>
  );
}

/** The choices of each kind the form offers, for people. Every kind the engine takes is listed: a new one fails `tsc` here. */
export const AUTH_LABELS: Record<AuthType, string> = {
  none: "None",
  api_key: "API key in a header",
  bearer: "Bearer token",
  basic: "Basic (username + password)",
  oauth2_client_credentials: "OAuth2 client credentials",
};
export const PAGINATION_LABELS: Record<PaginationStyle, string> = {
  none: "None (one response)",
  page: "Page number",
  offset: "Offset / limit",
  cursor: "Cursor",
  link_header: "Link header (RFC 8288)",
};
export const INCREMENTAL_LABELS: Record<IncrementalStyle, string> = {
  param: "Since parameter",
  filter: "Filter template",
};
export const TIME_FORMAT_LABELS: Record<TimeFormat, string> = {
  raw: "As the record holds it",
  rfc3339: "RFC 3339",
  unix: "Unix seconds",
  unix_ms: "Unix milliseconds",
};
export const CONCURRENCY_LABELS: Record<ConcurrencyStyle, string> = {
  none: "None",
  etag: "If-Match (ETag)",
  version_field: "Version in the body",
};
export const LOOKUP_LABELS: Record<LookupStyle, string> = {
  param: "A query parameter per match key",
  filter: "A filter expression",
};
export const SIGNED_PAYLOAD_LABELS: Record<SignedPayload, string> = {
  timestamp_dot_body: "{timestamp}.{body}",
  body: "The raw body",
};

/** A labels table as a select's options, in the table's order. */
export function options<T extends string>(labels: Record<T, string>): [T, string][] {
  return Object.entries(labels) as [T, string][];
}

export function IncrementalFields({ inc, onChange, disabled }: { inc: Incremental; onChange: (i: Incremental) => void; disabled: boolean }) {
  return (
    <>
      <Text label="Parameter" value={inc.param} onChange={(v) => onChange({ ...inc, param: v })} mono disabled={disabled} />
      {inc.style === "filter" ? <Text label="Template" value={inc.template} onChange={(v) => onChange({ ...inc, template: v })} mono disabled={disabled} hint="{since} is replaced." /> : null}
      <Select<TimeFormat> label="Time format" value={inc.format ?? "raw"} disabled={disabled} onChange={(v) => onChange({ ...inc, format: v })} options={options(TIME_FORMAT_LABELS)} />
    </>
  );
}

/** How a webhook body holds its events; the shape is this field's own state, so a pointer can be cleared while it is typed. */
export function EventsField({ value, onChange, disabled }: { value: string | null | undefined; onChange: (v: string | null) => void; disabled: boolean }) {
  const [shape, setShape] = useState<EventsShape>(() => eventsShape(value));
  return (
    <>
      <Select<EventsShape>
        label="A webhook body holds"
        value={shape}
        disabled={disabled}
        onChange={(v) => {
          setShape(v);
          onChange(eventsPointerFor(v, value));
        }}
        options={[
          ["one", "One event"],
          ["array", "An array of events"],
          ["pointer", "Events at a pointer"],
        ]}
      />
      {shape === "pointer" ? <Text label="Events pointer" value={value} onChange={onChange} mono placeholder="/events" disabled={disabled} hint="Blank: the body is the array." /> : null}
    </>
  );
}

/**
 * The fixed query parameters of every listing request, as rows of name and value. The rows are
 * this editor's own state, so a name can be blank or repeated while it is typed.
 */
export function ParamsEditor({ params, onChange, disabled, className }: { params: Record<string, string> | undefined; onChange: (p: Record<string, string>) => void; disabled: boolean; className?: string }) {
  const [rows, setRows] = useState<ParamRow[]>(() => paramRows(params));
  const id = useId();
  const problems = paramProblems(rows);
  const update = (next: ParamRow[]) => {
    setRows(next);
    const p = paramsOf(next);
    if (stableJson(p) !== stableJson(params ?? {})) onChange(p);
  };
  const edit = (i: number, patch: Partial<ParamRow>) => update(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  return (
    <div className={`field ${className ?? ""}`} role="group" aria-labelledby={`${id}-label`}>
      <span className="label" id={`${id}-label`}>
        Query parameters
      </span>
      {rows.map((r, i) => (
        <div key={i} className="col" style={{ gap: 2 }}>
          <div className="row">
            <input
              className="input mono"
              aria-label={`Parameter ${i + 1} name`}
              aria-describedby={problems[i] ? `${id}-p${i}` : undefined}
              aria-invalid={problems[i] ? true : undefined}
              placeholder="name"
              style={{ maxWidth: 220 }}
              value={r.name}
              disabled={disabled}
              onChange={(e) => edit(i, { name: e.target.value })}
            />
            <span className="faint" aria-hidden="true">
              =
            </span>
            <input className="input mono" aria-label={`Parameter ${i + 1} value`} placeholder="value" style={{ maxWidth: 320 }} value={r.value} disabled={disabled} onChange={(e) => edit(i, { value: e.target.value })} />
            <button type="button" className="btn sm ghost icon" aria-label={`Remove parameter ${i + 1}${r.name ? ` (${r.name})` : ""}`} disabled={disabled} onClick={() => update(rows.filter((_, j) => j !== i))}>
              <Trash2 size={13} />
            </button>
          </div>
          {problems[i] ? (
            <span className="err" id={`${id}-p${i}`}>
              {problems[i]}
            </span>
          ) : null}
        </div>
      ))}
      <div className="row">
        <button type="button" className="btn sm" disabled={disabled} onClick={() => update([...rows, { name: "", value: "" }])}>
          <Plus size={13} /> Add parameter
        </button>
        <span className="hint">Sent with every listing request, e.g. a page-size switch. Not in the collection path.</span>
      </div>
    </div>
  );
}

export function PaginationFields({ p, onChange, disabled }: { p: Pagination; onChange: (p: Pagination) => void; disabled: boolean }) {
  switch (p.style) {
    case "none":
      return null;
    case "page":
      return (
        <>
          <Text label="Page parameter" value={p.page_param} onChange={(v) => onChange({ ...p, page_param: v })} mono disabled={disabled} />
          <Text label="Size parameter" value={p.size_param} onChange={(v) => onChange({ ...p, size_param: v })} mono disabled={disabled} />
          <Num label="Page size" value={p.size} onChange={(v) => onChange({ ...p, size: v ?? 100 })} disabled={disabled} />
          <Num label="First page" value={p.first_page} onChange={(v) => onChange({ ...p, first_page: v ?? 1 })} disabled={disabled} hint="Default 1." />
        </>
      );
    case "offset":
      return (
        <>
          <Text label="Offset parameter" value={p.offset_param} onChange={(v) => onChange({ ...p, offset_param: v })} mono disabled={disabled} />
          <Text label="Limit parameter" value={p.limit_param} onChange={(v) => onChange({ ...p, limit_param: v })} mono disabled={disabled} />
          <Num label="Limit" value={p.limit} onChange={(v) => onChange({ ...p, limit: v ?? 100 })} disabled={disabled} />
          <Select<string>
            label="First offset"
            value={String(p.first_offset ?? 0)}
            disabled={disabled}
            hint="The index of the first record: 0, or 1 where the system counts from one."
            onChange={(v) => onChange({ ...p, first_offset: Number(v) })}
            options={[...FIRST_OFFSETS, ...(p.first_offset !== undefined && !FIRST_OFFSETS.some(([n]) => n === p.first_offset) ? [[p.first_offset, String(p.first_offset)] as [number, string]] : [])].map(([n, l]): [string, string] => [String(n), l])}
          />
        </>
      );
    case "cursor":
      return (
        <>
          <Text label="Cursor parameter" value={p.cursor_param} onChange={(v) => onChange({ ...p, cursor_param: v })} mono disabled={disabled} />
          <Text label="Next cursor pointer" value={p.next_pointer} onChange={(v) => onChange({ ...p, next_pointer: v })} mono disabled={disabled} />
          <Text label="Size parameter" value={p.size_param} onChange={(v) => onChange({ ...p, size_param: v })} mono disabled={disabled} />
          <Num label="Page size" value={p.size} onChange={(v) => onChange({ ...p, size: v ?? null })} disabled={disabled} />
        </>
      );
    case "link_header":
      return (
        <>
          <Text label="Size parameter" value={p.size_param} onChange={(v) => onChange({ ...p, size_param: v })} mono disabled={disabled} />
          <Num label="Page size" value={p.size} onChange={(v) => onChange({ ...p, size: v ?? null })} disabled={disabled} />
        </>
      );
  }
}

/** How the engine asks the system for the records whose match keys have a value (before re-sending a create whose outcome is unknown). */
export function LookupFields({ lookup, onChange, disabled }: { lookup: Lookup | null | undefined; onChange: (l: Lookup | null) => void; disabled: boolean }) {
  const problem = lookup?.style === "filter" ? lookupTemplateProblem(lookup.template) : null;
  return (
    <>
      <Select<LookupStyle | "off">
        label="Look-up by match keys"
        value={lookup?.style ?? "off"}
        disabled={disabled}
        hint={
          lookup?.style === "param"
            ? "?{path}={value} for each match key, e.g. ?email=ana@example.com."
            : lookup
              ? undefined
              : "Off: the whole listing is searched before a create whose outcome is unknown is sent again."
        }
        onChange={(v) => onChange(v === "off" ? null : newLookup(v))}
        options={[["off", "Off (search the listing)"], ...options(LOOKUP_LABELS)]}
      />
      {lookup?.style === "filter" ? (
        <>
          <Text label="Filter parameter" value={lookup.param} onChange={(v) => onChange({ ...lookup, param: v })} mono placeholder="filter" disabled={disabled} />
          <Field label="Filter template" error={problem} hint={<>{"{path}"} becomes the match key's system path, {"{value}"} its value; a fixed field works too: <code>{'userName eq "{value}"'}</code>.</>}>
            {(id) => <input id={id} className="input mono" value={lookup.template} disabled={disabled} aria-invalid={problem ? true : undefined} onChange={(e) => onChange({ ...lookup, template: e.target.value })} />}
          </Field>
        </>
      ) : null}
    </>
  );
}

/**
 * When the system is compared in full with what the engine knows, and how many records one run
 * may delete. `schedule` is the connector's own reading where it differs from a `rest` system's.
 */
export function ReconcileFields({ cfg, schedule = reconcileSchedule(cfg), onChange, disabled }: { cfg: Pick<RestConfig, "reconcile" | "poll" | "webhooks">; schedule?: ReconcileSchedule; onChange: (r: RestConfig["reconcile"]) => void; disabled: boolean }) {
  const r = cfg.reconcile;
  return (
    <Section
      title="Reconciliation"
      extra={
        <label className="check">
          <input type="checkbox" checked={!!r} disabled={disabled} onChange={(e) => onChange(e.target.checked ? newReconcile() : null)} />
          Set a schedule
        </label>
      }
    >
      <p className="muted" style={{ margin: 0 }}>
        A reconciliation lists every record of the system and compares it with what the engine knows: values it missed become changes, records it never saw are matched, and records gone (confirmed by a read by id) are deleted under the object's policy. Polled systems without webhooks are reconciled every {DEFAULT_RECONCILE_SECS} s by default.
      </p>
      <p style={{ margin: 0 }}>
        <strong>Now:</strong> {describeSchedule(schedule)}
      </p>
      {r ? (
        <div className="form-grid">
          <Num label="Interval (s)" value={r.interval_secs} step="any" onChange={(v) => onChange({ ...r, interval_secs: v ?? 0 })} disabled={disabled} hint="0 turns scheduled runs off; Reconcile now still works." />
          <Num
            label="Most a run may delete (%)"
            value={shareToPercent(r.max_delete_share)}
            step="any"
            max={100}
            placeholder={String(shareToPercent(DEFAULT_MAX_DELETE_SHARE))}
            onChange={(v) => onChange({ ...r, max_delete_share: percentToShare(v) })}
            disabled={disabled}
            hint={`When more of the linked records are gone in one run, nothing is deleted until an admin confirms. Blank: ${shareToPercent(DEFAULT_MAX_DELETE_SHARE)}%.`}
          />
        </div>
      ) : null}
    </Section>
  );
}

/** What a connector's own form (`scim`, `sql`) gets besides its config: the system, the object tabs' state, the workspace's objects, which saved systems use a secret, and whether it may be edited. */
export interface ConnectorFormProps {
  systemId: string;
  activeObject: string | null;
  onActiveObject: (name: string | null) => void;
  workspaceObjects: string[];
  usedBy: (name: string | null | undefined) => string[];
  mayEdit: boolean;
  disabled: boolean;
}

/** What the HTTP connectors (`rest`, `scim`) share of a config: where the system is and how to sign in. */
export type ConnectionDraft = Pick<RestForm, "base_url" | "timeout_ms" | "user_agent" | "auth"> & { error_message_pointer?: string | null };

/** The auth inputs besides the type and the secret, in the order the form shows them. */
const AUTH_INPUTS: [Exclude<AuthKey, "secret">, string, { placeholder?: string; mono?: boolean }][] = [
  ["header", "Header", { placeholder: "X-API-Key" }],
  ["prefix", "Prefix", { placeholder: "optional" }],
  ["username", "Username", {}],
  ["token_url", "Token URL", { mono: true }],
  ["client_id", "Client id", {}],
  ["scope", "Scope", { placeholder: "optional" }],
];

/** A keychain name to suggest for each auth type's secret. */
const SECRET_SUFFIX: Record<Exclude<AuthType, "none">, string> = { api_key: "api-key", bearer: "token", basic: "password", oauth2_client_credentials: "client-secret" };

/**
 * Base URL, timeout, user agent and auth, with the auth secret typed into the keychain (never
 * into the config). A key the chosen auth type needs is flagged while it is blank.
 */
export function ConnectionSection(props: {
  /** Offer the error-message pointer (the rest connector's key). */
  errorPointer?: boolean;
  cfg: ConnectionDraft;
  onChange: (patch: Partial<ConnectionDraft>) => void;
  /** The auth types offered (default: every type the engine takes). */
  authTypes?: readonly AuthType[];
  baseUrl: { placeholder: string; hint?: ReactNode; problem: string | null };
  systemId: string;
  secret: SecretInput;
  usedBy: string[];
  mayEdit: boolean;
  disabled: boolean;
}) {
  const { cfg, onChange, disabled } = props;
  const auth = cfg.auth;
  const missing = authMissing(auth);
  const setAuth = (patch: Partial<AuthDraft>) => onChange({ auth: { ...auth, ...patch } });
  return (
    <Section title="Connection">
      <div className="form-grid">
        <Text className="span-2" label="Base URL" value={cfg.base_url} onChange={(v) => onChange({ base_url: v })} mono placeholder={props.baseUrl.placeholder} hint={props.baseUrl.hint} error={props.baseUrl.problem} disabled={disabled} required />
        <Num label="Timeout (ms)" value={cfg.timeout_ms} onChange={(v) => onChange({ timeout_ms: v })} disabled={disabled} hint="Default 10000." />
        <Text label="User agent" value={cfg.user_agent} onChange={(v) => onChange({ user_agent: v })} disabled={disabled} />
        {props.errorPointer ? (
        <Text
          label="Error message pointer"
          value={cfg.error_message_pointer}
          onChange={(v) => onChange({ error_message_pointer: v })}
          mono
          placeholder="/result/reason"
          hint="Where the system's error answers keep their message, if not in message, detail, error_description or errors."
          disabled={disabled}
        />
        ) : null}
      </div>
      <div className="form-grid">
        <Select<AuthType> label="Authentication" value={auth.type} disabled={disabled} onChange={(v) => setAuth({ type: v })} options={props.authTypes ? props.authTypes.map((t) => [t, AUTH_LABELS[t]]) : options(AUTH_LABELS)} />
        {AUTH_INPUTS.filter(([k]) => authTakes(auth.type, k)).map(([k, label, o]) => (
          <Text key={k} label={label} value={auth[k]} onChange={(v) => setAuth({ [k]: v })} mono={o.mono} placeholder={o.placeholder} error={missing.includes(k) ? "Required." : null} disabled={disabled} />
        ))}
        {auth.type !== "none" ? (
          <>
            <Text
              label="Secret name (keychain)"
              value={auth.secret}
              onChange={(v) => setAuth({ secret: v })}
              mono
              placeholder={`${props.systemId || "system"}-${SECRET_SUFFIX[auth.type]}`}
              disabled={disabled}
              hint="The config holds only this name."
              error={missing.includes("secret") ? "Required: the config holds only this name." : null}
            />
            <SecretField className="span-2" name={auth.secret} label={AUTH_SECRET_PURPOSE[auth.type]} input={props.secret} mayManage={props.mayEdit} disabled={disabled} usedBy={props.usedBy} />
          </>
        ) : null}
      </div>
    </Section>
  );
}

/**
 * A config's objects as tabs: add one (named after a workspace object not yet used), rename one
 * (to a workspace object), remove one. `children` draws the active object's fields, with the
 * object's name select to place first; `flagged` marks the tabs of objects with a problem, so
 * one not shown is not missed.
 */
export function ObjectTabs<O>(props: {
  objects: Record<string, O>;
  onChange: (objects: Record<string, O>) => void;
  active: string | null;
  onActive: (name: string | null) => void;
  workspaceObjects: string[];
  newObject: (objects: Record<string, O>) => O;
  flagged?: (name: string) => boolean;
  empty: ReactNode;
  disabled: boolean;
  children: (name: string, o: O, nameField: ReactNode) => ReactNode;
}) {
  const { objects, onChange, active, onActive, disabled } = props;
  const names = Object.keys(objects);
  const o = active !== null && active in objects ? objects[active] : undefined;
  return (
    <Section
      title="Objects"
      extra={
        <button
          type="button"
          className="btn sm"
          disabled={disabled}
          onClick={() => {
            const name = props.workspaceObjects.find((n) => !(n in objects)) ?? `object${names.length + 1}`;
            onChange({ ...objects, [name]: props.newObject(objects) });
            onActive(name);
          }}
        >
          <Plus size={14} /> Add object
        </button>
      }
    >
      {names.length === 0 ? <EmptyState title="No objects">{props.empty}</EmptyState> : null}
      <div className="tabs" role="tablist" aria-label="Objects">
        {names.map((n) => (
          <button key={n} type="button" role="tab" className="tab" aria-selected={n === active} onClick={() => onActive(n)}>
            {n}
            {props.flagged?.(n) ? (
              <>
                {" "}
                <AlertTriangle size={13} aria-hidden="true" style={{ color: "var(--danger)", verticalAlign: -2 }} />
                <span className="sr-only">(has a problem)</span>
              </>
            ) : null}
          </button>
        ))}
      </div>
      {o !== undefined && active !== null ? (
        <div className="col" style={{ gap: 14 }} role="tabpanel" aria-label={active}>
          {props.children(
            active,
            o,
            <Select
              label="Object"
              value={active}
              disabled={disabled}
              onChange={(v) => {
                if (v === active || v in objects) return;
                const { [active]: moved, ...rest } = objects;
                onChange({ ...rest, [v]: moved! });
                onActive(v);
              }}
              options={[...new Set([active, ...props.workspaceObjects])].map((n) => [n, n] as [string, string])}
            />,
          )}
          <div className="row">
            <span className="spacer" />
            <button
              type="button"
              className="btn sm danger"
              disabled={disabled}
              onClick={() => {
                const { [active]: _gone, ...rest } = objects;
                onChange(rest);
                onActive(Object.keys(rest)[0] ?? null);
              }}
            >
              <Trash2 size={14} /> Remove {active}
            </button>
          </div>
        </div>
      ) : null}
    </Section>
  );
}

/** Polling on or off; `off` says what happens without a poll config, `start` is what turning it on sets. */
export function PollSection({ poll, onChange, disabled, toggle, off, start }: { poll: PollConfig | null | undefined; onChange: (p: PollConfig | null) => void; disabled: boolean; toggle: string; off: ReactNode; start: PollConfig }) {
  return (
    <Section
      title="Polling"
      extra={
        <label className="check">
          <input type="checkbox" checked={!!poll} disabled={disabled} onChange={(e) => onChange(e.target.checked ? { ...start } : null)} />
          {toggle}
        </label>
      }
    >
      {poll ? (
        <div className="form-grid">
          <Num label="Interval (s)" value={poll.interval_secs} step="any" onChange={(v) => onChange({ ...poll, interval_secs: v ?? start.interval_secs })} disabled={disabled} />
        </div>
      ) : (
        <p className="muted">{off}</p>
      )}
    </Section>
  );
}

/** The config a save sends, for reading. */
export function ConfigPreview({ config }: { config: unknown }) {
  return (
    <details className="card" style={{ padding: "10px 16px" }}>
      <summary style={{ cursor: "pointer", fontWeight: 600 }}>Config as saved (JSON)</summary>
      <pre className="block" style={{ marginTop: 10 }}>{JSON.stringify(config, null, 2)}</pre>
    </details>
  );
}
