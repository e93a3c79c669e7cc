// Systems: the connected applications, each with its connector, secrets, objects and health,
// and what support and admins do to repair one: test the connection, reconcile it now (with
// progress), read its reconciliations, decide a reconciliation that found too many records gone,
// and push records to it again. Each system's form is pages/SystemEdit.tsx.

import { STATE_TONE, describeHealth } from "../lib/health";
import { useState } from "react";
import { Link } from "react-router";
import { toast } from "sonner";
import { useQueryClient } from "@tanstack/react-query";
import { Cable, CheckCircle2, History, KeyRound, Pencil, Plug, Plus, Send, Trash2, Workflow, XCircle } from "lucide-react";
import { api, errorMessage } from "../api/client";
import { useMe, useMetrics, useWorkspace } from "../api/queries";
import type { ConnectionTest, SystemConfig, SystemHealth } from "../api/types";
import { can, whyNot } from "../lib/roles";
import { describeSchedule } from "../lib/restconfig";
import { systemSummary } from "../lib/connectors";
import { useUrlFilters } from "../lib/urlstate";
import { Dialog, EmptyState, ErrorState, Loading, PageHeader, Pill, Spinner } from "../components/ui";
import { useRemovalConfirmation } from "../components/ConfirmRemoval";
import { SecretStatusPill } from "../components/SecretField";
import { ReconcileGuardBanner, ReconcileNowButton, ReconciliationsDrawer, SystemRuns, useReconcileNow } from "../components/Reconcile";
import { RepushDialog } from "../components/RepushDialog";
import { formatCount } from "../lib/format";

function useTestConnection() {
  const [results, setResults] = useState<Record<string, ConnectionTest | { error: string } | "running">>({});
  const run = async (id: string) => {
    setResults((r) => ({ ...r, [id]: "running" }));
    try {
      const t = await api.post("/api/systems/{id}/test", { id });
      setResults((r) => ({ ...r, [id]: t }));
      if (t.ok) toast.success(`${id}: connected`, { description: t.message });
      else toast.error(`${id}: connection failed`, { description: t.message });
    } catch (e) {
      setResults((r) => ({ ...r, [id]: { error: errorMessage(e) } }));
      toast.error(`${id}: could not test`, { description: errorMessage(e) });
    }
  };
  return { results, run };
}

function TestResult({ r }: { r: ConnectionTest | { error: string } | "running" | undefined }) {
  if (!r) return null;
  if (r === "running") return <span className="row muted"><Spinner /> Testing…</span>;
  if ("error" in r) return <span className="row" style={{ color: "var(--danger)" }}><XCircle size={15} /> {r.error}</span>;
  const found = Object.keys(r.fields ?? {}).length;
  return (
    <span className="row" style={{ color: r.ok ? "var(--success)" : "var(--danger)", alignItems: "flex-start" }} role="status">
      {r.ok ? <CheckCircle2 size={15} style={{ flex: "none", marginTop: 2 }} /> : <XCircle size={15} style={{ flex: "none", marginTop: 2 }} />}
      <span>
        {r.message}
        {r.ok ? (
          <span className="muted">
            {" "}
            ({formatCount(found)} {found === 1 ? "field" : "fields"} found)
          </span>
        ) : null}
      </span>
    </span>
  );
}

export function SystemsPage() {
  const me = useMe();
  const ws = useWorkspace();
  const metrics = useMetrics();
  const test = useTestConnection();
  const [f, setF] = useUrlFilters(["runs", "run"] as const);
  const [repush, setRepush] = useState<SystemConfig | null>(null);
  const [removing, setRemoving] = useState<SystemConfig | null>(null);
  const [busy, setBusy] = useState(false);
  const qc = useQueryClient();
  const confirmation = useRemovalConfirmation("Could not remove the system");
  const mayEdit = can(me.role, "edit_systems");
  const remove = async (s: SystemConfig) => {
    setBusy(true);
    try {
      // A system with linked records is refused until confirmed: the dialog then says how many.
      await confirmation.attempt(async (confirm) => {
        await api.delete("/api/systems/{id}", { id: s.id, confirm: confirm || undefined });
        toast.success(`${s.name} removed`, { description: "Its mappings went with it; its history stays in the audit." });
        await qc.invalidateQueries({ queryKey: ["workspace"] });
      });
      setRemoving(null);
    } catch (e) {
      toast.error("Could not remove the system", { description: errorMessage(e) });
    } finally {
      setBusy(false);
    }
  };
  const health = new Map((metrics.data?.per_system ?? []).map((h) => [h.system, h]));
  const names = new Map((ws.data?.systems ?? []).map((s) => [s.id, s.name]));
  const highlight = /^\d+$/.test(f.run) ? Number(f.run) : null;
  return (
    <div className="page">
      <PageHeader
        title="Systems"
        description="The applications Concord keeps in agreement. Each is reached by a connector with a declarative config; its secrets stay in the OS keychain. Reconcile one to compare everything it holds with what Concord knows, or push records to it again."
        actions={
          mayEdit ? (
            <Link to="/systems/new" className="btn primary">
              <Plus size={16} /> Add system
            </Link>
          ) : (
            <button type="button" className="btn primary" disabled title={whyNot(me.role, "edit_systems")}>
              <Plus size={16} /> Add system
            </button>
          )
        }
      />
      <ReconcileGuardBanner names={names} objects={ws.data?.objects ?? []} highlight={highlight} />
      {ws.isPending ? <Loading /> : ws.error ? <div className="card"><ErrorState error={ws.error} retry={() => void ws.refetch()} /></div> : ws.data.systems.length === 0 ? (
        <div className="card">
          <EmptyState icon={<Cable size={22} />} title="No systems yet">
            {mayEdit ? <Link to="/systems/new">Add your HRIS or payroll system</Link> : "An admin connects systems."}
          </EmptyState>
        </div>
      ) : (
        <div className="grid-cards">
          {ws.data.systems.map((s) => (
            <SystemCard
              key={s.id}
              s={s}
              mapped={ws.data.mappings.filter((m) => m.system === s.id).map((m) => m.object)}
              health={health.get(s.id)}
              test={test}
              onRuns={() => setF({ runs: s.id })}
              onRepush={() => setRepush(s)}
              onRemove={() => setRemoving(s)}
            />
          ))}
        </div>
      )}
      {f.runs ? <ReconciliationsDrawer systemId={f.runs} systemName={names.get(f.runs) ?? f.runs} onClose={() => setF({ runs: "" })} /> : null}
      <RepushDialog system={repush} ws={ws.data} onClose={() => setRepush(null)} />
      <Dialog
        open={removing !== null}
        onClose={() => setRemoving(null)}
        title={`Remove ${removing?.name ?? "the system"}?`}
        footer={
          <>
            <span className="spacer" />
            <button type="button" className="btn" onClick={() => setRemoving(null)} data-autofocus>
              Cancel
            </button>
            <button type="button" className="btn danger" disabled={busy} onClick={() => removing && void remove(removing)}>
              {busy ? <Spinner /> : <Trash2 size={16} />} Remove
            </button>
          </>
        }
      >
        <p>
          Concord stops reading from and writing to <strong>{removing?.name}</strong>, and its mappings ({(ws.data?.mappings ?? []).filter((m) => m.system === removing?.id).map((m) => m.object).join(", ") || "none"}) are removed. Its history stays in the audit. Ownership rules that name it must be changed first.
        </p>
      </Dialog>
      {confirmation.dialog}
    </div>
  );
}

function SystemCard({ s, mapped, health: h, test, onRuns, onRepush, onRemove }: { s: SystemConfig; mapped: string[]; health: SystemHealth | undefined; test: ReturnType<typeof useTestConnection>; onRuns: () => void; onRepush: () => void; onRemove: () => void }) {
  const me = useMe();
  const mayEdit = can(me.role, "edit_systems");
  const mayRepair = can(me.role, "repair_systems");
  const reconcile = useReconcileNow(s.id);
  const c = systemSummary(s);
  const noMapping = mapped.length === 0;
  const repairWhy = !mayRepair ? whyNot(me.role, "repair_systems") : noMapping ? "Map an object first: only mapped objects are reconciled or pushed" : undefined;
  return (
    <article className="card" aria-labelledby={`sys-${s.id}`}>
      <div className="card-head">
        <Cable size={18} aria-hidden="true" />
        <h2 id={`sys-${s.id}`}>
          {s.name} <span className="faint mono" style={{ fontWeight: 400 }}>{s.id}</span>
        </h2>
        {h ? (
          <Pill tone={STATE_TONE[h.state ?? "healthy"]} title={describeHealth(h)}>
            {h.state ?? "healthy"}
            {h.dead_letters > 0 ? ` · ${h.dead_letters} dead letters` : ""}
          </Pill>
        ) : null}
        {s.writes === "plan" ? (
          <Link className="btn sm" to={`/systems/${encodeURIComponent(s.id)}/plan`}>
            Review plan
          </Link>
        ) : null}
      </div>
      <div className="card-body col">
        <dl className="kv">
          <dt>Connector</dt>
          <dd>{s.connector}</dd>
          {c ? (
            <>
              <dt>{c.urlLabel}</dt>
              <dd className="mono" style={{ overflowWrap: "anywhere" }}>{c.url}</dd>
              <dt>Auth</dt>
              <dd>{c.auth}</dd>
              {c.secrets.length > 0 ? (
                <>
                  <dt>Secrets</dt>
                  <dd className="col" style={{ gap: 4 }}>
                    {c.secrets.map((r) => (
                      <span key={r.name} className="row wrap" style={{ gap: 6 }} title={r.purposes.join(", ")}>
                        <KeyRound size={12} aria-hidden="true" />
                        <span className="mono" style={{ overflowWrap: "anywhere" }}>{r.name}</span>
                        <span className="sr-only">({r.purposes.join(", ")})</span>
                        <SecretStatusPill name={r.name} enabled={mayEdit} />
                      </span>
                    ))}
                  </dd>
                </>
              ) : null}
              <dt>Objects</dt>
              <dd>{c.objects.join(", ") || "—"}</dd>
              <dt>Changes by</dt>
              <dd>{c.changesBy}</dd>
              {c.capture !== undefined ? (
                <>
                  <dt>Change capture</dt>
                  <dd>{c.capture}</dd>
                </>
              ) : null}
              <dt>Reconciled</dt>
              <dd title={describeSchedule(c.schedule)}>{c.schedule.everySecs !== null ? `every ${c.schedule.everySecs} s${c.schedule.source === "default" ? " (default)" : ""}` : "on demand"}</dd>
            </>
          ) : null}
          <dt>Mapped</dt>
          <dd>{mapped.length ? mapped.join(", ") : <span className="faint">no mapping yet</span>}</dd>
          {h ? (
            <>
              <dt>Writes</dt>
              <dd>
                {formatCount(h.sent)} sent · {formatCount(h.outbox_pending)} queued
              </dd>
            </>
          ) : null}
        </dl>
        <TestResult r={test.results[s.id]} />
        {!noMapping ? (
          <div className="col" style={{ gap: 6 }} aria-label={`Reconciliation of ${s.name}`} role="group">
            <span className="label-sm">Reconciliation</span>
            <SystemRuns systemId={s.id} followed={reconcile.runs} onHide={reconcile.clear} />
          </div>
        ) : null}
        <div className="row wrap">
          <button type="button" className="btn sm" disabled={!mayEdit || test.results[s.id] === "running"} onClick={() => void test.run(s.id)} title={mayEdit ? "List the first page of records with the saved config" : whyNot(me.role, "edit_systems")}>
            <Plug size={14} /> Test connection
          </button>
          <Link className="btn sm" to={`/systems/${encodeURIComponent(s.id)}`}>
            <Pencil size={14} /> {mayEdit ? "Edit" : "View"}
          </Link>
          <Link className="btn sm" to={`/mapper?system=${encodeURIComponent(s.id)}`}>
            <Workflow size={14} /> Fields
          </Link>
          <button type="button" className="btn sm ghost" disabled={!mayEdit} onClick={onRemove} title={mayEdit ? `Remove ${s.name} from the workspace` : whyNot(me.role, "edit_systems")}>
            <Trash2 size={14} /> Remove…
          </button>
        </div>
        <div className="row wrap">
          <ReconcileNowButton onStart={() => void reconcile.start()} running={reconcile.running} disabled={!!repairWhy} title={repairWhy ?? `List every record of ${s.name} and compare it with what Concord knows`} />
          <button type="button" className="btn sm" disabled={!!repairWhy} title={repairWhy ?? `Write records to ${s.name} again from the golden record`} onClick={onRepush}>
            <Send size={14} /> Re-push records…
          </button>
          <button type="button" className="btn sm ghost" onClick={onRuns}>
            <History size={14} /> Reconciliations
          </button>
        </div>
      </div>
    </article>
  );
}
