// The lines view of the field mapper: a system's fields on the left, the canonical fields on
// the right, and a line for each connection. Drag a system field onto a canonical field to
// connect them or, by keyboard, select a system field and then a canonical field. A search
// narrows both columns to the fields whose names (or sample values) match.

import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "react";
import { useDraggable, useDroppable } from "@dnd-kit/core";
import { AlertTriangle, Link2, Lock } from "lucide-react";
import type { FieldDef, MappingRule } from "../api/types";
import { fieldMatches } from "../lib/mapping";
import { EmptyState, Loading, Pill, Value } from "./ui";
import type { FieldError } from "./MappingPreview";

export function KeyboardConnectBar({ source, fields, onConnect, onCancel, disabled }: { source: string | null; fields: FieldDef[]; onConnect: (f: string) => void; onCancel: () => void; disabled: boolean }) {
  const [target, setTarget] = useState("");
  if (!source) {
    return (
      <p className="muted" style={{ marginBottom: 12, fontSize: 12.5 }}>
        Drag a field from the left onto a canonical field on the right. With the keyboard: Tab to a system field and press Enter to select it, then Tab to a canonical field and press Enter.
      </p>
    );
  }
  return (
    <div className="banner info" style={{ marginBottom: 12 }} role="status" aria-live="polite">
      <Link2 size={16} />
      <div className="b-body row wrap">
        <span>
          Selected <strong className="mono">{source}</strong>. Choose the canonical field to connect it to:
        </span>
        <select className="select" aria-label="Canonical field to connect to" value={target} onChange={(e) => setTarget(e.target.value)}>
          <option value="">Choose…</option>
          {fields.map((f) => (
            <option key={f.name}>{f.name}</option>
          ))}
        </select>
        <button type="button" className="btn sm primary" disabled={disabled || !target} onClick={() => onConnect(target)}>
          Connect
        </button>
        <button type="button" className="btn sm ghost" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </div>
  );
}

interface ColumnsProps {
  systemName: string;
  systemFields: [string, unknown][];
  canonical: FieldDef[];
  rules: MappingRule[];
  active: number | null;
  source: string | null;
  dragging: string | null;
  mappedSources: Map<string, number>;
  mappedTargets: Map<string, number>;
  readOnly: Set<string>;
  errorFor: (f: string) => FieldError | undefined;
  canonicalValues: Record<string, unknown>;
  loadingFields: boolean;
  mayEdit: boolean;
  onSelectSource: (p: string) => void;
  onActivateTarget: (f: string) => void;
  onSelectRule: (i: number) => void;
  /** Shows only the fields whose name (or sample value) holds this text. */
  filter: string;
}

export function MapperColumns(props: ColumnsProps) {
  const box = useRef<HTMLDivElement>(null);
  const [lines, setLines] = useState<{ d: string; rule: number; ro: boolean; err: boolean }[]>([]);
  const measure = useCallback(() => {
    const el = box.current;
    if (!el) return;
    const base = el.getBoundingClientRect();
    const out: { d: string; rule: number; ro: boolean; err: boolean }[] = [];
    props.rules.forEach((r, i) => {
      for (const s of r.system) {
        const a = el.querySelector<HTMLElement>(`[data-src="${CSS.escape(s)}"]`);
        if (!a) continue;
        for (const c of r.canonical ?? []) {
          const b = el.querySelector<HTMLElement>(`[data-dst="${CSS.escape(c)}"]`);
          if (!b) continue;
          const ra = a.getBoundingClientRect();
          const rb = b.getBoundingClientRect();
          const x1 = ra.right - base.left;
          const y1 = ra.top + ra.height / 2 - base.top;
          const x2 = rb.left - base.left;
          const y2 = rb.top + rb.height / 2 - base.top;
          const mx = (x1 + x2) / 2;
          out.push({ d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, rule: i, ro: props.readOnly.has(c), err: !!props.errorFor(c) });
        }
      }
    });
    setLines(out);
  }, [props]);
  useLayoutEffect(() => {
    measure();
  }, [measure]);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const ro = new ResizeObserver(() => measure());
    ro.observe(el);
    return () => ro.disconnect();
  }, [measure]);

  return (
    <div className="mapper" ref={box}>
      <div className="mapper-col" role="group" aria-label={`${props.systemName} fields`}>
        <h3>{props.systemName}</h3>
        {props.loadingFields ? <Loading label="Reading sample records…" /> : null}
        {!props.loadingFields && props.systemFields.length === 0 ? <EmptyState title="No fields found">Paste a sample record in the preview to see its fields.</EmptyState> : null}
        {props.systemFields.filter(([path, sample]) => fieldMatches(props.filter, path, sample)).map(([path, sample]) => (
          <SourceNode
            key={path}
            path={path}
            sample={sample}
            selected={props.source === path}
            mapped={props.mappedSources.has(path)}
            dragging={props.dragging === path}
            disabled={!props.mayEdit}
            onSelect={() => props.onSelectSource(path)}
          />
        ))}
      </div>
      <svg className="mapper-svg" aria-hidden="true">
        {lines.map((l, i) => (
          <path key={i} d={l.d} className={`${l.ro ? "ro" : ""} ${l.err ? "err" : ""} ${props.active === l.rule ? "hl" : ""}`} />
        ))}
      </svg>
      <div aria-hidden="true" />
      <div className="mapper-col" role="group" aria-label="Canonical fields">
        <h3>Canonical</h3>
        {props.canonical.filter((f) => fieldMatches(props.filter, f.name)).map((f) => (
          <TargetNode
            key={f.name}
            def={f}
            mapped={props.mappedTargets.has(f.name)}
            readOnly={props.readOnly.has(f.name)}
            error={props.errorFor(f.name)}
            value={props.canonicalValues[f.name]}
            hasValue={f.name in props.canonicalValues}
            connecting={props.source !== null}
            active={props.active !== null && props.mappedTargets.get(f.name) === props.active}
            onActivate={() => props.onActivateTarget(f.name)}
          />
        ))}
      </div>
    </div>
  );
}

function SourceNode({ path, sample, selected, mapped, dragging, disabled, onSelect }: { path: string; sample: unknown; selected: boolean; mapped: boolean; dragging: boolean; disabled: boolean; onSelect: () => void }) {
  const { attributes, listeners, setNodeRef } = useDraggable({ id: `src:${path}`, disabled });
  return (
    <button
      type="button"
      ref={setNodeRef}
      {...listeners}
      {...attributes}
      role="button"
      data-src={path}
      className={`fnode ${mapped ? "mapped" : ""} ${dragging ? "dragging" : ""}`}
      aria-pressed={selected}
      aria-disabled={disabled}
      aria-label={`System field ${path}${mapped ? ", connected" : ""}. Press Enter to select it for connecting.`}
      onClick={() => !disabled && onSelect()}
      onKeyDown={(e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          if (!disabled) onSelect();
        }
      }}
    >
      <span className="f-dot" aria-hidden="true" />
      <span className="f-name">{path}</span>
      <span className="f-sample">{sample === undefined ? "" : <Value v={sample} />}</span>
    </button>
  );
}

function TargetNode(props: { def: FieldDef; mapped: boolean; readOnly: boolean; error: FieldError | undefined; value: unknown; hasValue: boolean; connecting: boolean; active: boolean; onActivate: () => void }) {
  const { isOver, setNodeRef } = useDroppable({ id: `dst:${props.def.name}` });
  const { def } = props;
  return (
    <button
      type="button"
      ref={setNodeRef}
      data-dst={def.name}
      className={`fnode target ${props.mapped ? "mapped" : ""} ${props.readOnly ? "readonly" : ""} ${isOver ? "over" : ""}`}
      aria-pressed={props.active}
      aria-label={`Canonical field ${def.name}, ${def.type}${def.required ? ", required" : ""}${props.mapped ? ", connected" : ""}${props.readOnly ? ", read-only for this system" : ""}${props.error ? `, error: ${props.error.message}` : ""}${props.connecting ? ". Press Enter to connect the selected system field here." : ""}`}
      onClick={props.onActivate}
      style={props.active ? { borderColor: "var(--accent)" } : undefined}
    >
      <span className="f-dot" aria-hidden="true" />
      <span className="f-name">
        {def.name}
        {def.required ? <span style={{ color: "var(--danger)" }}> *</span> : null}
      </span>
      <span className="faint" style={{ fontSize: 11.5 }}>
        {def.type}
      </span>
      {def.sensitive ? <Lock size={12} aria-hidden="true" /> : null}
      {props.readOnly ? <Pill tone="warning">read-only</Pill> : null}
      {props.error ? (
        <span style={{ color: "var(--danger)" }} title={props.error.message}>
          <AlertTriangle size={14} aria-hidden="true" />
        </span>
      ) : null}
      <span className="f-sample">{props.hasValue ? <Value v={props.value} /> : null}</span>
    </button>
  );
}
