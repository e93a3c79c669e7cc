// Exceptions, the stewards' quarantine: a filtered, server-paginated list (100,000 rows stay
// fast), a detail panel with the base, golden and each system's value side by side, the
// field's lineage, and the decisions: choose or type a value and approve (a second approver
// where the field needs four eyes), link an ambiguous match, dismiss with a note, or resolve
// a whole filtered set by one rule.

import { useCallback, useMemo, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { toast } from "sonner";
import { CheckCheck, ShieldCheck, UserCheck } from "lucide-react";
import { api, errorMessage } from "../api/client";
import { useMe, useMetrics, useWorkspace } from "../api/queries";
import type { Choice, DeleteDecision, ExceptionView, FieldDef, WorkspaceConfig } from "../api/types";
import { usePagedList } from "../lib/paged";
import { suggestedDeactivation } from "../lib/policy";
import { useUrlFilters } from "../lib/urlstate";
import { LOCALE, ageSeconds, formatAge, formatTime, humanize, isMasked, parseTyped, sameValue } from "../lib/format";
import { can, whyNot } from "../lib/roles";
import { DataTable, type Column } from "../components/DataTable";
import { Dialog, Drawer, EmptyState, ErrorState, Field, Loading, PageHeader, Pill, Spinner, Value } from "../components/ui";
import { FieldLineage } from "../components/Lineage";

export const EXCEPTION_KINDS = ["conflict", "non_owner_change", "validation", "ambiguous_match", "delete_review"] as const;

const AGES: [string, string][] = [
  ["", "Any age"],
  ["3600", "Older than 1 hour"],
  ["86400", "Older than 1 day"],
  ["604800", "Older than 7 days"],
];

const FILTER_KEYS = ["status", "kind", "system", "field", "age", "record_id"] as const;

export function kindTone(kind: string): "danger" | "warning" | "info" | "accent" | undefined {
  switch (kind) {
    case "conflict":
      return "danger";
    case "non_owner_change":
      return "warning";
    case "validation":
      return "info";
    case "ambiguous_match":
      return "accent";
    default:
      return undefined;
  }
}

/** What an exception's detail says, typed loosely (the API gives it as free JSON). */
interface Detail {
  message?: string;
  base?: unknown;
  golden?: unknown;
  golden_by?: string | null;
  values?: Record<string, unknown>;
  approval?: { value?: unknown; by?: string; role?: string; at?: string; note?: string } | string;
  candidates?: number[];
  external_id?: string;
  value?: unknown;
  paths?: string[];
  direction?: string;
  owner?: string | null;
}

export function detailOf(e: ExceptionView): Detail {
  return e.detail && typeof e.detail === "object" ? (e.detail as Detail) : {};
}

function summary(e: ExceptionView): string {
  const d = detailOf(e);
  if (d.message) return d.message;
  return humanize(e.kind);
}

export function ExceptionsPage() {
  const me = useMe();
  const ws = useWorkspace();
  const metrics = useMetrics();
  const navigate = useNavigate();
  const { id } = useParams();
  const [f, setF] = useUrlFilters(FILTER_KEYS);
  const status = f.status || "open";
  const [bulkOpen, setBulkOpen] = useState(false);

  const recordId = /^\d+$/.test(f.record_id) ? Number(f.record_id) : undefined;
  const key = JSON.stringify([status, f.kind, f.system, f.field, f.age, recordId]);
  const fetchPage = useCallback(
    (offset: number, limit: number, signal: AbortSignal) =>
      api.list(
        "/api/exceptions",
        {
          status,
          kind: f.kind || undefined,
          system: f.system || undefined,
          field: f.field || undefined,
          older_than_secs: f.age ? Number(f.age) : undefined,
          record_id: recordId,
          limit,
          offset,
        },
        signal,
      ),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [key],
  );
  const unfiltered = status === "open" && !f.kind && !f.system && !f.field && !f.age && recordId === undefined;
  const list = usePagedList(key, fetchPage, { estimate: unfiltered ? metrics.data?.open_exceptions : null });

  const fields = useMemo(() => (ws.data?.objects ?? []).flatMap((o) => o.fields.map((x) => x.name)), [ws.data]);
  const systems = ws.data?.systems ?? [];
  const mayResolve = can(me.role, "resolve_exceptions");

  const columns: Column<ExceptionView>[] = [
    { key: "id", header: "#", width: "72px", render: (e) => <span className="mono faint">{e.id}</span> },
    { key: "kind", header: "Kind", width: "150px", render: (e) => <Pill tone={kindTone(e.kind)}>{humanize(e.kind)}</Pill> },
    { key: "field", header: "Field", width: "minmax(120px, 1fr)", render: (e) => (e.field ? <span className="mono">{e.field}</span> : <span className="faint">—</span>) },
    { key: "system", header: "System", width: "110px", render: (e) => e.system ?? <span className="faint">—</span> },
    { key: "record", header: "Record", width: "90px", render: (e) => (e.record_id != null ? <span className="mono">{e.record_id}</span> : <span className="faint">new</span>) },
    { key: "summary", header: "What happened", width: "minmax(200px, 3fr)", render: (e) => <span title={summary(e)}>{summary(e)}</span> },
    {
      key: "age",
      header: "Age",
      width: "80px",
      className: "num",
      render: (e) => <span title={formatTime(e.created_at)}>{formatAge(ageSeconds(e.created_at))}</span>,
    },
    ...(status !== "open"
      ? [{ key: "status", header: "Status", width: "110px", render: (e: ExceptionView) => <Pill tone={e.status === "resolved" ? "success" : undefined}>{e.status}</Pill> }]
      : []),
  ];

  const close = () => navigate({ pathname: "/exceptions", search: window.location.search });
  const qc = useQueryClient();
  const afterChange = () => {
    list.reload();
    void qc.invalidateQueries({ queryKey: ["metrics"] });
  };

  return (
    <div className="page fill">
      <PageHeader
        title="Exceptions"
        description="Conflicts, non-owner changes, validation failures, ambiguous matches and deletes that wait for a steward. Nothing is overwritten until someone decides."
        actions={
          <button
            type="button"
            className="btn"
            onClick={() => setBulkOpen(true)}
            disabled={!mayResolve || status !== "open"}
            title={!mayResolve ? whyNot(me.role, "resolve_exceptions") : status !== "open" ? "Only open exceptions can be resolved" : "Resolve every exception this filter selects by one rule"}
          >
            <CheckCheck size={16} /> Resolve filtered…
          </button>
        }
      />
      <div className="toolbar" role="search" aria-label="Filter exceptions">
        <Field label="Status">
          {(id) => (
            <select id={id} className="select" value={status} onChange={(e) => setF({ status: e.target.value === "open" ? "" : e.target.value })}>
              <option value="open">Open</option>
              <option value="resolved">Resolved</option>
              <option value="discarded">Dismissed</option>
              <option value="all">All</option>
            </select>
          )}
        </Field>
        <Field label="Kind">
          {(id) => (
            <select id={id} className="select" value={f.kind} onChange={(e) => setF({ kind: e.target.value })}>
              <option value="">Any kind</option>
              {EXCEPTION_KINDS.map((k) => (
                <option key={k} value={k}>
                  {humanize(k)}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="System">
          {(id) => (
            <select id={id} className="select" value={f.system} onChange={(e) => setF({ system: e.target.value })}>
              <option value="">Any system</option>
              {systems.map((s) => (
                <option key={s.id} value={s.id}>
                  {s.name}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Field">
          {(id) => (
            <select id={id} className="select" value={f.field} onChange={(e) => setF({ field: e.target.value })}>
              <option value="">Any field</option>
              {fields.map((x) => (
                <option key={x} value={x}>
                  {x}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Age">
          {(id) => (
            <select id={id} className="select" value={f.age} onChange={(e) => setF({ age: e.target.value })}>
              {AGES.map(([v, l]) => (
                <option key={v} value={v}>
                  {l}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Record id">
          {(id) => <input id={id} className="input" inputMode="numeric" style={{ width: 100 }} value={f.record_id} onChange={(e) => setF({ record_id: e.target.value.replace(/\D/g, "") })} />}
        </Field>
        {f.kind || f.system || f.field || f.age || f.status || f.record_id ? (
          <button type="button" className="btn ghost" onClick={() => setF({ status: "", kind: "", system: "", field: "", age: "", record_id: "" })}>
            Clear filters
          </button>
        ) : null}
      </div>
      <DataTable
        label="Exceptions"
        list={list}
        columns={columns}
        rowKey={(e) => e.id}
        activeKey={id ? Number(id) : null}
        onOpen={(e) => navigate({ pathname: `/exceptions/${e.id}`, search: window.location.search })}
        empty={
          <EmptyState icon={<ShieldCheck size={22} />} title={unfiltered ? "Nothing waits for a steward" : "No exceptions match these filters"}>
            {unfiltered ? "Every conflict has been resolved by rule or by a person." : "Try another kind, system or age."}
          </EmptyState>
        }
      />
      {id ? <ExceptionDrawer id={Number(id)} ws={ws.data} onClose={close} onChanged={afterChange} /> : null}
      <BulkResolveDialog
        open={bulkOpen}
        onClose={() => setBulkOpen(false)}
        filter={{ kind: f.kind || null, system: f.system || null, field: f.field || null, age: f.age ? Number(f.age) : null, record_id: recordId ?? null }}
        systems={systems.map((s) => ({ id: s.id, name: s.name }))}
        loaded={list.exactTotal ?? null}
        onDone={afterChange}
      />
    </div>
  );
}

function fieldDef(ws: WorkspaceConfig | undefined, object: string, field: string | null | undefined): FieldDef | undefined {
  if (!field) return undefined;
  return ws?.objects.find((o) => o.name === object)?.fields.find((x) => x.name === field);
}

function needsFourEyes(ws: WorkspaceConfig | undefined, object: string, field: string | null | undefined): boolean {
  if (!field) return false;
  return !!ws?.policies?.find((p) => p.object === object)?.fields.find((x) => x.field === field)?.four_eyes;
}

type Pick = { kind: "base" } | { kind: "golden" } | { kind: "system"; system: string } | { kind: "custom" };

function ExceptionDrawer({ id, ws, onClose, onChanged }: { id: number; ws: WorkspaceConfig | undefined; onClose: () => void; onChanged: () => void }) {
  const me = useMe();
  const qc = useQueryClient();
  const q = useQuery({ queryKey: ["exception", id], queryFn: () => api.get("/api/exceptions/{id}", { id }) });
  const e = q.data;
  const record = useQuery({
    queryKey: ["record", e?.record_id],
    queryFn: () => api.get("/api/records/{id}", { id: e!.record_id! }),
    enabled: e?.record_id != null,
  });
  const [pick, setPick] = useState<Pick | null>(null);
  const [custom, setCustom] = useState("");
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const [dismissOpen, setDismissOpen] = useState(false);

  const mayResolve = can(me.role, "resolve_exceptions");
  const names = new Map((ws?.systems ?? []).map((s) => [s.id, s.name]));

  const title = e ? `${humanize(e.kind)} #${e.id}` : `Exception #${id}`;
  if (q.isPending) {
    return (
      <Drawer open onClose={onClose} title={title}>
        <Loading />
      </Drawer>
    );
  }
  if (q.error || !e) {
    return (
      <Drawer open onClose={onClose} title={title}>
        <ErrorState error={q.error} retry={() => void q.refetch()} />
      </Drawer>
    );
  }

  const d = detailOf(e);
  const def = fieldDef(ws, e.object, e.field);
  const fourEyes = needsFourEyes(ws, e.object, e.field);
  const approval = d.approval && typeof d.approval === "object" ? d.approval : null;
  const approvalMasked = typeof d.approval === "string";
  const isOpen = e.status === "open";
  const fieldException = e.record_id != null && !!e.field && e.kind !== "ambiguous_match" && e.kind !== "delete_review";
  const sameApprover = approval?.by === me.name;

  const choice: Choice | null = !pick
    ? null
    : pick.kind === "system"
      ? { choose: "system", value: pick.system }
      : pick.kind === "custom"
        ? { choose: "custom", value: parseTyped(custom, def?.type) }
        : { choose: pick.kind };

  const refresh = () => {
    void qc.invalidateQueries({ queryKey: ["exception", id] });
    void qc.invalidateQueries({ queryKey: ["audit"] });
    void qc.invalidateQueries({ queryKey: ["record"] });
    onChanged();
  };

  const resolve = async () => {
    if (!choice) return;
    setBusy(true);
    try {
      const r = await api.post("/api/exceptions/{id}/resolve", { id }, { choice, note });
      if (r.outcome === "awaiting_second_approval") {
        toast.success("Your approval is recorded", { description: `${e.field} needs a second person: another steward must approve the same value.` });
      } else {
        toast.success(`Exception #${id} resolved`, { description: "The value is golden now and is written to the systems that hold something else." });
      }
      setNote("");
      refresh();
      if (r.outcome === "applied") onClose();
    } catch (err) {
      toast.error("Could not resolve", { description: errorMessage(err) });
    } finally {
      setBusy(false);
    }
  };

  const link = async (linkTo: number | null) => {
    setBusy(true);
    try {
      await api.post("/api/exceptions/{id}/match", { id }, { link_to: linkTo });
      toast.success(linkTo == null ? "A new record will be created" : `Linked to record ${linkTo}`);
      refresh();
      onClose();
    } catch (err) {
      toast.error("Could not resolve the match", { description: errorMessage(err) });
    } finally {
      setBusy(false);
    }
  };

  // The values to choose from: the base, the golden value, each reporting system's value.
  const options: { pick: Pick; label: string; value: unknown; sub?: string }[] = [];
  if (fieldException) {
    if ("base" in d) options.push({ pick: { kind: "base" }, label: "Base", value: d.base, sub: "what all systems last agreed on" });
    options.push({
      pick: { kind: "golden" },
      label: "Golden",
      value: "golden" in d ? d.golden : record.data?.golden?.[e.field as keyof object],
      sub: d.golden_by ? `set by ${d.golden_by}` : "the agreed value now",
    });
    for (const [sys, v] of Object.entries(d.values ?? {})) {
      options.push({ pick: { kind: "system", system: sys }, label: names.get(sys) ?? sys, value: v, sub: "reported by this system" });
    }
  }
  const samePick = (a: Pick | null, b: Pick) => !!a && a.kind === b.kind && (a.kind !== "system" || (b.kind === "system" && a.system === b.system));
  // Other linked systems' last-known values (informational; "use" copies it into the custom value).
  const shadows = record.data?.shadows as Record<string, Record<string, unknown>> | undefined;
  const others = e.field && shadows ? Object.entries(shadows).filter(([s]) => !(s in (d.values ?? {}))) : [];

  const footer =
    isOpen && (fieldException || e.kind === "delete_review" || e.kind === "ambiguous_match") ? (
      <>
        <button
          type="button"
          className="btn"
          onClick={() => setDismissOpen(true)}
          disabled={!mayResolve || busy}
          title={mayResolve ? "Close this exception without changing any value" : whyNot(me.role, "resolve_exceptions")}
        >
          Dismiss…
        </button>
        <span className="spacer" />
        {fieldException ? (
          <button
            type="button"
            className="btn primary"
            onClick={() => void resolve()}
            disabled={!mayResolve || busy || !choice || sameApprover || (pick?.kind === "custom" && custom.trim() === "")}
            title={!mayResolve ? whyNot(me.role, "resolve_exceptions") : sameApprover ? "You approved first; a second person must approve" : undefined}
          >
            {busy ? <Spinner /> : <UserCheck size={16} />}
            {fourEyes ? (approval ? "Approve as second person" : "Approve (1 of 2)") : "Approve"}
          </button>
        ) : null}
      </>
    ) : null;

  return (
    <Drawer
      open
      onClose={onClose}
      title={title}
      headerExtra={<Pill tone={isOpen ? "warning" : e.status === "resolved" ? "success" : undefined}>{e.status}</Pill>}
      footer={footer}
    >
      <section className="section">
        <dl className="kv">
          <dt>Kind</dt>
          <dd>
            <Pill tone={kindTone(e.kind)}>{humanize(e.kind)}</Pill>
          </dd>
          <dt>Record</dt>
          <dd>{e.record_id != null ? <Link to={`/records/${e.record_id}${e.field ? `?field=${encodeURIComponent(e.field)}` : ""}`}>{e.object} {e.record_id}</Link> : <span className="faint">not linked yet</span>}</dd>
          <dt>Field</dt>
          <dd>
            {e.field ? <span className="mono">{e.field}</span> : "—"} {def?.type ? <span className="faint">({def.type})</span> : null}{" "}
            {fourEyes ? <Pill tone="accent" title="A manual resolution needs two different people">Needs two approvers</Pill> : null}
          </dd>
          <dt>System</dt>
          <dd>{e.system ? names.get(e.system) ?? e.system : "—"}</dd>
          <dt>Opened</dt>
          <dd>
            {formatTime(e.created_at)} <span className="faint">({formatAge(ageSeconds(e.created_at))} ago)</span>
          </dd>
        </dl>
        {d.message ? <div className="banner info"><div className="b-body">{d.message}</div></div> : null}
      </section>

      {e.kind === "validation" ? (
        <section className="section">
          <h3>Rejected value</h3>
          <dl className="kv">
            <dt>Value</dt>
            <dd>
              <Value v={d.value ?? null} />
            </dd>
            {d.paths?.length ? (
              <>
                <dt>System path</dt>
                <dd className="mono">{d.paths.join(", ")}</dd>
              </>
            ) : null}
            {d.direction ? (
              <>
                <dt>Direction</dt>
                <dd>{d.direction === "in" ? "read from the system" : "write to the system"}</dd>
              </>
            ) : null}
          </dl>
        </section>
      ) : null}

      {!isOpen ? <ResolutionSummary e={e} /> : null}

      {fieldException ? (
        <section className="section" aria-labelledby="choose-h">
          <h3 id="choose-h">{isOpen ? "Choose the value" : "Values"}</h3>
          {approval || approvalMasked ? (
            <div className="banner warning" role="status">
              <UserCheck size={16} />
              <div className="b-body">
                <strong>
                  First approval by {approval?.by ?? "another steward"}
                  {approval?.role ? ` (${approval.role})` : ""}
                  {approval?.at ? `, ${formatTime(approval.at)}` : ""}
                </strong>
                {approval ? (
                  <span>
                    Approved value <Value v={approval.value ?? null} />
                    {approval.note ? <> — “{approval.note}”</> : null}.{" "}
                  </span>
                ) : null}
                {sameApprover ? "A different person must approve the same value." : "Approve the same value to apply it; a different value starts over."}
              </div>
            </div>
          ) : null}
          <div className="compare" role="radiogroup" aria-label="Value to keep">
            {options.map((o) => {
              const checked = samePick(pick, o.pick);
              const agreesWithApproval = approval && sameValue(approval.value, o.value);
              return (
                <button
                  type="button"
                  role="radio"
                  key={o.label}
                  className="choice-card"
                  aria-checked={checked}
                  aria-disabled={!isOpen || !mayResolve}
                  disabled={!isOpen || !mayResolve}
                  onClick={() => setPick(o.pick)}
                >
                  <span className="c-label">
                    {o.label}
                    {agreesWithApproval ? <Pill tone="warning">1st approval</Pill> : null}
                  </span>
                  <span className="c-value">
                    <Value v={o.value ?? null} />
                  </span>
                  {o.sub ? <span className="faint" style={{ fontSize: 12 }}>{o.sub}</span> : null}
                </button>
              );
            })}
            {isOpen ? (
              <div className="choice-card" role="radio" aria-checked={pick?.kind === "custom"} aria-disabled={!mayResolve} tabIndex={-1}>
                <span className="c-label">Type a value</span>
                <input
                  className="input"
                  aria-label="Custom value"
                  placeholder={def?.type ? `a ${def.type}` : "value"}
                  value={custom}
                  disabled={!mayResolve}
                  onFocus={() => setPick({ kind: "custom" })}
                  onChange={(ev) => {
                    setCustom(ev.target.value);
                    setPick({ kind: "custom" });
                  }}
                />
                <span className="faint" style={{ fontSize: 12 }}>
                  {def?.type === "money" ? "decimal, e.g. 85000.50" : def?.type === "date" ? "YYYY-MM-DD" : def?.type === "phone" ? "E.164, e.g. +14155550123" : def?.values?.length ? def.values.join(", ") : "canonical form"}
                </span>
              </div>
            ) : null}
          </div>
          {others.length > 0 ? (
            <div className="col" style={{ gap: 6 }}>
              <span className="muted" style={{ fontSize: 12.5 }}>Other systems, last known:</span>
              {others.map(([sys, fields]) => {
                const v = fields[e.field!];
                return (
                  <div key={sys} className="row">
                    <span style={{ minWidth: 120 }}>{names.get(sys) ?? sys}</span>
                    <Value v={v ?? null} />
                    {isOpen && mayResolve && v !== undefined && v !== null && !isMasked(v) ? (
                      <button type="button" className="btn sm ghost" onClick={() => { setCustom(typeof v === "string" ? v : JSON.stringify(v)); setPick({ kind: "custom" }); }}>
                        Use this value
                      </button>
                    ) : null}
                  </div>
                );
              })}
            </div>
          ) : null}
          {isOpen && mayResolve ? (
            <Field label="Note (kept in the audit)">
              {(fid) => <textarea id={fid} className="textarea" rows={2} value={note} onChange={(ev) => setNote(ev.target.value)} disabled={!mayResolve} placeholder="Why this value?" />}
            </Field>
          ) : null}
          {!mayResolve && isOpen ? <p className="faint">{whyNot(me.role, "resolve_exceptions")}</p> : null}
        </section>
      ) : null}

      {e.kind === "ambiguous_match" ? <AmbiguousMatch e={e} busy={busy} mayResolve={mayResolve && isOpen} onLink={(r) => void link(r)} /> : null}

      {e.kind === "delete_review" ? (
        <DeleteReview
          e={e}
          ws={ws}
          systemName={names.get(e.system ?? "") ?? e.system ?? "A system"}
          mayDecide={mayResolve && isOpen}
          whyNot={whyNot(me.role, "resolve_exceptions")}
          onDone={() => {
            refresh();
            onClose();
          }}
        />
      ) : null}

      {e.record_id != null ? (
        <section className="section">
          <h3>Recent history {e.field ? `of ${e.field}` : "of the record"}</h3>
          <FieldLineage recordId={e.record_id} field={e.field} limit={15} />
        </section>
      ) : null}

      <DismissDialog open={dismissOpen} onClose={() => setDismissOpen(false)} id={id} onDone={() => { refresh(); onClose(); }} />
    </Drawer>
  );
}

type DecisionKind = DeleteDecision["kind"];

function describeDecision(d: DeleteDecision): string {
  if (d.kind === "delete_everywhere") return "deleted in every system";
  if (d.kind === "keep") return "kept in the other systems";
  return `deactivated: ${d.field} set to ${typeof d.value === "string" ? d.value : JSON.stringify(d.value)}`;
}

function DeleteReview({ e, ws, systemName, mayDecide, whyNot: why, onDone }: { e: ExceptionView; ws: WorkspaceConfig | undefined; systemName: string; mayDecide: boolean; whyNot: string; onDone: () => void }) {
  const suggested = suggestedDeactivation(ws, e.object);
  const fields = ws?.objects.find((o) => o.name === e.object)?.fields ?? [];
  const [kind, setKind] = useState<DecisionKind>(suggested ? "deactivate" : "keep");
  const [field, setField] = useState(suggested?.field ?? fields[0]?.name ?? "");
  const [value, setValue] = useState(suggested?.value ?? "");
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const def = fields.find((f) => f.name === field);
  const options: { kind: DecisionKind; label: string; sub: string }[] = [
    { kind: "deactivate", label: "Deactivate", sub: "keep the record everywhere else, with a status that says it has ended" },
    { kind: "delete_everywhere", label: "Delete everywhere", sub: "delete the record in every other system too" },
    { kind: "keep", label: "Keep", sub: `keep it as it is elsewhere; ${systemName} is no longer linked` },
  ];
  const decision: DeleteDecision | null =
    kind === "deactivate" ? (field && value.trim() !== "" ? { kind, field, value: parseTyped(value, def?.type) } : null) : { kind };
  const decide = async () => {
    if (!decision) return;
    setBusy(true);
    try {
      await api.post("/api/exceptions/{id}/delete-decision", { id: e.id }, { decision, note });
      toast.success(`Exception #${e.id} decided`, { description: `The record is ${describeDecision(decision)}.` });
      onDone();
    } catch (err) {
      toast.error("Could not carry out the decision", { description: errorMessage(err) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="section" aria-labelledby="delete-h">
      <h3 id="delete-h">Delete under review</h3>
      <p className="muted">{systemName} deleted this record. The other systems keep it until a steward decides.</p>
      {mayDecide ? (
        <>
          <div className="col" role="radiogroup" aria-label="What happens to the record">
            {options.map((o) => (
              <label key={o.kind} className="row" style={{ alignItems: "flex-start", gap: 8, cursor: "pointer" }}>
                <input type="radio" name={`delete-${e.id}`} checked={kind === o.kind} onChange={() => setKind(o.kind)} />
                <span>
                  <strong>{o.label}</strong> <span className="faint">{o.sub}</span>
                </span>
              </label>
            ))}
          </div>
          {kind === "deactivate" ? (
            <div className="row" style={{ gap: 12 }}>
              <Field label="Field">
                {(id) => (
                  <select id={id} className="select" value={field} onChange={(ev) => { setField(ev.target.value); setValue(""); }}>
                    {fields.map((f) => (
                      <option key={f.name} value={f.name}>
                        {f.name}
                      </option>
                    ))}
                  </select>
                )}
              </Field>
              <Field label="Value" hint={def?.type === "enum" ? undefined : def?.type}>
                {(id) =>
                  def?.type === "enum" && def.values?.length ? (
                    <select id={id} className="select" value={value} onChange={(ev) => setValue(ev.target.value)}>
                      <option value="">Choose…</option>
                      {def.values.map((v) => (
                        <option key={v} value={v}>
                          {v}
                        </option>
                      ))}
                    </select>
                  ) : (
                    <input id={id} className="input" value={value} onChange={(ev) => setValue(ev.target.value)} />
                  )
                }
              </Field>
            </div>
          ) : null}
          <Field label="Note" hint="Kept in the audit with your decision.">
            {(id) => <textarea id={id} className="textarea" rows={2} value={note} onChange={(ev) => setNote(ev.target.value)} />}
          </Field>
          <div className="row">
            <button type="button" className="btn primary" disabled={busy || !decision} onClick={() => void decide()}>
              {busy ? <Spinner /> : <UserCheck size={16} />} Carry out
            </button>
          </div>
        </>
      ) : e.status === "open" ? (
        <p className="faint">{why}</p>
      ) : null}
    </section>
  );
}

function ResolutionSummary({ e }: { e: ExceptionView }) {
  const r = e.resolution && typeof e.resolution === "object" ? (e.resolution as { value?: unknown; note?: string; choice?: { choose?: string; value?: unknown }; dismissed?: boolean; link_to?: number | null; decision?: DeleteDecision }) : null;
  return (
    <section className="section">
      <h3>{e.status === "resolved" ? "Resolution" : "Outcome"}</h3>
      <dl className="kv">
        <dt>By</dt>
        <dd>{e.resolved_by ?? "—"}</dd>
        <dt>When</dt>
        <dd>{formatTime(e.updated_at)}</dd>
        {r && "value" in r ? (
          <>
            <dt>Value</dt>
            <dd>
              <Value v={r.value ?? null} />
              {r.choice?.choose ? <span className="faint"> ({r.choice.choose}{typeof r.choice.value === "string" && r.choice.choose === "system" ? `: ${r.choice.value}` : ""})</span> : null}
            </dd>
          </>
        ) : null}
        {r?.decision ? (
          <>
            <dt>Decision</dt>
            <dd>The record was {describeDecision(r.decision)}.</dd>
          </>
        ) : null}
        {r && "link_to" in r ? (
          <>
            <dt>Match</dt>
            <dd>{r.link_to == null ? "created a new record" : `linked to record ${r.link_to}`}</dd>
          </>
        ) : null}
        {r?.note ? (
          <>
            <dt>Note</dt>
            <dd>{r.note}</dd>
          </>
        ) : null}
      </dl>
    </section>
  );
}

function AmbiguousMatch({ e, busy, mayResolve, onLink }: { e: ExceptionView; busy: boolean; mayResolve: boolean; onLink: (r: number | null) => void }) {
  const d = detailOf(e);
  const candidates = d.candidates ?? [];
  return (
    <section className="section">
      <h3>Candidates</h3>
      <p className="muted">
        {e.system} record <span className="mono">{d.external_id ?? "?"}</span> matches {candidates.length} existing records. Link it to one, or create a new record.
      </p>
      <div className="col">
        {candidates.map((c) => (
          <Candidate key={c} id={c} onLink={() => onLink(c)} disabled={!mayResolve || busy} />
        ))}
      </div>
      <div className="row">
        <button type="button" className="btn" disabled={!mayResolve || busy} onClick={() => onLink(null)}>
          Create a new record
        </button>
      </div>
    </section>
  );
}

function Candidate({ id, onLink, disabled }: { id: number; onLink: () => void; disabled: boolean }) {
  const q = useQuery({ queryKey: ["record", id], queryFn: () => api.get("/api/records/{id}", { id }) });
  const g = (q.data?.golden ?? {}) as Record<string, unknown>;
  return (
    <div className="card" style={{ padding: 12 }}>
      <div className="row wrap">
        <strong>
          <Link to={`/records/${id}`}>Record {id}</Link>
        </strong>
        {q.isPending ? <Spinner /> : q.error ? <span className="faint">{errorMessage(q.error)}</span> : (
          <span className="muted">
            {[g.given_name, g.family_name].filter((x) => typeof x === "string").join(" ")} {typeof g.employee_number === "string" ? `· ${g.employee_number}` : ""} {typeof g.work_email === "string" ? `· ${g.work_email}` : ""}
          </span>
        )}
        <span className="spacer" />
        <button type="button" className="btn sm primary" disabled={disabled} onClick={onLink}>
          Link to this record
        </button>
      </div>
    </div>
  );
}

function DismissDialog({ open, onClose, id, onDone }: { open: boolean; onClose: () => void; id: number; onDone: () => void }) {
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    setBusy(true);
    try {
      await api.post("/api/exceptions/{id}/dismiss", { id }, { note });
      toast.success(`Exception #${id} dismissed`);
      setNote("");
      onClose();
      onDone();
    } catch (err) {
      toast.error("Could not dismiss", { description: errorMessage(err) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog
      open={open}
      onClose={onClose}
      title={`Dismiss exception #${id}`}
      footer={
        <>
          <span className="spacer" />
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="button" className="btn danger" disabled={busy || note.trim() === ""} onClick={() => void submit()}>
            {busy ? <Spinner /> : null} Dismiss
          </button>
        </>
      }
    >
      <p className="muted">Dismissing closes the exception and changes no value. The note is kept in the audit.</p>
      <Field label="Note (required)">
        {(fid) => <textarea id={fid} className="textarea" data-autofocus value={note} onChange={(e) => setNote(e.target.value)} />}
      </Field>
    </Dialog>
  );
}

function BulkResolveDialog(props: {
  open: boolean;
  onClose: () => void;
  filter: { kind: string | null; system: string | null; field: string | null; age: number | null; record_id: number | null };
  systems: { id: string; name: string }[];
  loaded: number | null;
  onDone: () => void;
}) {
  const [rule, setRule] = useState<string>("golden");
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ applied: number; awaiting_second_approval: number; failed: string[] } | null>(null);
  const { filter } = props;
  const submit = async () => {
    setBusy(true);
    try {
      const choice: Choice = rule === "golden" ? { choose: "golden" } : rule === "base" ? { choose: "base" } : { choose: "system", value: rule.slice("system:".length) };
      const r = await api.post(
        "/api/exceptions/bulk-resolve",
        {},
        {
          filter: {
            kind: filter.kind,
            system: filter.system,
            field: filter.field,
            record_id: filter.record_id,
            status: "open",
            opened_before: filter.age ? new Date(Date.now() - filter.age * 1000).toISOString() : null,
          },
          choice,
          note,
        },
      );
      setResult(r);
      props.onDone();
      toast.success(`${r.applied} resolved${r.awaiting_second_approval ? `, ${r.awaiting_second_approval} await a second approver` : ""}${r.failed.length ? `, ${r.failed.length} failed` : ""}`);
    } catch (err) {
      toast.error("Bulk resolve failed", { description: errorMessage(err) });
    } finally {
      setBusy(false);
    }
  };
  const close = () => {
    setResult(null);
    props.onClose();
  };
  const scope = [filter.kind ? humanize(filter.kind) : "all kinds", filter.system ? `from ${filter.system}` : null, filter.field ? `on ${filter.field}` : null, filter.age ? `older than ${formatAge(filter.age)}` : null, filter.record_id != null ? `record ${filter.record_id}` : null]
    .filter(Boolean)
    .join(", ");
  return (
    <Dialog
      open={props.open}
      onClose={close}
      title="Resolve filtered exceptions"
      footer={
        result ? (
          <>
            <span className="spacer" />
            <button type="button" className="btn primary" onClick={close}>
              Done
            </button>
          </>
        ) : (
          <>
            <span className="spacer" />
            <button type="button" className="btn" onClick={close}>
              Cancel
            </button>
            <button type="button" className="btn primary" disabled={busy} onClick={() => void submit()}>
              {busy ? <Spinner /> : <CheckCheck size={16} />} Resolve
            </button>
          </>
        )
      }
    >
      {result ? (
        <div className="col">
          <div className="banner info">
            <div className="b-body">
              <strong>{result.applied} applied</strong>
              {result.awaiting_second_approval > 0 ? <span>{result.awaiting_second_approval} need a second approver (four-eyes fields). </span> : null}
              {result.failed.length > 0 ? <span>{result.failed.length} could not be resolved by this rule:</span> : null}
            </div>
          </div>
          {result.failed.length > 0 ? <pre className="block">{result.failed.join("\n")}</pre> : null}
        </div>
      ) : (
        <>
          <p>
            Applies one rule to every <strong>open</strong> exception matching: <strong>{scope}</strong>
            {props.loaded != null ? ` (${props.loaded.toLocaleString(LOCALE)} now)` : ""}, up to 1,000 per run. Exceptions the rule cannot resolve (an ambiguous match, a system with no value) are listed as failed.
          </p>
          <Field label="Keep">
            {(id) => (
              <select id={id} className="select" value={rule} onChange={(e) => setRule(e.target.value)} data-autofocus>
                <option value="golden">The golden value (undo the incoming change)</option>
                <option value="base">The base (the last agreed value)</option>
                {props.systems.map((s) => (
                  <option key={s.id} value={`system:${s.id}`}>
                    {s.name}'s value
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="Note (kept in the audit)">
            {(id) => <textarea id={id} className="textarea" value={note} onChange={(e) => setNote(e.target.value)} />}
          </Field>
        </>
      )}
    </Dialog>
  );
}
