// Reconciliations on the Systems page: a system's recent runs and their outcome, starting a run
// now and following it every second (records listed of the total, time left, then what it
// found), the list of a system's runs, and the banner of runs that found too many records gone
// and wait for an admin to delete them or keep them.

import { useEffect, useRef, useState } from "react";
import { useQueries, useQuery, useQueryClient } from "@tanstack/react-query";
import { toast } from "sonner";
import { AlertTriangle, CheckCircle2, History, RefreshCw, ShieldAlert, Trash2, Undo2, XCircle } from "lucide-react";
import { api, errorMessage } from "../api/client";
import { useMe } from "../api/queries";
import type { ObjectSchema, ReconcileRun } from "../api/types";
import { LOCALE, ageSeconds, formatAge, formatTime } from "../lib/format";
import {
  awaitingDecision,
  describeDeletePolicy,
  formatEta,
  formatPercent,
  guardRunIds,
  isRunning,
  latestPerObject,
  progressOf,
  runStatusLabel,
  runTone,
  runsSummary,
  stalledSecs,
  triggerLabel,
  vanishedShare,
} from "../lib/reconcile";
import { can, whyNot } from "../lib/roles";
import { Dialog, Drawer, EmptyState, ErrorState, Field, Loading, Pill, Progress, Spinner } from "./ui";

const LIST_LIMIT = 20;

/** A system's newest runs; polled while one of them runs, so a scheduled run shows up too. */
export function useSystemRuns(systemId: string) {
  return useQuery({
    queryKey: ["reconciliations", systemId],
    queryFn: () => api.get("/api/reconciliations", { system: systemId, limit: LIST_LIMIT }),
    refetchInterval: (q) => ((q.state.data ?? []).some(isRunning) ? 2000 : 30_000),
  });
}

/** Runs followed every second while they run. */
function useFollowedRuns(ids: number[]) {
  return useQueries({
    queries: ids.map((id) => ({
      queryKey: ["reconciliation", id],
      queryFn: () => api.get("/api/reconciliations/{id}", { id }),
      refetchInterval: (q: { state: { data?: ReconcileRun } }) => (q.state.data && !isRunning(q.state.data) ? false : 1000),
    })),
  });
}

/** Starts a reconciliation of a system now and follows its runs (one per object it maps). */
export function useReconcileNow(systemId: string) {
  const qc = useQueryClient();
  const [ids, setIds] = useState<number[]>([]);
  const [starting, setStarting] = useState(false);
  const followed = useFollowedRuns(ids);
  const runs = followed.map((q) => q.data).filter((r): r is ReconcileRun => !!r);
  const settled = ids.length > 0 && runs.length === ids.length && !runs.some(isRunning);
  useEffect(() => {
    if (!settled) return;
    void qc.invalidateQueries({ queryKey: ["reconciliations"] });
    void qc.invalidateQueries({ queryKey: ["reconcile-guards"] });
    void qc.invalidateQueries({ queryKey: ["metrics"] });
  }, [settled, qc]);
  const start = async () => {
    setStarting(true);
    try {
      const r = await api.post("/api/systems/{id}/reconcile", { id: systemId });
      setIds(r.runs.map((x) => x.id));
      for (const run of r.runs) qc.setQueryData(["reconciliation", run.id], run);
      toast.success(`Reconciling ${systemId}`, { description: r.runs.length === 1 ? `Run #${r.runs[0]!.id} lists ${r.runs[0]!.object}.` : `${r.runs.length} runs, one per object.` });
      void qc.invalidateQueries({ queryKey: ["reconciliations", systemId] });
    } catch (e) {
      toast.error(`Could not reconcile ${systemId}`, { description: errorMessage(e) });
    } finally {
      setStarting(false);
    }
  };
  const now = useNow(runs.some(isRunning));
  // A stalled run (its system unavailable) may be started again: it goes on from its page.
  const running = starting || runs.some((r) => isRunning(r) && stalledSecs(r, now) === null);
  return { start, starting, runs, running, clear: () => setIds([]) };
}

/** The time now, renewed every few seconds while `on` (a stalled run is told apart without new data). */
function useNow(on: boolean, everyMs = 5000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!on) return;
    const t = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(t);
  }, [on, everyMs]);
  return now;
}

/** A run as it goes: records listed of the total and the time left; then what it found. */
export function RunProgress({ run }: { run: ReconcileRun }) {
  const now = useNow(isRunning(run));
  if (isRunning(run)) {
    const p = progressOf(run);
    const eta = formatEta(run.eta_secs);
    const stalled = stalledSecs(run, now);
    return (
      <div className="col" style={{ gap: 4 }} role="status" aria-live="polite">
        {p ? (
          <Progress value={p.value} max={p.max} label={`Listing ${run.object}`} />
        ) : (
          <span className="row muted">
            <Spinner /> Listing {run.object}: {run.listed.toLocaleString(LOCALE)} records so far
          </span>
        )}
        <span className="faint" style={{ fontSize: 12 }}>
          Run #{run.id}
          {eta && !stalled ? ` · ${eta}` : ""}
        </span>
        {stalled ? (
          <span style={{ color: "var(--warning)", fontSize: 12.5 }}>
            <AlertTriangle size={12} aria-hidden="true" /> No new page for {formatAge(stalled)}: {run.system} may be unavailable. The run goes on from its page at the next scheduled run, or when you reconcile again.
          </span>
        ) : null}
      </div>
    );
  }
  return <RunOutcome run={run} />;
}

/** A finished run's outcome in a banner: its message and what it found. */
function RunOutcome({ run }: { run: ReconcileRun }) {
  const tone = run.status === "done" ? "success" : run.status === "failed" ? "danger" : run.status === "needs_confirmation" ? "warning" : "neutral";
  const Icon = run.status === "done" ? CheckCircle2 : run.status === "failed" ? XCircle : run.status === "needs_confirmation" ? ShieldAlert : History;
  return (
    <div className={`banner ${tone}`} role="status">
      <Icon size={16} />
      <div className="b-body">
        <strong>
          {run.object}: {runStatusLabel(run.status)} <span className="faint" style={{ fontWeight: 400 }}>(run #{run.id})</span>
        </strong>
        <span>{run.message}</span>
        {run.status === "done" && run.linked > 0 ? (
          <span className="faint" style={{ fontSize: 12.5 }}>
            {run.vanished.toLocaleString(LOCALE)} of {run.linked.toLocaleString(LOCALE)} linked records gone.
          </span>
        ) : null}
      </div>
    </div>
  );
}

function RunCounts({ run }: { run: ReconcileRun }) {
  const n = (v: number) => v.toLocaleString(LOCALE);
  return (
    <span className="row wrap faint" style={{ gap: 10, fontSize: 12.5 }}>
      <span>
        listed {n(run.listed)}
        {run.total != null ? ` of ${n(run.total)}` : ""}
      </span>
      <span>{n(run.changed)} changed</span>
      <span>{n(run.unknown)} new</span>
      <span>
        {n(run.vanished)} of {n(run.linked)} linked gone
      </span>
      <span>{n(run.deleted)} deleted</span>
    </span>
  );
}

/** On a system's card: its latest run per object, or the runs just started, followed. */
export function SystemRuns({ systemId, followed, onHide }: { systemId: string; followed: ReconcileRun[]; onHide: () => void }) {
  const runs = useSystemRuns(systemId);
  if (followed.length > 0) {
    return (
      <div className="col" style={{ gap: 8 }}>
        {followed.map((r) => (
          <RunProgress key={r.id} run={r} />
        ))}
        {!followed.some(isRunning) ? (
          <div>
            <button type="button" className="btn sm ghost" onClick={onHide}>
              Hide
            </button>
          </div>
        ) : null}
      </div>
    );
  }
  if (runs.isPending) return <Loading label="Reading reconciliations…" />;
  if (runs.error) return <span className="faint">Reconciliations: {errorMessage(runs.error)}</span>;
  const latest = latestPerObject(runs.data);
  if (latest.length === 0) return <span className="faint">Not reconciled yet.</span>;
  return (
    <div className="col" style={{ gap: 6 }}>
      {latest.map((r) =>
        isRunning(r) ? (
          <RunProgress key={r.id} run={r} />
        ) : (
          <span key={r.id} className="row wrap" style={{ gap: 6, fontSize: 12.5 }} title={r.message}>
            <Pill tone={runTone(r.status)}>{runStatusLabel(r.status)}</Pill>
            <span className="mono">{r.object}</span>
            <span className="muted" style={{ minWidth: 0, overflowWrap: "anywhere" }}>{r.message}</span>
            <span className="faint">{formatAge(ageSeconds(r.finished_at ?? r.updated_at))} ago</span>
          </span>
        ),
      )}
    </div>
  );
}

/** A system's newest runs, each with who started it, how long it took and what it found. */
export function ReconciliationsDrawer({ systemId, systemName, onClose }: { systemId: string; systemName: string; onClose: () => void }) {
  const runs = useSystemRuns(systemId);
  const data = runs.data ?? [];
  return (
    <Drawer open onClose={onClose} title={`Reconciliations of ${systemName}`}>
      {runs.isPending ? <Loading /> : runs.error ? <ErrorState error={runs.error} retry={() => void runs.refetch()} /> : data.length === 0 ? (
        <EmptyState icon={<History size={22} />} title="No reconciliations yet">
          Use Reconcile now, or set a schedule in the system's form.
        </EmptyState>
      ) : (
        <section className="section">
          <p className="muted" style={{ margin: 0 }}>
            {runsSummary(data, LIST_LIMIT)}
          </p>
          <ol className="run-list" aria-label={`Reconciliations of ${systemName}`}>
            {data.map((r) => (
              <li key={r.id} className="card">
                <div className="row wrap" style={{ gap: 8 }}>
                  <strong className="mono">#{r.id}</strong>
                  <span className="mono">{r.object}</span>
                  <Pill tone={runTone(r.status)}>{runStatusLabel(r.status)}</Pill>
                  <span className="spacer" />
                  <span className="faint" style={{ fontSize: 12.5 }} title={formatTime(r.started_at)}>
                    {triggerLabel(r.trigger)} · {formatAge(ageSeconds(r.started_at))} ago
                    {r.finished_at && (r.status === "done" || r.status === "failed") ? ` · took ${formatAge(Math.max(0, (Date.parse(r.finished_at) - Date.parse(r.started_at)) / 1000))}` : ""}
                  </span>
                </div>
                {isRunning(r) ? <RunProgress run={r} /> : <span>{r.message}</span>}
                {!isRunning(r) ? <RunCounts run={r} /> : null}
                {r.error ? <span style={{ color: "var(--danger)", fontSize: 12.5 }}>{r.error}</span> : null}
                {r.decided_by ? <span className="faint" style={{ fontSize: 12.5 }}>Decided by {r.decided_by}.</span> : null}
              </li>
            ))}
          </ol>
        </section>
      )}
    </Drawer>
  );
}

/**
 * Runs that found more of the linked records gone than one run may delete: nothing was deleted,
 * and an admin deletes them or keeps them. Found through the open `reconcile_guard` exceptions
 * (however old) and the newest runs.
 */
export function ReconcileGuardBanner({ names, objects, highlight }: { names: Map<string, string>; objects: ObjectSchema[]; highlight: number | null }) {
  const me = useMe();
  const mayDecide = can(me.role, "decide_reconcile");
  const guards = useQuery({
    queryKey: ["reconcile-guards"],
    queryFn: async () => {
      const [open, recent] = await Promise.all([api.get("/api/exceptions", { kind: "reconcile_guard", status: "open", limit: 100 }), api.get("/api/reconciliations", { limit: 50 })]);
      const known = new Set(recent.map((r) => r.id));
      const older = await Promise.all(guardRunIds(open).filter((id) => !known.has(id)).map((id) => api.get("/api/reconciliations/{id}", { id }).catch(() => null)));
      return awaitingDecision(recent, older.filter((r): r is ReconcileRun => !!r));
    },
    refetchInterval: 30_000,
  });
  const [confirming, setConfirming] = useState<ReconcileRun | null>(null);
  const [keeping, setKeeping] = useState<ReconcileRun | null>(null);
  const refs = useRef(new Map<number, HTMLElement>());
  useEffect(() => {
    if (highlight !== null) refs.current.get(highlight)?.scrollIntoView({ block: "nearest" });
  }, [highlight, guards.data]);
  const waiting = guards.data ?? [];
  if (guards.error && waiting.length === 0) {
    return (
      <div className="banner warning" role="status">
        <AlertTriangle size={16} />
        <div className="b-body">
          Could not check for reconciliations waiting for an admin: {errorMessage(guards.error)}{" "}
          <button type="button" className="btn sm ghost" onClick={() => void guards.refetch()}>
            Try again
          </button>
        </div>
      </div>
    );
  }
  if (waiting.length === 0) return null;
  return (
    <section aria-label="Reconciliations waiting for an admin" className="col" style={{ gap: 10 }}>
      {waiting.map((r) => {
        const name = names.get(r.system) ?? r.system;
        return (
          <div
            key={r.id}
            ref={(el) => {
              if (el) refs.current.set(r.id, el);
              else refs.current.delete(r.id);
            }}
            className={`banner warning ${highlight === r.id ? "highlight" : ""}`}
            role="alert"
          >
            <ShieldAlert size={18} />
            <div className="b-body col" style={{ gap: 6 }}>
              <strong>
                Reconciliation #{r.id} of {name} ({r.object}) found too many records gone: nothing was deleted
              </strong>
              <span>{r.message}</span>
              <span className="row wrap" style={{ gap: 6 }}>
                <Pill tone="warning">
                  {r.vanished.toLocaleString(LOCALE)} of {r.linked.toLocaleString(LOCALE)} linked gone
                </Pill>
                <Pill tone="warning">
                  {formatPercent(vanishedShare(r))}, over the {formatPercent(r.max_delete_share)} one run may delete
                </Pill>
                <span className="faint" style={{ fontSize: 12.5 }}>
                  {triggerLabel(r.trigger)}, {formatAge(ageSeconds(r.started_at))} ago
                </span>
              </span>
              <span className="muted">Check that {name} did not lose access to records or filter its listing before deleting anything.</span>
              <div className="row wrap">
                <button type="button" className="btn sm danger" disabled={!mayDecide} title={mayDecide ? undefined : whyNot(me.role, "decide_reconcile")} onClick={() => setConfirming(r)}>
                  <Trash2 size={14} /> Delete them…
                </button>
                <button type="button" className="btn sm" disabled={!mayDecide} title={mayDecide ? undefined : whyNot(me.role, "decide_reconcile")} onClick={() => setKeeping(r)}>
                  <Undo2 size={14} /> Keep them…
                </button>
                {!mayDecide ? <span className="faint" style={{ fontSize: 12.5 }}>{whyNot(me.role, "decide_reconcile")}</span> : null}
              </div>
            </div>
          </div>
        );
      })}
      <ConfirmDeletesDialog run={confirming} name={confirming ? names.get(confirming.system) ?? confirming.system : ""} object={objects.find((o) => o.name === confirming?.object)} onClose={() => setConfirming(null)} />
      <KeepDialog run={keeping} name={keeping ? names.get(keeping.system) ?? keeping.system : ""} onClose={() => setKeeping(null)} />
    </section>
  );
}

function useAfterDecision() {
  const qc = useQueryClient();
  return () => {
    void qc.invalidateQueries({ queryKey: ["reconcile-guards"] });
    void qc.invalidateQueries({ queryKey: ["reconciliations"] });
    void qc.invalidateQueries({ queryKey: ["reconciliation"] });
    void qc.invalidateQueries({ queryKey: ["metrics"] });
  };
}

function ConfirmDeletesDialog({ run, name, object, onClose }: { run: ReconcileRun | null; name: string; object: ObjectSchema | undefined; onClose: () => void }) {
  const [busy, setBusy] = useState(false);
  const after = useAfterDecision();
  const n = run?.vanished ?? 0;
  const submit = async () => {
    if (!run) return;
    setBusy(true);
    try {
      const r = await api.post("/api/reconciliations/{id}/confirm", { id: run.id });
      toast.success(`${r.deleted.toLocaleString(LOCALE)} delete ${r.deleted === 1 ? "event" : "events"} queued`, { description: r.message });
      onClose();
      after();
    } catch (e) {
      toast.error("Could not confirm the deletes", { description: errorMessage(e) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog
      open={run !== null}
      onClose={onClose}
      title={`Delete ${n.toLocaleString(LOCALE)} ${run?.object ?? ""} ${n === 1 ? "record" : "records"} gone from ${name}?`}
      footer={
        <>
          <span className="spacer" />
          <button type="button" className="btn" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="button" className="btn danger" onClick={() => void submit()} disabled={busy}>
            {busy ? <Spinner /> : <Trash2 size={16} />} Delete {n.toLocaleString(LOCALE)} {n === 1 ? "record" : "records"}
          </button>
        </>
      }
    >
      <p>
        {name} no longer lists <strong>{n.toLocaleString(LOCALE)}</strong> of the {run?.linked.toLocaleString(LOCALE)} {run?.object} records linked to it ({run ? formatPercent(vanishedShare(run)) : ""}). Each is read by id once more, and a delete is queued for each one still gone.
      </p>
      <p>
        Under the {run?.object} delete policy, {describeDeletePolicy(object?.delete_policy)}.
      </p>
      <p className="muted" style={{ margin: 0 }}>
        <AlertTriangle size={13} aria-hidden="true" /> If {name} lost access to part of its records, or a filter hides them, keep them instead and fix the system.
      </p>
    </Dialog>
  );
}

function KeepDialog({ run, name, onClose }: { run: ReconcileRun | null; name: string; onClose: () => void }) {
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const after = useAfterDecision();
  const submit = async () => {
    if (!run) return;
    setBusy(true);
    try {
      await api.post("/api/reconciliations/{id}/dismiss", { id: run.id }, { note });
      toast.success(`Run #${run.id}: the records are kept`, { description: "Nothing is deleted; the note is kept in the audit." });
      setNote("");
      onClose();
      after();
    } catch (e) {
      toast.error("Could not dismiss the deletes", { description: errorMessage(e) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog
      open={run !== null}
      onClose={onClose}
      title={`Keep the ${run?.vanished.toLocaleString(LOCALE) ?? ""} records gone from ${name}?`}
      footer={
        <>
          <span className="spacer" />
          <button type="button" className="btn" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="button" className="btn primary" onClick={() => void submit()} disabled={busy || note.trim() === ""}>
            {busy ? <Spinner /> : <Undo2 size={16} />} Keep them
          </button>
        </>
      }
    >
      <p>Nothing is deleted and the run is closed. The next reconciliation compares again, and asks again if the records are still gone.</p>
      <Field label="Note (required)" hint="Why the records stay, kept in the audit.">
        {(id) => <textarea id={id} className="textarea" data-autofocus value={note} onChange={(e) => setNote(e.target.value)} placeholder="e.g. the HRIS API token lost access to contractors; fixed" />}
      </Field>
    </Dialog>
  );
}

/** A button that starts a reconciliation now, for the system's card. */
export function ReconcileNowButton({ onStart, running, disabled, title }: { onStart: () => void; running: boolean; disabled: boolean; title?: string }) {
  return (
    <button type="button" className="btn sm" disabled={disabled || running} onClick={onStart} title={title}>
      {running ? <Spinner /> : <RefreshCw size={14} />} Reconcile now
    </button>
  );
}
