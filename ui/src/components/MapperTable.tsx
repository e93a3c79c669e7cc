// The table view of the field mapper, for wide schemas: one row per canonical field and one
// column per system that maps the object, so every system is seen side by side. The column of
// the system being edited holds a field picker, its sample value and what the preview makes of
// it, and the connection's transform, with the transform the samples suggest when it differs;
// the other systems' columns show their saved connection and a sample value. No lines to
// follow, and the transform is edited next to its row.

import { Lock, Pencil, Sparkles, Unlink } from "lucide-react";
import type { FieldDef, Mapping, MappingRule, Transform } from "../api/types";
import { betterTransform, fieldMatches, transformLabel } from "../lib/mapping";
import { suggestFromSamples } from "../lib/suggest";
import { readPath } from "../lib/syspath";
import { Pill, Spinner, Value } from "./ui";
import type { FieldError } from "./MappingPreview";

/** Another system that maps the object, as the table shows it. */
export interface OtherSystem {
  id: string;
  name: string;
  mapping: Mapping | undefined;
  sample: Record<string, unknown> | null;
  loading: boolean;
  onEdit: () => void;
}

interface Props {
  systemName: string;
  canonical: FieldDef[];
  filter: string;
  rules: MappingRule[];
  systemFields: [string, unknown][];
  samples: Record<string, unknown>[];
  /** The preview's canonical record: what the sample becomes. */
  canonicalValues: Record<string, unknown>;
  previewPending: boolean;
  readOnly: Set<string>;
  errorFor: (field: string) => FieldError | undefined;
  others: OtherSystem[];
  mayEdit: boolean;
  onConnect: (path: string, field: string) => void;
  onDisconnect: (field: string) => void;
  onEditRule: (index: number) => void;
  onSetTransform: (index: number, transform: Transform) => void;
}

/** The index of the rule that yields `field`, if one does. */
function ruleOf(rules: MappingRule[], field: string): number {
  return rules.findIndex((r) => (r.canonical ?? []).includes(field));
}

export function MapperTable(props: Props) {
  const rows = props.canonical.filter((f) => {
    if (fieldMatches(props.filter, f.name)) return true;
    const i = ruleOf(props.rules, f.name);
    return i >= 0 && props.rules[i]!.system.some((p) => fieldMatches(props.filter, p));
  });
  const paths = props.systemFields.map(([p]) => p);
  const connected = props.canonical.filter((f) => ruleOf(props.rules, f.name) >= 0).length;
  return (
    <div className="col" style={{ gap: 8 }}>
      <p className="muted" style={{ margin: 0, fontSize: 12.5 }}>
        {connected} of {props.canonical.length} canonical fields connected in {props.systemName}
        {rows.length < props.canonical.length ? `; ${rows.length} shown` : ""}.
      </p>
      <div className="table-scroll mapper-table-scroll">
        <table className="matrix mapper-table" aria-label={`Canonical fields and each system's field, ${props.systemName} editable`}>
          <thead>
            <tr>
              <th scope="col" className="sticky-col">Canonical field</th>
              <th scope="col">{props.systemName} (editing)</th>
              {props.others.map((o) => (
                <th scope="col" key={o.id}>
                  {o.name}{" "}
                  <button type="button" className="link-button" onClick={o.onEdit}>
                    edit
                  </button>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.length === 0 ? (
              <tr>
                <td colSpan={2 + props.others.length} className="muted">
                  No canonical field or connected path matches “{props.filter}”.
                </td>
              </tr>
            ) : null}
            {rows.map((def) => (
              <MapperRow key={def.name} def={def} paths={paths} {...props} />
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

function MapperRow(props: Props & { def: FieldDef; paths: string[] }) {
  const { def } = props;
  const index = ruleOf(props.rules, def.name);
  const rule = index >= 0 ? props.rules[index] : undefined;
  const path = rule?.system[0] ?? "";
  const values = path ? (props.samples.length ? props.samples.map((s) => readPath(s, path)) : [props.systemFields.find(([p]) => p === path)?.[1]]) : [];
  const better = rule && rule.system.length === 1 && (rule.canonical ?? []).length === 1 ? betterTransform(rule.transform, suggestFromSamples(def, path, values)) : null;
  const error = props.errorFor(def.name);
  const label = `${props.systemName} field for ${def.name}`;
  return (
    <tr data-field={def.name} className={rule ? "mapped" : undefined}>
      <th scope="row" className="sticky-col fieldname">
        <span className="mono">{def.name}</span>
        {def.required ? <span style={{ color: "var(--danger)" }}> *</span> : null}
        {def.sensitive ? <Lock size={12} aria-label="sensitive" style={{ marginLeft: 4 }} /> : null}
        <div className="faint" style={{ fontSize: 11.5, fontWeight: 400 }}>
          {def.type}
        </div>
      </th>
      <td className="edit-cell">
        <div className="row" style={{ gap: 6 }}>
          <select className="select" aria-label={label} value={path} disabled={!props.mayEdit} onChange={(e) => (e.target.value ? props.onConnect(e.target.value, def.name) : props.onDisconnect(def.name))}>
            <option value="">— not connected —</option>
            {path && !props.paths.includes(path) ? <option value={path}>{path}</option> : null}
            {props.paths.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
          {rule ? (
            <>
              <button type="button" className="btn sm ghost" onClick={() => props.onEditRule(index)} title="Edit this connection's transform" aria-label={`Edit the transform of ${def.name}: ${transformLabel(rule.transform)}`}>
                <Pencil size={13} /> {transformLabel(rule.transform)}
              </button>
              {props.mayEdit ? (
                <button type="button" className="btn sm ghost icon" onClick={() => props.onDisconnect(def.name)} aria-label={`Disconnect ${def.name}`} title="Disconnect">
                  <Unlink size={13} />
                </button>
              ) : null}
            </>
          ) : null}
          {props.readOnly.has(def.name) ? <Pill tone="warning">read-only</Pill> : null}
        </div>
        {rule ? (
          <div className="cell-sample">
            <Value v={values[0]} /> <span className="faint">→</span> {def.name in props.canonicalValues ? <Value v={props.canonicalValues[def.name]} /> : props.previewPending ? <span className="faint">…</span> : <span className="faint">nothing</span>}
          </div>
        ) : null}
        {error ? (
          <div className="cell-error" role="alert">
            {error.message}
          </div>
        ) : null}
        {better && props.mayEdit ? (
          <div className="cell-suggest">
            <Sparkles size={13} aria-hidden="true" /> <span title={better.why ?? undefined}>Samples suggest {transformLabel(better.transform)}{better.why ? `: ${better.why}` : ""}.</span>{" "}
            <button type="button" className="link-button" onClick={() => props.onSetTransform(index, better.transform)} aria-label={`Use ${transformLabel(better.transform)} for ${def.name}`}>
              Use it
            </button>
          </div>
        ) : null}
      </td>
      {props.others.map((o) => (
        <OtherCell key={o.id} other={o} field={def.name} />
      ))}
    </tr>
  );
}

function OtherCell({ other, field }: { other: OtherSystem; field: string }) {
  const rule = other.mapping?.rules.find((r) => (r.canonical ?? []).includes(field));
  if (!rule) return <td className="faint">not connected</td>;
  const path = rule.system.join(" + ") || "(constant)";
  return (
    <td>
      <span className="mono">{path}</span>
      {rule.transform && rule.transform.kind !== "copy" ? <span className="faint"> · {transformLabel(rule.transform)}</span> : null}
      <div className="cell-sample">{other.loading ? <Spinner /> : other.sample && rule.system[0] ? <Value v={readPath(other.sample, rule.system[0])} /> : null}</div>
    </td>
  );
}
