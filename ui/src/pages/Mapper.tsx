// The field mapper: a system's fields (GET /api/systems/{id}/discover) on the left, the
// canonical schema on the right. Drag a system field onto a canonical field to connect them,
// or, by keyboard, select a system field and then a canonical field (Enter/Space) or use the
// Connect button; a connection's system path can also be typed, array selectors included.
// Each connection has a transform; the preview (POST /api/mappings/preview) shows a sample
// record as each side would hold it, with errors inline and read-only fields marked. "Check
// paths against records" (POST /api/mappings/check) tries every path on the system's first
// page and shows what finds nothing next to its connection; saving after a check that found
// problems asks first. Saved with PUT /api/mappings/{system}/{object}.

import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { UnsavedGuard } from "../components/UnsavedGuard";
import { WhatIfDialog } from "../components/WhatIfDialog";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { DndContext, DragOverlay, PointerSensor, useDraggable, useDroppable, useSensor, useSensors, type DragEndEvent, type DragStartEvent } from "@dnd-kit/core";
import { toast } from "sonner";
import { AlertTriangle, CheckCircle2, FlaskConical, Link2, ListChecks, Lock, Plus, Save, Undo2, Workflow } from "lucide-react";
import { api, ApiError, errorMessage } from "../api/client";
import { useMe, useWorkspace } from "../api/queries";
import type { FieldDef, Mapping, MappingCheck, MappingRule } from "../api/types";
import { can, whyNot } from "../lib/roles";
import { checkSummary, connect, duplicateTargets, problemsByRule, problemsOfRule, saveWarning, suggestTransform } from "../lib/mapping";
import { flatten, readPath } from "../lib/syspath";
import { Dialog, EmptyState, ErrorState, Field, Loading, PageHeader, Pill, Spinner, Value } from "../components/ui";
import { useRemovalConfirmation } from "../components/ConfirmRemoval";
import { RuleEditor } from "../components/MappingRuleEditor";
import { PreviewPanel, type FieldError } from "../components/MappingPreview";

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
  const navigate = useNavigate();
  const [whatIf, setWhatIf] = useState(false);
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
  // The last check of the paths, and the draft it was made for.
  const [check, setCheck] = useState<{ key: string; result: MappingCheck } | null>(null);
  const [checking, setChecking] = useState(false);
  const [confirmSave, setConfirmSave] = useState(false);
  // "Save mapping" first shows what the save changes: the rules, and the values per record.
  const [reviewSave, setReviewSave] = useState(false);
  const confirmation = useRemovalConfirmation("Could not save the mapping");

  const saved: Mapping | null = useMemo(
    () => (systemId && objectName ? ws.data?.mappings.find((m) => m.system === systemId && m.object === objectName) ?? { system: systemId, object: objectName, rules: [] } : null),
    [ws.data, systemId, objectName],
  );
  useEffect(() => {
    setDraft(saved ? structuredClone(saved) : null);
    setActive(null);
    setSource(null);
    setSaveError(null);
    setCheck(null);
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
    for (const r of draft?.rules ?? []) for (const p of r.system) if (p && !set.has(p)) set.set(p, readPath(sample, p));
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

  const draftKey = draft ? JSON.stringify(draft) : "";
  const checkStale = check !== null && check.key !== draftKey;
  const runCheck = async () => {
    if (!draft) return;
    setChecking(true);
    try {
      const result = await api.post("/api/mappings/check", {}, draft);
      setCheck({ key: JSON.stringify(draft), result });
      const said = checkSummary(result, systems.find((x) => x.id === draft.system)?.name ?? draft.system);
      if (result.problems.length > 0) toast.warning("Some paths find nothing", { description: said });
      else toast.success("Paths checked", { description: said });
    } catch (e) {
      toast.error("Could not check the paths", { description: errorMessage(e) });
    } finally {
      setChecking(false);
    }
  };

  const save = async () => {
    if (!draft) return;
    setConfirmSave(false);
    setSaving(true);
    setSaveError(null);
    try {
      const target = draft;
      await confirmation.attempt(async (confirm) => {
        const wasHeld = ws.data?.systems.find((s) => s.id === target.system)?.writes === "plan";
        const saved = await api.put("/api/mappings/{system}/{object}", { system: target.system, object: target.object, confirm: confirm || undefined }, target);
        const nowHeld = saved.systems.find((s) => s.id === target.system)?.writes === "plan";
        if (nowHeld && !wasHeld) {
          // The engine plans what the changed rules write and holds the system's writes.
          toast.success(`Mapping of ${target.system} ${target.object} saved; writes to ${target.system} are held`, {
            description: "What the changed rules would write is being planned for every record. Review the plan, then enable writes.",
            action: { label: "Review plan", onClick: () => navigate(`/systems/${encodeURIComponent(target.system)}/plan`) },
            duration: 15_000,
          });
        } else {
          toast.success(`Mapping of ${target.system} ${target.object} saved`);
        }
        await qc.invalidateQueries({ queryKey: ["workspace"] });
      });
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
  // A draft whose preview shows an error is not saved: it would write that error to every record.
  const previewProblem = previewError ?? (errors.length ? errors.map((e) => e.message).join("; ") : null);
  const saveRefusal = !dirty ? null : previewProblem ? `Save is refused while the preview shows an error: ${previewProblem}` : preview.isFetching ? "Checking the preview…" : null;

  return (
    <div className="page">
      <UnsavedGuard dirty={dirty} what={`The mapping of ${systemId}`} />
      <PageHeader
        title="Field mapper"
        description="Connect each system field to a canonical field and pick how its values are transformed both ways. The preview shows a sample record as each side would hold it."
        actions={
          <>
            <button type="button" className="btn" disabled={!dirty || saving} onClick={() => saved && setDraft(structuredClone(saved))}>
              <Undo2 size={16} /> Discard changes
            </button>
            <button
              type="button"
              className="btn"
              disabled={!mayEdit || !draft || draft.rules.length === 0 || checking}
              onClick={() => void runCheck()}
              title={mayEdit ? "Try every path of this mapping on the records of the system's first page" : whyNot(me.role, "edit_mappings")}
            >
              {checking ? <Spinner /> : <ListChecks size={16} />} Check paths against records
            </button>
            <button type="button" className="btn" disabled={!mayEdit || !draft || !dirty} onClick={() => setWhatIf(true)} title={mayEdit ? "What saving this draft would write to the system, for every record it holds" : whyNot(me.role, "edit_mappings")}>
              <FlaskConical size={16} /> What would change?
            </button>
            <button
              type="button"
              className="btn primary"
              disabled={!mayEdit || !dirty || saving || saveRefusal !== null}
              onClick={() => setReviewSave(true)}
              title={mayEdit ? saveRefusal ?? undefined : whyNot(me.role, "edit_mappings")}
            >
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
        {dirty && previewProblem ? (
          <span role="alert" className="save-refused">
            Save is refused while the preview shows an error.
          </span>
        ) : null}
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
      {check && draft ? (
        <CheckResult
          check={check.result}
          stale={checkStale}
          system={systems.find((x) => x.id === draft.system)?.name ?? draft.system}
          rules={draft.rules}
          checking={checking}
          onRecheck={() => void runCheck()}
          onShow={(i) => setActive(i)}
          onClose={() => setCheck(null)}
        />
      ) : null}
      {confirmation.dialog}
      {(whatIf || reviewSave) && draft ? (
        <WhatIfDialog
          draft={draft}
          saved={saved}
          systemName={systems.find((s) => s.id === systemId)?.name ?? systemId}
          onClose={() => {
            setWhatIf(false);
            setReviewSave(false);
          }}
          onSave={
            reviewSave
              ? () => {
                  setReviewSave(false);
                  if (saveWarning(check?.result ?? null, checkStale)) setConfirmSave(true);
                  else void save();
                }
              : undefined
          }
          saving={saving}
        />
      ) : null}
      <Dialog
        open={confirmSave}
        onClose={() => setConfirmSave(false)}
        title="Save a mapping with path problems?"
        footer={
          <>
            <button type="button" className="btn" onClick={() => void runCheck().then(() => setConfirmSave(false))} disabled={checking}>
              {checking ? <Spinner /> : <ListChecks size={16} />} Check again
            </button>
            <span className="spacer" />
            <button type="button" className="btn" onClick={() => setConfirmSave(false)} data-autofocus>
              Cancel
            </button>
            <button type="button" className="btn danger" onClick={() => void save()} disabled={saving}>
              {saving ? <Spinner /> : <Save size={16} />} Save anyway
            </button>
          </>
        }
      >
        <p>{saveWarning(check?.result ?? null, checkStale)}</p>
        {check ? <ProblemList check={check.result} rules={draft?.rules ?? []} onShow={(i) => { setActive(i); setConfirmSave(false); }} /> : null}
      </Dialog>

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
                  pathProblems={check ? problemsOfRule(check.result.problems, i, r, checkStale) : []}
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


/** What the last check found: a summary, and each problem with the connection it concerns. */
function CheckResult(props: { check: MappingCheck; stale: boolean; system: string; rules: MappingRule[]; checking: boolean; onRecheck: () => void; onShow: (rule: number) => void; onClose: () => void }) {
  const { check, stale } = props;
  const ok = check.problems.length === 0;
  return (
    <div className={`banner ${ok && check.sample_count > 0 ? "success" : "warning"}`} role="status" aria-label="Path check">
      {ok && check.sample_count > 0 ? <CheckCircle2 size={16} /> : <AlertTriangle size={16} />}
      <div className="b-body col" style={{ gap: 6 }}>
        <strong>
          {checkSummary(check, props.system)}
          {stale ? <span className="faint" style={{ fontWeight: 400 }}> (checked before your latest edits)</span> : null}
        </strong>
        {!ok ? <ProblemList check={check} rules={props.rules} onShow={props.onShow} /> : null}
        <div className="row">
          <button type="button" className="btn sm" onClick={props.onRecheck} disabled={props.checking}>
            {props.checking ? <Spinner /> : <ListChecks size={14} />} Check again
          </button>
          <button type="button" className="btn sm ghost" onClick={props.onClose}>
            Hide
          </button>
        </div>
      </div>
    </div>
  );
}

function ProblemList({ check, rules, onShow }: { check: MappingCheck; rules: MappingRule[]; onShow: (rule: number) => void }) {
  return (
    <ul className="problem-list">
      {[...problemsByRule(check.problems)].map(([rule, problems]) => (
        <li key={rule}>
          <button type="button" className="btn sm ghost" onClick={() => onShow(rule)} title="Show this connection">
            Connection {rule + 1}
            {rules[rule]?.canonical?.length ? `: ${rules[rule]!.canonical!.join(", ")}` : ""}
          </button>
          <ul>
            {problems.map((p, j) => (
              <li key={j}>
                <span className="mono">{p.path}</span> <span className="muted">{p.message}</span>
              </li>
            ))}
          </ul>
        </li>
      ))}
    </ul>
  );
}
