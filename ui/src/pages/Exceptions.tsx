// Exceptions, the stewards' quarantine: a filtered, server-paginated list (100,000 rows stay
// fast), a detail panel with the base, golden and each system's value side by side, the
// field's lineage, and the decisions: choose or type a value and approve (a second approver
// where the field needs four eyes), link an ambiguous match, dismiss with a note, or resolve
// a whole filtered set by one rule. A record that keeps changing has no value to choose (it is
// dismissed once stable); a reconciliation's held deletes are decided on the Systems page.

import { useCallback, useMemo, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { toast } from "sonner";
import { CheckCheck, ShieldCheck, UserCheck } from "lucide-react";
import { api, errorMessage } from "../api/client";
import { useMe, useMetrics, useWorkspace } from "../api/queries";
import type { Choice, ExceptionView, FieldDef, WorkspaceConfig } from "../api/types";
import { usePagedList } from "../lib/paged";
import { useUrlFilters } from "../lib/urlstate";
import { ageSeconds, formatAge, formatTime, isMasked, parseTyped, sameValue } from "../lib/format";
import { EXCEPTION_KINDS, detailOf, handling, kindLabel, kindTone } from "../lib/exceptions";
import { can, whyNot } from "../lib/roles";
import { DataTable, type Column } from "../components/DataTable";
import { Drawer, EmptyState, ErrorState, Field, Loading, PageHeader, Pill, Spinner, Value } from "../components/ui";
import { FieldLineage } from "../components/Lineage";
import { BulkResolveDialog } from "../components/BulkResolveDialog";
import { AmbiguousMatch, DeleteReview, DismissDialog, HeldDeletes, ResolutionSummary, UnstableRecord } from "../components/ExceptionPanels";

const AGES: [string, string][] = [
  ["", "Any age"],
  ["3600", "Older than 1 hour"],
  ["86400", "Older than 1 day"],
  ["604800", "Older than 7 days"],
];

const FILTER_KEYS = ["status", "kind", "system", "field", "age", "record_id"] as const;

function summary(e: ExceptionView): string {
  const d = detailOf(e);
  if (d.message) return d.message;
  return kindLabel(e.kind);
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
    { key: "kind", header: "Kind", width: "170px", render: (e) => <Pill tone={kindTone(e.kind)}>{kindLabel(e.kind)}</Pill> },
    { key: "field", header: "Field", width: "minmax(120px, 1fr)", render: (e) => (e.field ? <span className="mono">{e.field}</span> : <span className="faint">—</span>) },
    { key: "system", header: "System", width: "110px", render: (e) => e.system ?? <span className="faint">—</span> },
    { key: "record", header: "Record", width: "90px", render: (e) => (e.record_id != null ? <span className="mono">{e.record_id}</span> : <span className="faint">{handling(e).perRecord ? "new" : "—"}</span>) },
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
        description="Conflicts, non-owner changes, validation failures, ambiguous matches, deletes, records that keep changing and held mass deletes that wait for a person. Nothing is overwritten until someone decides."
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
                  {kindLabel(k)}
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

  const title = e ? `${kindLabel(e.kind)} #${e.id}` : `Exception #${id}`;
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
  const how = handling(e);
  const fieldException = how.chooseValue;
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
    if ("base" in d) {
      // No base: the reporting system never held an agreed value for the field. In the demo
      // this is a salary that differed between the seeded systems when they were first linked.
      const sub = d.base === null || d.base === undefined ? `none: ${e.system ?? "the system"} never held an agreed value (they differed when first linked)` : "what all systems last agreed on";
      options.push({ pick: { kind: "base" }, label: "Base", value: d.base, sub });
    }
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
    isOpen && (fieldException || how.dismiss) ? (
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
            <Pill tone={kindTone(e.kind)}>{kindLabel(e.kind)}</Pill>
          </dd>
          <dt>Record</dt>
          <dd>{e.record_id != null ? <Link to={`/records/${e.record_id}${e.field ? `?field=${encodeURIComponent(e.field)}` : ""}`}>{e.object} {e.record_id}</Link> : <span className="faint">{how.perRecord ? "not linked yet" : `every ${e.object} record of the system`}</span>}</dd>
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
              <Value v={d.value ?? null} currency={e.currency} />
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

      {e.kind === "unstable_record" ? <UnstableRecord e={e} systemName={names.get(e.system ?? "") ?? e.system ?? "the system"} /> : null}
      {e.kind === "reconcile_guard" ? <HeldDeletes e={e} systemName={names.get(e.system ?? "") ?? e.system ?? "the system"} decidedAt={how.decidedAt ?? "/systems"} /> : null}

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
                    Approved value <Value v={approval.value ?? null} currency={e.currency} />
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
                    <Value v={o.value ?? null} currency={e.currency} />
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
                    <Value v={v ?? null} currency={e.currency} />
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

