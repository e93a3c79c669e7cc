// The field mapper: a system's fields (GET /api/systems/{id}/discover) on the left, the
// canonical schema on the right. Drag a system field onto a canonical field to connect them,
// or, by keyboard, select a system field and then a canonical field (Enter/Space) or use the
// Connect button. Each connection has a transform; the preview (POST /api/mappings/preview)
// shows a sample record as each side would hold it, with errors inline and read-only fields
// marked. Saved with PUT /api/mappings/{system}/{object}.

import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { DndContext, DragOverlay, PointerSensor, useDraggable, useDroppable, useSensor, useSensors, type DragEndEvent, type DragStartEvent } from "@dnd-kit/core";
import { toast } from "sonner";
import { AlertTriangle, ArrowRight, Link2, Lock, Plus, Save, Trash2, Undo2, Workflow } from "lucide-react";
import { api, ApiError, errorMessage } from "../api/client";
import { useMe, useWorkspace } from "../api/queries";
import type { EnumEntry, FieldDef, Mapping, MappingRule, NullPolicy, PreviewResponse, Transform, TransformKind } from "../api/types";
import { can, whyNot } from "../lib/roles";
import { TRANSFORM_KINDS, arity, changeKind, connect, duplicateTargets, readOnlyReason, ruleProblems, suggestTransform } from "../lib/mapping";
import { parseTyped, sameValue } from "../lib/format";
import { EmptyState, ErrorState, Field, Loading, PageHeader, Pill, Spinner, Value } from "../components/ui";

interface FieldError {
  fields?: string[];
  paths?: string[];
  value?: unknown;
  message?: string;
}

function usePreview(mapping: Mapping | null, record: Record<string, unknown> | null, enabled: boolean) {
  const [debounced, setDebounced] = useState<{ mapping: Mapping; record: Record<string, unknown> } | null>(null);
  useEffect(() => {
    if (!mapping || !record) return;
    const t = setTimeout(() => setDebounced({ mapping, record }), 300);
    return () => clearTimeout(t);
  }, [mapping, record]);
  return useQuery({
    queryKey: ["preview", debounced],
    queryFn: () => api.post("/api/mappings/preview", {}, { mapping: debounced!.mapping, record: debounced!.record }),
    enabled: enabled && debounced !== null,
    placeholderData: (prev) => prev,
    retry: false,
  });
}

export function MapperPage() {
  const me = useMe();
  const ws = useWorkspace();
  const qc = useQueryClient();
  const [params, setParams] = useSearchParams();
  const mayEdit = can(me.role, "edit_mappings");
  const systems = ws.data?.systems ?? [];
  const systemId = params.get("system") ?? systems[0]?.id ?? "";
  const savedMapping = ws.data?.mappings.find((m) => m.system === systemId && (!params.get("object") || m.object === params.get("object")));
  const objectName = params.get("object") ?? savedMapping?.object ?? ws.data?.objects[0]?.name ?? "";
  const schema = ws.data?.objects.find((o) => o.name === objectName);

  const [draft, setDraft] = useState<Mapping | null>(null);
  const [active, setActive] = useState<number | null>(null);
  const [source, setSource] = useState<string | null>(null);
  const [sampleIdx, setSampleIdx] = useState(0);
  const [customSample, setCustomSample] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const [saveError, setSaveError] = useState<string | null>(null);
  const [dragging, setDragging] = useState<string | null>(null);

  const saved: Mapping | null = useMemo(
    () => (systemId && objectName ? ws.data?.mappings.find((m) => m.system === systemId && m.object === objectName) ?? { system: systemId, object: objectName, rules: [] } : null),
    [ws.data, systemId, objectName],
  );
  useEffect(() => {
    setDraft(saved ? structuredClone(saved) : null);
    setActive(null);
    setSource(null);
    setSaveError(null);
  }, [saved]);

  const discover = useQuery({
    queryKey: ["discover", systemId],
    queryFn: () => api.get("/api/systems/{id}/discover", { id: systemId }),
    enabled: !!systemId && mayEdit,
    retry: false,
    staleTime: 60_000,
  });

  const samples = (discover.data?.samples ?? []) as Record<string, unknown>[];
  let sample: Record<string, unknown> | null = samples[sampleIdx] ?? null;
  let sampleError: string | null = null;
  if (customSample !== null) {
    try {
      const parsed: unknown = JSON.parse(customSample);
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) sample = parsed as Record<string, unknown>;
      else sampleError = "A sample record is a JSON object.";
    } catch (e) {
      sampleError = errorMessage(e);
    }
  }
  const preview = usePreview(draft, sample, mayEdit && !!schema);

  // System-side fields: discovered paths plus the paths the mapping already uses.
  const systemFields = useMemo(() => {
    const set = new Map<string, unknown>();
    for (const [k, v] of Object.entries(discover.data?.fields ?? {})) set.set(k, v);
    if (sample) for (const [k, v] of flatten(sample)) if (!set.has(k)) set.set(k, v);
    for (const r of draft?.rules ?? []) for (const p of r.system) if (p && !set.has(p)) set.set(p, undefined);
    return [...set.entries()].sort(([a], [b]) => a.localeCompare(b));
  }, [discover.data, draft, sample]);

  const dirty = draft && saved ? JSON.stringify(draft) !== JSON.stringify(saved) : false;

  const doConnect = useCallback(
    (path: string, field: string) => {
      if (!draft || !schema) return;
      const def = schema.fields.find((f) => f.name === field);
      const sampleValue = systemFields.find(([p]) => p === path)?.[1];
      const r = connect(draft, path, field, suggestTransform(def?.type, sampleValue, def?.values ?? []));
      setDraft(r.mapping);
      setActive(r.index);
      setSource(null);
      toast.message(`Connected ${path} → ${field}`, { duration: 2500 });
    },
    [draft, schema, systemFields],
  );

  const sensors = useSensors(useSensor(PointerSensor, { activationConstraint: { distance: 5 } }));
  const onDragStart = (e: DragStartEvent) => setDragging(String(e.active.id).slice(4));
  const onDragEnd = (e: DragEndEvent) => {
    setDragging(null);
    if (!mayEdit || !e.over) return;
    doConnect(String(e.active.id).slice(4), String(e.over.id).slice(4));
  };

  const save = async () => {
    if (!draft) return;
    setSaving(true);
    setSaveError(null);
    try {
      await api.put("/api/mappings/{system}/{object}", { system: draft.system, object: draft.object }, draft);
      toast.success(`Mapping of ${draft.system} ${draft.object} saved`);
      await qc.invalidateQueries({ queryKey: ["workspace"] });
    } catch (e) {
      setSaveError(errorMessage(e));
      toast.error("Could not save the mapping", { description: errorMessage(e) });
    } finally {
      setSaving(false);
    }
  };

  if (ws.isPending) return <div className="page"><Loading /></div>;
  if (ws.error) return <div className="page"><ErrorState error={ws.error} retry={() => void ws.refetch()} /></div>;
  if (systems.length === 0) {
    return (
      <div className="page">
        <PageHeader title="Field mapper" />
        <div className="card">
          <EmptyState icon={<Workflow size={22} />} title="No systems to map">
            <Link to="/systems/new">Add a system</Link> first.
          </EmptyState>
        </div>
      </div>
    );
  }

  const p = preview.data;
  const errors = (p?.errors ?? []) as FieldError[];
  const errorFor = (field: string) => errors.find((e) => e.fields?.includes(field));
  const readOnly = new Set(p?.read_only ?? []);
  const mappedTargets = new Map<string, number>();
  (draft?.rules ?? []).forEach((r, i) => (r.canonical ?? []).forEach((c) => mappedTargets.set(c, i)));
  const mappedSources = new Map<string, number>();
  (draft?.rules ?? []).forEach((r, i) => r.system.forEach((s) => mappedSources.set(s, i)));
  const previewError = preview.error instanceof ApiError ? preview.error.message : preview.error ? errorMessage(preview.error) : null;
  const ruleErrorIndex = previewError ? /^rules\[(\d+)\]/.exec(previewError)?.[1] : undefined;
  const dups = draft ? duplicateTargets(draft) : [];

  return (
    <div className="page">
      <PageHeader
        title="Field mapper"
        description="Connect each system field to a canonical field and pick how its values are transformed both ways. The preview shows a sample record as each side would hold it."
        actions={
          <>
            <button type="button" className="btn" disabled={!dirty || saving} onClick={() => saved && setDraft(structuredClone(saved))}>
              <Undo2 size={16} /> Discard changes
            </button>
            <button type="button" className="btn primary" disabled={!mayEdit || !dirty || saving} onClick={() => void save()} title={mayEdit ? undefined : whyNot(me.role, "edit_mappings")}>
              {saving ? <Spinner /> : <Save size={16} />} Save mapping
            </button>
          </>
        }
      />
      <div className="toolbar">
        <Field label="System">
          {(id) => (
            <select id={id} className="select" value={systemId} onChange={(e) => setParams({ system: e.target.value })}>
              {systems.map((s) => (
                <option key={s.id} value={s.id}>
                  {s.name}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Object">
          {(id) => (
            <select id={id} className="select" value={objectName} onChange={(e) => setParams({ system: systemId, object: e.target.value })}>
              {(ws.data?.objects ?? []).map((o) => (
                <option key={o.name}>{o.name}</option>
              ))}
            </select>
          )}
        </Field>
        <span className="grow" />
        {dirty ? <Pill tone="warning">Unsaved changes</Pill> : null}
      </div>
      {!mayEdit ? (
        <div className="banner info">
          <Lock size={16} />
          <div className="b-body">{whyNot(me.role, "edit_mappings")} You see the saved mapping; discovering fields and the live preview need an admin.</div>
        </div>
      ) : null}
      {discover.error ? (
        <div className="banner warning" role="status">
          <AlertTriangle size={16} />
          <div className="b-body">
            <strong>Could not read sample records from {systemId}</strong>
            {errorMessage(discover.error)}. The fields the mapping already uses are shown; paste a sample record in the preview to try the mapping.
          </div>
        </div>
      ) : null}
      {saveError ? (
        <div className="banner danger" role="alert">
          <AlertTriangle size={16} />
          <div className="b-body">
            <strong>Not saved</strong>
            {saveError}
          </div>
        </div>
      ) : null}

      {!schema || !draft ? (
        <div className="card">
          <EmptyState title="No canonical object to map" />
        </div>
      ) : (
        <DndContext sensors={sensors} onDragStart={onDragStart} onDragEnd={onDragEnd} onDragCancel={() => setDragging(null)}>
          <div className="card">
            <div className="card-body">
              <KeyboardConnectBar
                source={source}
                fields={schema.fields}
                onCancel={() => setSource(null)}
                onConnect={(f) => source && doConnect(source, f)}
                disabled={!mayEdit}
              />
              <MapperColumns
                systemName={systems.find((s) => s.id === systemId)?.name ?? systemId}
                systemFields={systemFields}
                canonical={schema.fields}
                rules={draft.rules}
                active={active}
                source={source}
                dragging={dragging}
                mappedSources={mappedSources}
                mappedTargets={mappedTargets}
                readOnly={readOnly}
                errorFor={errorFor}
                canonicalValues={(p?.canonical ?? {}) as Record<string, unknown>}
                loadingFields={discover.isPending && mayEdit}
                mayEdit={mayEdit}
                onSelectSource={(path) => setSource((s) => (s === path ? null : path))}
                onActivateTarget={(field) => {
                  if (source && mayEdit) doConnect(source, field);
                  else if (mappedTargets.has(field)) setActive(mappedTargets.get(field)!);
                }}
                onSelectRule={setActive}
              />
            </div>
          </div>
          <DragOverlay>{dragging ? <div className="drag-ghost">{dragging}</div> : null}</DragOverlay>
        </DndContext>
      )}

      {draft && schema ? (
        <div className="grid-cards" style={{ gridTemplateColumns: "minmax(360px, 1fr) minmax(360px, 1fr)" }}>
          <section className="card" aria-labelledby="rules-h">
            <div className="card-head">
              <h2 id="rules-h">Connections ({draft.rules.length})</h2>
              <button
                type="button"
                className="btn sm"
                disabled={!mayEdit}
                onClick={() => {
                  setDraft({ ...draft, rules: [...draft.rules, { canonical: [""], system: [""], transform: { kind: "copy" }, null: { policy: "leave_unchanged" } }] });
                  setActive(draft.rules.length);
                }}
              >
                <Plus size={14} /> Add
              </button>
            </div>
            <div className="card-body col" style={{ maxHeight: 620, overflow: "auto" }}>
              {dups.length ? <div className="banner warning"><AlertTriangle size={16} /><div className="b-body">Mapped twice: {dups.join(", ")}. Only one rule should yield each field.</div></div> : null}
              {draft.rules.length === 0 ? <EmptyState icon={<Link2 size={22} />} title="No connections yet">Drag a system field onto a canonical field, or select one and press Enter on the other.</EmptyState> : null}
              {draft.rules.map((r, i) => (
                <RuleEditor
                  key={i}
                  index={i}
                  rule={r}
                  active={active === i}
                  systemPaths={systemFields.map(([k]) => k)}
                  canonical={schema.fields}
                  readOnly={mayEdit ? (r.canonical ?? []).some((c) => readOnly.has(c)) : false}
                  serverError={ruleErrorIndex !== undefined && Number(ruleErrorIndex) === i ? previewError : null}
                  fieldError={(r.canonical ?? []).map((c) => errorFor(c)?.message).find(Boolean) ?? null}
                  disabled={!mayEdit}
                  onFocus={() => setActive(i)}
                  onChange={(nr) => setDraft({ ...draft, rules: draft.rules.map((x, j) => (j === i ? nr : x)) })}
                  onRemove={() => {
                    setDraft({ ...draft, rules: draft.rules.filter((_, j) => j !== i) });
                    setActive(null);
                  }}
                />
              ))}
            </div>
          </section>
          <PreviewPanel
            enabled={mayEdit}
            samples={samples}
            sampleIdx={sampleIdx}
            setSampleIdx={(n) => {
              setSampleIdx(n);
              setCustomSample(null);
            }}
            customSample={customSample}
            setCustomSample={setCustomSample}
            sample={sample}
            sampleError={sampleError}
            preview={p}
            loading={preview.isFetching}
            error={ruleErrorIndex === undefined ? previewError : null}
            rules={draft.rules}
            canonical={schema.fields}
          />
        </div>
      ) : null}
    </div>
  );
}

/** Nested record fields as `a/b` paths with their values. */
function flatten(obj: Record<string, unknown>, prefix = ""): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const [k, v] of Object.entries(obj)) {
    const path = prefix ? `${prefix}/${k}` : k;
    if (v && typeof v === "object" && !Array.isArray(v)) out.push(...flatten(v as Record<string, unknown>, path));
    else out.push([path, v]);
  }
  return out;
}

function KeyboardConnectBar({ source, fields, onConnect, onCancel, disabled }: { source: string | null; fields: FieldDef[]; onConnect: (f: string) => void; onCancel: () => void; disabled: boolean }) {
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
}

function MapperColumns(props: ColumnsProps) {
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
        {props.systemFields.map(([path, sample]) => (
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
        {props.canonical.map((f) => (
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

const DATE_FORMATS = ["%Y-%m-%d", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%Y%m%d"];

function RuleEditor(props: {
  index: number;
  rule: MappingRule;
  active: boolean;
  systemPaths: string[];
  canonical: FieldDef[];
  readOnly: boolean;
  serverError: string | null;
  fieldError: string | null;
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

  return (
    <div ref={ref} className={`rule-card ${props.active ? "active" : ""}`} onFocusCapture={props.onFocus} onClick={props.onFocus} role="group" aria-label={`Connection ${props.index + 1}: ${rule.system.join(", ")} to ${canonical.join(", ") || "nothing"}`}>
      <div className="r-head">
        <select className="select mono" aria-label="System field" value={rule.system[0] ?? ""} disabled={disabled} onChange={(e) => props.onChange({ ...rule, system: [e.target.value] })}>
          <option value="">system field…</option>
          {[...new Set([rule.system[0] ?? "", ...props.systemPaths])].filter(Boolean).map((p) => (
            <option key={p}>{p}</option>
          ))}
        </select>
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

function PreviewPanel(props: {
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
  const sampleFlat = new Map(props.sample ? flatten(props.sample) : []);
  const writtenFlat = new Map(flatten(written));
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
                          <span className="mono faint">{s}</span> <Value v={sampleFlat.get(s) ?? null} />
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
                          const w = writtenFlat.get(s);
                          const round = sampleFlat.has(s) && w !== undefined && w !== null && !sameValue(w, sampleFlat.get(s));
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
