// The Systems form's building blocks: labelled inputs, the choices of each kind the `rest`
// connector takes (auth, pagination, incremental reads, concurrency, webhook payloads, look-ups),
// and the editors of the parts that have their own shape (query parameters, pagination,
// incremental reads, a webhook body's events, look-ups by match keys, the reconciliation
// schedule).

import { useId, useState, type ReactNode } from "react";
import { Plus, Trash2 } from "lucide-react";
import type { AuthType, ConcurrencyStyle, Incremental, IncrementalStyle, Pagination, PaginationStyle, SignedPayload, TimeFormat } from "../api/types";
import { eventsPointerFor, eventsShape, paramProblems, paramRows, paramsOf, stableJson, type EventsShape, type ParamRow } from "../lib/restconfig";
import { Field } from "./ui";

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

export function Text(props: { label: string; value: string | null | undefined; onChange: (v: string) => void; hint?: ReactNode; placeholder?: string; mono?: boolean; disabled?: boolean; required?: boolean; className?: string }) {
  return (
    <Field label={props.label} hint={props.hint} className={props.className}>
      {(id) => (
        <input
          id={id}
          className={`input ${props.mono ? "mono" : ""}`}
          value={props.value ?? ""}
          placeholder={props.placeholder}
          disabled={props.disabled}
          required={props.required}
          onChange={(e) => props.onChange(e.target.value)}
        />
      )}
    </Field>
  );
}

export function Num(props: { label: string; value: number | null | undefined; onChange: (v: number | undefined) => void; hint?: ReactNode; disabled?: boolean; step?: string }) {
  return (
    <Field label={props.label} hint={props.hint}>
      {(id) => (
        <input
          id={id}
          type="number"
          step={props.step ?? "1"}
          min={0}
          className="input"
          value={props.value ?? ""}
          disabled={props.disabled}
          onChange={(e) => props.onChange(e.target.value === "" ? undefined : Number(e.target.value))}
        />
      )}
    </Field>
  );
}

export function Select<T extends string>(props: { label: string; value: T; options: [T, string][]; onChange: (v: T) => void; disabled?: boolean; hint?: ReactNode }) {
  return (
    <Field label={props.label} hint={props.hint}>
      {(id) => (
        <select id={id} className="select" value={props.value} disabled={props.disabled} onChange={(e) => props.onChange(e.target.value as T)}>
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
