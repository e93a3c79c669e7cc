// One connection of the field mapper: its system path (any path the engine reads, array
// selectors included), its canonical fields, its transform with the transform's settings, what
// to do with a null, an enum table, and what is wrong with it (before saving, on the sample,
// and the paths a check found in no record).

import { useEffect, useId, useRef } from "react";
import { AlertTriangle, ArrowRight, Plus, Trash2 } from "lucide-react";
import type { EnumEntry, FieldDef, MappingRule, NullPolicy, PathProblem, Transform, TransformKind } from "../api/types";
import { TRANSFORM_KINDS, arity, changeKind, readOnlyReason, ruleProblems } from "../lib/mapping";
import { PATH_HINT } from "../lib/syspath";
import { parseTyped } from "../lib/format";
import { Field, Pill } from "./ui";

const DATE_FORMATS = ["%Y-%m-%d", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%Y%m%d"];

export function RuleEditor(props: {
  index: number;
  rule: MappingRule;
  active: boolean;
  systemPaths: string[];
  canonical: FieldDef[];
  readOnly: boolean;
  serverError: string | null;
  fieldError: string | null;
  /** Paths of this rule that the last check found in no record of the system. */
  pathProblems: PathProblem[];
  disabled: boolean;
  onFocus: () => void;
  onChange: (r: MappingRule) => void;
  onRemove: () => void;
}) {
  const { rule, disabled } = props;
  const t: Transform = rule.transform ?? { kind: "copy" };
  const a = arity(t.kind);
  const canonical = rule.canonical ?? [];
  const firstDef = props.canonical.find((f) => f.name === canonical[0]);
  const problems = ruleProblems(rule, props.canonical.map((f) => f.name));
  const roReason = readOnlyReason(t);
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    // Scroll the list of connections (not the page) to the active one.
    const el = ref.current;
    const list = el?.parentElement;
    if (!props.active || !el || !list) return;
    const r = el.getBoundingClientRect();
    const l = list.getBoundingClientRect();
    if (r.top < l.top || r.bottom > l.bottom) list.scrollTo({ top: list.scrollTop + (r.top - l.top) - 8, behavior: "smooth" });
  }, [props.active]);
  const setT = (nt: Transform) => props.onChange({ ...rule, transform: nt });
  const nullPolicy: NullPolicy = rule.null ?? { policy: "leave_unchanged" };
  const pathsId = useId();

  return (
    <div ref={ref} className={`rule-card ${props.active ? "active" : ""}`} onFocusCapture={props.onFocus} onClick={props.onFocus} role="group" aria-label={`Connection ${props.index + 1}: ${rule.system.join(", ")} to ${canonical.join(", ") || "nothing"}`}>
      <div className="r-head">
        {/* Any path the engine reads may be typed (brackets and dots included); the list offers the fields found. */}
        <input
          className="input mono path-input"
          aria-label="System field"
          aria-describedby={props.active ? `${pathsId}-hint` : undefined}
          aria-invalid={props.pathProblems.length > 0 ? true : undefined}
          list={`${pathsId}-paths`}
          placeholder="system path…"
          spellCheck={false}
          autoComplete="off"
          value={rule.system[0] ?? ""}
          disabled={disabled}
          onChange={(e) => props.onChange({ ...rule, system: [e.target.value] })}
        />
        <datalist id={`${pathsId}-paths`}>
          {props.systemPaths.filter(Boolean).map((p) => (
            <option key={p} value={p} />
          ))}
        </datalist>
        <ArrowRight size={16} className="arrow" aria-hidden="true" />
        {a.canonical === 0 ? <span className="faint">(written only)</span> : null}
        {Array.from({ length: a.canonical }, (_, k) => (
          <select
            key={k}
            className="select mono"
            aria-label={a.canonical === 2 ? (k === 0 ? "Given name field" : "Family name field") : "Canonical field"}
            value={canonical[k] ?? ""}
            disabled={disabled}
            onChange={(e) => {
              const next = [...canonical];
              next[k] = e.target.value;
              props.onChange({ ...rule, canonical: next });
            }}
          >
            <option value="">canonical field…</option>
            {props.canonical.map((f) => (
              <option key={f.name}>{f.name}</option>
            ))}
          </select>
        ))}
        <span className="spacer" />
        {props.readOnly || roReason ? (
          <Pill tone="warning" title={roReason ?? "The preview reports this field cannot be written back"}>
            read-only
          </Pill>
        ) : null}
        <button type="button" className="btn sm ghost icon" aria-label={`Remove connection ${props.index + 1}`} disabled={disabled} onClick={props.onRemove}>
          <Trash2 size={14} />
        </button>
      </div>
      <div className="form-grid" style={{ gridTemplateColumns: "repeat(auto-fill, minmax(150px, 1fr))" }}>
        <Field label="Transform">
          {(id) => (
            <select id={id} className="select" value={t.kind} disabled={disabled} onChange={(e) => props.onChange(changeKind(rule, e.target.value as TransformKind, firstDef?.values ?? []))}>
              {TRANSFORM_KINDS.map((k) => (
                <option key={k.kind} value={k.kind} title={k.help}>
                  {k.label}
                </option>
              ))}
            </select>
          )}
        </Field>
        {t.kind === "date" ? (
          <Field label="Date format" hint="strftime, e.g. %m/%d/%Y">
            {(id) => (
              <>
                <input id={id} className="input mono" list={`datefmt-${props.index}`} value={t.format} disabled={disabled} onChange={(e) => setT({ ...t, format: e.target.value })} />
                <datalist id={`datefmt-${props.index}`}>
                  {DATE_FORMATS.map((f) => (
                    <option key={f} value={f} />
                  ))}
                </datalist>
              </>
            )}
          </Field>
        ) : null}
        {t.kind === "timestamp" ? (
          <>
            <Field label="Format" hint="blank: %Y-%m-%d %H:%M:%S">
              {(id) => <input id={id} className="input mono" value={t.format ?? ""} disabled={disabled} onChange={(e) => setT({ ...t, format: e.target.value || null })} />}
            </Field>
            <Field label="Time zone" hint="IANA, e.g. America/New_York">
              {(id) => <input id={id} className="input mono" value={t.tz} disabled={disabled} onChange={(e) => setT({ ...t, tz: e.target.value })} />}
            </Field>
          </>
        ) : null}
        {t.kind === "money_minor" ? (
          <Field label="Minor digits (exponent)" hint="2 for USD, 0 for JPY">
            {(id) => <input id={id} type="number" min={0} max={6} className="input" value={t.exponent} disabled={disabled} onChange={(e) => setT({ ...t, exponent: Number(e.target.value) })} />}
          </Field>
        ) : null}
        {t.kind === "money_decimal" ? (
          <Field label="Decimals written (scale)">
            {(id) => <input id={id} type="number" min={0} max={10} className="input" value={t.scale} disabled={disabled} onChange={(e) => setT({ ...t, scale: Number(e.target.value) })} />}
          </Field>
        ) : null}
        {t.kind === "phone" ? (
          <>
            <Field label="Default region" hint="ISO country code">
              {(id) => <input id={id} className="input mono" maxLength={2} value={t.region} disabled={disabled} onChange={(e) => setT({ ...t, region: e.target.value.toUpperCase() })} />}
            </Field>
            <Field label="Written as">
              {(id) => (
                <select id={id} className="select" value={t.system_format ?? "e164"} disabled={disabled} onChange={(e) => setT({ ...t, system_format: e.target.value as "e164" | "national" | "international" })}>
                  <option value="e164">+14155550123</option>
                  <option value="national">(415) 555-0123</option>
                  <option value="international">+1 415-555-0123</option>
                </select>
              )}
            </Field>
          </>
        ) : null}
        {t.kind === "constant" ? (
          <Field label="Value (JSON or text)">
            {(id) => <input id={id} className="input mono" value={typeof t.value === "string" ? t.value : JSON.stringify(t.value)} disabled={disabled} onChange={(e) => setT({ ...t, value: parseTyped(e.target.value) ?? "" })} />}
          </Field>
        ) : null}
        <Field label="When the system sends null">
          {(id) => (
            <select
              id={id}
              className="select"
              value={nullPolicy.policy}
              disabled={disabled}
              onChange={(e) => {
                const v = e.target.value as NullPolicy["policy"];
                props.onChange({ ...rule, null: v === "default" ? { policy: "default", value: "" } : ({ policy: v } as NullPolicy) });
              }}
            >
              <option value="leave_unchanged">Leave unchanged</option>
              <option value="reject">Reject (exception)</option>
              <option value="clear">Clear everywhere</option>
              <option value="default">Use a default</option>
            </select>
          )}
        </Field>
        {nullPolicy.policy === "default" ? (
          <Field label="Default value">
            {(id) => <input id={id} className="input mono" value={typeof nullPolicy.value === "string" ? nullPolicy.value : JSON.stringify(nullPolicy.value)} disabled={disabled} onChange={(e) => props.onChange({ ...rule, null: { policy: "default", value: parseTyped(e.target.value, firstDef?.type) } })} />}
          </Field>
        ) : null}
      </div>
      {t.kind === "enum" ? <EnumTable table={t.table} codes={firstDef?.values ?? []} disabled={disabled} onChange={(table) => setT({ ...t, table })} /> : null}
      {roReason ? <p className="faint" style={{ fontSize: 12 }}>Read-only for this system: {roReason}.</p> : null}
      {problems.map((p) => (
        <p key={p} style={{ color: "var(--warning)", fontSize: 12.5 }}>
          {p}
        </p>
      ))}
      {props.active && !disabled ? (
        <p id={`${pathsId}-hint`} className="faint" style={{ fontSize: 12, margin: 0 }}>
          {PATH_HINT}
        </p>
      ) : null}
      {props.pathProblems.map((p, j) => (
        <p key={j} className="path-problem">
          <AlertTriangle size={12} aria-hidden="true" style={{ flex: "none" }} />
          <span>
            <span className="mono">{p.path}</span>: {p.message}
          </span>
        </p>
      ))}
      {props.serverError ? (
        <p role="alert" style={{ color: "var(--danger)", fontSize: 12.5 }}>
          {props.serverError}
        </p>
      ) : null}
      {props.fieldError ? (
        <p style={{ color: "var(--danger)", fontSize: 12.5 }}>
          <AlertTriangle size={12} aria-hidden="true" /> On the sample: {props.fieldError}
        </p>
      ) : null}
    </div>
  );
}

function EnumTable({ table, codes, disabled, onChange }: { table: EnumEntry[]; codes: string[]; disabled: boolean; onChange: (t: EnumEntry[]) => void }) {
  return (
    <div className="col" style={{ gap: 6 }}>
      <span className="muted" style={{ fontSize: 12.5, fontWeight: 600 }}>
        Enum table (system value → canonical code)
      </span>
      {table.map((e, i) => (
        <div key={i} className="row">
          <input
            className="input mono"
            aria-label={`System value ${i + 1}`}
            style={{ width: 160 }}
            value={typeof e.system === "string" ? e.system : JSON.stringify(e.system)}
            disabled={disabled}
            onChange={(ev) => onChange(table.map((x, j) => (j === i ? { ...x, system: parseEnumSystem(ev.target.value) } : x)))}
          />
          <ArrowRight size={14} className="faint" aria-hidden="true" />
          {codes.length ? (
            <select className="select mono" aria-label={`Canonical code ${i + 1}`} value={e.canonical} disabled={disabled} onChange={(ev) => onChange(table.map((x, j) => (j === i ? { ...x, canonical: ev.target.value } : x)))}>
              {[...new Set([e.canonical, ...codes])].map((c) => (
                <option key={c}>{c}</option>
              ))}
            </select>
          ) : (
            <input className="input mono" aria-label={`Canonical code ${i + 1}`} value={e.canonical} disabled={disabled} onChange={(ev) => onChange(table.map((x, j) => (j === i ? { ...x, canonical: ev.target.value } : x)))} />
          )}
          <button type="button" className="btn sm ghost icon" aria-label={`Remove row ${i + 1}`} disabled={disabled} onClick={() => onChange(table.filter((_, j) => j !== i))}>
            <Trash2 size={13} />
          </button>
        </div>
      ))}
      <div>
        <button type="button" className="btn sm" disabled={disabled} onClick={() => onChange([...table, { system: "", canonical: codes[0] ?? "" }])}>
          <Plus size={13} /> Add row
        </button>
      </div>
    </div>
  );
}

/** A system enum value: numbers and booleans as JSON, everything else as text. */
function parseEnumSystem(text: string): unknown {
  if (/^-?\d+(\.\d+)?$/.test(text.trim())) return Number(text.trim());
  if (text.trim() === "true") return true;
  if (text.trim() === "false") return false;
  return text;
}

