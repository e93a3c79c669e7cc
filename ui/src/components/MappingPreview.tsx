// The field mapper's live preview: a sample record as the system holds it, as canonical values,
// and as written back, with each field's error inline and read-only fields marked.

import { AlertTriangle, Lock } from "lucide-react";
import type { FieldDef, MappingRule, PreviewResponse } from "../api/types";
import { sameValue } from "../lib/format";
import { readPath } from "../lib/syspath";
import { EmptyState, Field, Pill, Spinner, Value } from "./ui";

/** A field the preview could not read or write, and why. */
export interface FieldError {
  fields?: string[];
  paths?: string[];
  value?: unknown;
  message?: string;
}


export function PreviewPanel(props: {
  enabled: boolean;
  samples: Record<string, unknown>[];
  sampleIdx: number;
  setSampleIdx: (n: number) => void;
  customSample: string | null;
  setCustomSample: (s: string | null) => void;
  sample: Record<string, unknown> | null;
  sampleError: string | null;
  preview: PreviewResponse | undefined;
  loading: boolean;
  error: string | null;
  rules: MappingRule[];
  canonical: FieldDef[];
}) {
  const p = props.preview;
  const errors = (p?.errors ?? []) as FieldError[];
  const written = (p?.written ?? {}) as Record<string, unknown>;
  const canonicalValues = (p?.canonical ?? {}) as Record<string, unknown>;
  const readOnly = new Set(p?.read_only ?? []);
  // Read as the engine reads a path, so `emails[type=work].value` shows the work email.
  const held = (path: string) => readPath(props.sample, path);
  return (
    <section className="card" aria-labelledby="preview-h">
      <div className="card-head">
        <h2 id="preview-h">Live preview</h2>
        {props.loading ? <Spinner /> : null}
        {props.samples.length > 0 ? (
          <select className="select" aria-label="Sample record" value={props.customSample === null ? props.sampleIdx : -1} onChange={(e) => (Number(e.target.value) >= 0 ? props.setSampleIdx(Number(e.target.value)) : props.setCustomSample(JSON.stringify(props.sample ?? {}, null, 2)))}>
            {props.samples.map((_, i) => (
              <option key={i} value={i}>
                Sample {i + 1}
              </option>
            ))}
            <option value={-1}>Edited sample</option>
          </select>
        ) : null}
        <button type="button" className="btn sm" onClick={() => props.setCustomSample(props.customSample === null ? JSON.stringify(props.sample ?? {}, null, 2) : null)} disabled={!props.enabled}>
          {props.customSample === null ? "Edit sample" : "Use discovered"}
        </button>
      </div>
      <div className="card-body col" style={{ maxHeight: 620, overflow: "auto" }}>
        {!props.enabled ? <EmptyState icon={<Lock size={22} />} title="Preview needs an admin" /> : null}
        {props.customSample !== null ? (
          <Field label="Sample record (JSON, as the system holds it)" error={props.sampleError}>
            {(id) => <textarea id={id} className="textarea code" rows={8} value={props.customSample ?? ""} onChange={(e) => props.setCustomSample(e.target.value)} />}
          </Field>
        ) : null}
        {props.enabled && !props.sample && props.customSample === null ? (
          <EmptyState title="No sample record">
            No records could be read from the system. <button type="button" className="btn sm" onClick={() => props.setCustomSample("{\n  \n}")}>Paste one</button>
          </EmptyState>
        ) : null}
        {props.error ? (
          <div className="banner danger" role="alert">
            <AlertTriangle size={16} />
            <div className="b-body">{props.error}</div>
          </div>
        ) : null}
        {p && props.sample ? (
          <table className="simple-table" aria-label="Preview of the sample record">
            <thead>
              <tr>
                <th>System holds</th>
                <th>Canonical</th>
                <th>Written back</th>
              </tr>
            </thead>
            <tbody>
              {props.rules.map((r, i) => {
                const err = errors.find((e) => (e.fields ?? []).some((f) => (r.canonical ?? []).includes(f)) || (e.paths ?? []).some((x) => r.system.includes(x)));
                const ro = (r.canonical ?? []).some((c) => readOnly.has(c));
                return (
                  <tr key={i}>
                    <td>
                      {r.system.map((s) => (
                        <div key={s}>
                          <span className="mono faint">{s}</span> <Value v={held(s) ?? null} />
                        </div>
                      ))}
                    </td>
                    <td>
                      {(r.canonical ?? []).map((c) => (
                        <div key={c}>
                          <span className="mono faint">{c}</span> <Value v={canonicalValues[c] ?? null} />
                        </div>
                      ))}
                      {err ? (
                        <div role="alert" style={{ color: "var(--danger)", fontSize: 12.5 }}>
                          <AlertTriangle size={12} aria-hidden="true" /> {err.message}
                        </div>
                      ) : null}
                    </td>
                    <td>
                      {ro ? (
                        <Pill tone="warning" title="This transform cannot be reversed, so the engine never writes this field to the system">
                          read-only
                        </Pill>
                      ) : (
                        r.system.map((s) => {
                          const w = readPath(written, s);
                          const before = held(s);
                          const round = before !== undefined && w !== undefined && w !== null && !sameValue(w, before);
                          return (
                            <div key={s}>
                              <Value v={w ?? null} /> {round ? <Pill tone="info" title="Written back differently from what the system holds now (a normalised form)">normalised</Pill> : null}
                            </div>
                          );
                        })
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        ) : null}
        {errors.length > 0 ? <p className="muted" style={{ fontSize: 12.5 }}>{errors.length} field{errors.length === 1 ? "" : "s"} could not be read from this sample.</p> : null}
      </div>
    </section>
  );
}
