// The field mapper: a system's fields (GET /api/systems/{id}/discover) against the canonical
// schema, in two views. The lines view draws a line per connection: drag a system field onto a
// canonical field, or by keyboard select one and then the other. The table view, for wide
// schemas, has a row per canonical field and a column per system that maps the object, with
// sample values and transforms inline. A search narrows both. Auto-map suggests connections
// from names and from sample values compared with the golden records
// (GET /api/objects/{object}/golden-sample), for review before they join the draft. Each
// connection has a transform; the preview (POST /api/mappings/preview) shows a sample record as
// each side would hold it, and saving is refused while it shows an error. "Check paths against
// records" (POST /api/mappings/check) tries every path on the system's first page. Saving
// shows the rules and values that change first. Saved with PUT /api/mappings/{system}/{object}.

import { useCallback, useEffect, useMemo, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { UnsavedGuard } from "../components/UnsavedGuard";
import { WhatIfDialog } from "../components/WhatIfDialog";
import { useQueries, useQuery, useQueryClient } from "@tanstack/react-query";
import { DndContext, DragOverlay, PointerSensor, useSensor, useSensors, type DragEndEvent, type DragStartEvent } from "@dnd-kit/core";
import { toast } from "sonner";
import { AlertTriangle, FlaskConical, Link2, ListChecks, Lock, Plus, Save, Search, Sparkles, Undo2, Workflow } from "lucide-react";
import { api, ApiError, errorMessage } from "../api/client";
import { useMe, useWorkspace } from "../api/queries";
import type { Mapping, MappingCheck, Transform } from "../api/types";
import { can, whyNot } from "../lib/roles";
import { autoMap, type Suggestion } from "../lib/automap";
import { checkSummary, connect, duplicateTargets, problemsOfRule, saveWarning } from "../lib/mapping";
import { suggestFromSamples } from "../lib/suggest";
import { flatten, readPath } from "../lib/syspath";
import { Dialog, EmptyState, ErrorState, Field, Loading, PageHeader, Pill, Spinner } from "../components/ui";
import { useRemovalConfirmation } from "../components/ConfirmRemoval";
import { RuleEditor } from "../components/MappingRuleEditor";
import { PreviewPanel, type FieldError } from "../components/MappingPreview";
import { KeyboardConnectBar, MapperColumns } from "../components/MapperLines";
import { MapperTable, type OtherSystem } from "../components/MapperTable";
import { AutoMapDialog } from "../components/AutoMapDialog";
import { CheckResult, ProblemList } from "../components/MappingCheckResult";

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
  const view = params.get("view") === "table" ? "table" : "lines";
  const [filter, setFilter] = useState("");
  const [suggestions, setSuggestions] = useState<Suggestion[] | null>(null);
  // The connection whose transform is edited in a dialog (from the table view).
  const [editing, setEditing] = useState<number | null>(null);

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
    setEditing(null);
  }, [saved]);

  const discover = useQuery({
    queryKey: ["discover", systemId],
    queryFn: () => api.get("/api/systems/{id}/discover", { id: systemId }),
    enabled: !!systemId && mayEdit,
    retry: false,
    staleTime: 60_000,
  });

  const golden = useQuery({
    queryKey: ["golden-sample", objectName],
    queryFn: () => api.get("/api/objects/{object}/golden-sample", { object: objectName, limit: 100 }),
    enabled: !!objectName && mayEdit,
    retry: false,
    staleTime: 60_000,
  });
  // The other systems that map this object: the table view shows them beside this one.
  const otherMappings = (ws.data?.mappings ?? []).filter((m) => m.object === objectName && m.system !== systemId);
  const otherDiscover = useQueries({
    queries: otherMappings.map((m) => ({
      queryKey: ["discover", m.system],
      queryFn: () => api.get("/api/systems/{id}/discover", { id: m.system }),
      enabled: view === "table" && mayEdit,
      retry: false,
      staleTime: 60_000,
    })),
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
      const values = samples.length ? samples.map((x) => readPath(x, path)) : [systemFields.find(([p]) => p === path)?.[1]];
      const r = connect(draft, path, field, def ? suggestFromSamples(def, path, values).transform : { kind: "copy" });
      setDraft(r.mapping);
      setActive(r.index);
      setSource(null);
      toast.message(`Connected ${path} → ${field}`, { duration: 2500 });
    },
    [draft, schema, systemFields, samples],
  );

  const disconnect = (field: string) => {
    if (!draft) return;
    // A rule yields its fields together (a full name yields two): it goes as a whole.
    setDraft({ ...draft, rules: draft.rules.filter((r) => !(r.canonical ?? []).includes(field)) });
    setActive(null);
  };

  const runAutoMap = () => {
    if (!draft || !schema) return;
    setSuggestions(
      autoMap({
        canonical: schema.fields,
        systemFields,
        samples,
        golden: (golden.data?.records ?? []) as Record<string, unknown>[],
        rules: draft.rules,
      }),
    );
  };
  const applySuggestions = (chosen: Suggestion[]) => {
    if (!draft) return;
    let next: Mapping = draft;
    for (const s of chosen) next = connect(next, s.path, s.field, s.transform).mapping;
    setDraft(next);
    setSuggestions(null);
    toast.success(`${chosen.length} connection${chosen.length === 1 ? "" : "s"} added to the draft`, { description: "Check them in the preview, then save the mapping." });
  };

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
  const systemName = systems.find((s) => s.id === systemId)?.name ?? systemId;
  const canonicalValues = (p?.canonical ?? {}) as Record<string, unknown>;
  const dupsBanner = dups.length ? (
    <div className="banner warning">
      <AlertTriangle size={16} />
      <div className="b-body">Mapped twice: {dups.join(", ")}. Only one rule should yield each field.</div>
    </div>
  ) : null;
  const others: OtherSystem[] = otherMappings.map((m, i) => ({
    id: m.system,
    name: systems.find((x) => x.id === m.system)?.name ?? m.system,
    mapping: m,
    sample: ((otherDiscover[i]?.data?.samples ?? [])[0] as Record<string, unknown> | undefined) ?? null,
    loading: otherDiscover[i]?.isPending === true && mayEdit,
    onEdit: () => setParams({ system: m.system, object: objectName, view: "table" }),
  }));
  const setTransform = (i: number, transform: Transform) => draft && setDraft({ ...draft, rules: draft.rules.map((r, j) => (j === i ? { ...r, transform } : r)) });
  const ruleEditor = (i: number) => {
    const r = draft!.rules[i]!;
    return (
      <RuleEditor
        key={i}
        index={i}
        rule={r}
        active={active === i}
        systemPaths={systemFields.map(([k]) => k)}
        canonical={schema!.fields}
        readOnly={mayEdit ? (r.canonical ?? []).some((c) => readOnly.has(c)) : false}
        serverError={ruleErrorIndex !== undefined && Number(ruleErrorIndex) === i ? previewError : null}
        fieldError={(r.canonical ?? []).map((c) => errorFor(c)?.message).find(Boolean) ?? null}
        pathProblems={check ? problemsOfRule(check.result.problems, i, r, checkStale) : []}
        disabled={!mayEdit}
        onFocus={() => setActive(i)}
        onChange={(nr) => draft && setDraft({ ...draft, rules: draft.rules.map((x, j) => (j === i ? nr : x)) })}
        onRemove={() => {
          if (!draft) return;
          setDraft({ ...draft, rules: draft.rules.filter((_, j) => j !== i) });
          setActive(null);
          setEditing(null);
        }}
      />
    );
  };

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
            <select id={id} className="select" value={systemId} onChange={(e) => setParams({ system: e.target.value, ...(view === "table" ? { view } : {}) })}>
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
            <select id={id} className="select" value={objectName} onChange={(e) => setParams({ system: systemId, object: e.target.value, ...(view === "table" ? { view } : {}) })}>
              {(ws.data?.objects ?? []).map((o) => (
                <option key={o.name}>{o.name}</option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Find a field">
          {(id) => (
            <span className="search-box">
              <Search size={14} aria-hidden="true" />
              <input id={id} type="search" className="input" placeholder="Name or sample value" value={filter} onChange={(e) => setFilter(e.target.value)} />
            </span>
          )}
        </Field>
        <div className="seg view-seg" role="radiogroup" aria-label="View">
          {(["lines", "table"] as const).map((v) => (
            <button
              key={v}
              type="button"
              role="radio"
              aria-checked={view === v}
              onClick={() => {
                const next = new URLSearchParams(params);
                if (v === "table") next.set("view", "table");
                else next.delete("view");
                setParams(next);
              }}
            >
              {v === "lines" ? "Lines" : "Table"}
            </button>
          ))}
        </div>
        <button
          type="button"
          className="btn"
          disabled={!mayEdit || !draft || !schema || discover.isPending}
          onClick={runAutoMap}
          title={mayEdit ? "Suggest connections from the field names and the sample values, for you to review" : whyNot(me.role, "edit_mappings")}
        >
          <Sparkles size={16} /> Auto-map…
        </button>
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
          system={systemName}
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
          systemName={systemName}
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

      {suggestions ? <AutoMapDialog suggestions={suggestions} systemName={systemName} onApply={applySuggestions} onClose={() => setSuggestions(null)} /> : null}
      {editing !== null && draft?.rules[editing] && schema ? (
        <Dialog
          open
          wide
          onClose={() => setEditing(null)}
          title={`Connection ${editing + 1} of ${systemName}`}
          footer={
            <button type="button" className="btn primary" onClick={() => setEditing(null)}>
              Done
            </button>
          }
        >
          {ruleEditor(editing)}
        </Dialog>
      ) : null}

      {!schema || !draft ? (
        <div className="card">
          <EmptyState title="No canonical object to map" />
        </div>
      ) : view === "table" ? (
        <section className="card" aria-label="Field table">
          <div className="card-body col">
            {dupsBanner}
            {discover.isPending && mayEdit ? <Loading label="Reading sample records…" /> : null}
            <MapperTable
              systemName={systemName}
              canonical={schema.fields}
              filter={filter}
              rules={draft.rules}
              systemFields={systemFields}
              samples={samples}
              canonicalValues={canonicalValues}
              previewPending={preview.isFetching || (!p && !previewError)}
              readOnly={readOnly}
              errorFor={errorFor}
              others={others}
              mayEdit={mayEdit}
              onConnect={doConnect}
              onDisconnect={disconnect}
              onEditRule={setEditing}
              onSetTransform={setTransform}
            />
          </div>
        </section>
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
                systemName={systemName}
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
                canonicalValues={canonicalValues}
                loadingFields={discover.isPending && mayEdit}
                mayEdit={mayEdit}
                filter={filter}
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
        <div className="grid-cards mapper-below">
          {view === "lines" ? (
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
                {dupsBanner}
                {draft.rules.length === 0 ? <EmptyState icon={<Link2 size={22} />} title="No connections yet">Drag a system field onto a canonical field, or select one and press Enter on the other. Or let Auto-map suggest them.</EmptyState> : null}
                {draft.rules.map((_, i) => ruleEditor(i))}
              </div>
            </section>
          ) : null}
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
