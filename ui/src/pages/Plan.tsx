// A system's plan: what Concord would write to a system whose writes are held (a new system
// starts that way). The admin sees the counts and every write with its field diffs, can
// download them as CSV, and enables writes for exactly the plan they saw: if more writes
// were planned meanwhile, the engine refuses and the page shows the new plan.

import { useState } from "react";
import { Link, useParams } from "react-router";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { toast } from "sonner";
import { Download, Play } from "lucide-react";
import { api, errorMessage, getText } from "../api/client";
import { useMe, useWorkspace } from "../api/queries";
import type { PlanCounts, PlannedWrite } from "../api/types";
import { can, whyNot } from "../lib/roles";
import { Dialog, EmptyState, ErrorState, Loading, PageHeader, Pill, Spinner, Value } from "../components/ui";
import { BreakerPanel } from "../components/BreakerPanel";

const OPS = ["", "create", "update", "delete"] as const;

/** The plan in one sentence. */
export function describePlan(c: PlanCounts): string {
  const n = (k: number, one: string) => `${k.toLocaleString()} ${one}${k === 1 ? "" : "s"}`;
  const writes = `${n(c.creates, "create")}, ${n(c.updates, "update")} and ${n(c.deletes, "delete")}`;
  const conflicts = c.conflicts ?? 0;
  const rejections = c.rejections ?? 0;
  const waiting = conflicts + rejections > 0 ? `; ${n(conflicts, "conflict")} and ${n(rejections, "rejection")} wait for a person` : "";
  return `${writes}${waiting}.`;
}

export function PlanPage() {
  const { id = "" } = useParams();
  const me = useMe();
  const ws = useWorkspace();
  const qc = useQueryClient();
  const [op, setOp] = useState<(typeof OPS)[number]>("");
  const [confirming, setConfirming] = useState(false);
  const [enabling, setEnabling] = useState(false);
  const plan = useQuery({
    queryKey: ["plan", id, op],
    queryFn: ({ signal }) => api.get("/api/systems/{id}/plan", { id, op: op || undefined, limit: 500 }, signal),
    refetchInterval: 5_000,
  });
  const name = ws.data?.systems.find((s) => s.id === id)?.name ?? id;
  const mayEnable = can(me.role, "enable_writes");

  const download = async () => {
    try {
      const csv = await getText("/api/systems/{id}/plan.csv", { id });
      const url = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
      const a = document.createElement("a");
      a.href = url;
      a.download = `plan-${id}.csv`;
      a.click();
      URL.revokeObjectURL(url);
    } catch (e) {
      toast.error("Could not download the plan", { description: errorMessage(e) });
    }
  };

  const enable = async (seen: PlanCounts) => {
    setEnabling(true);
    try {
      const done = await api.post("/api/systems/{id}/enable", { id }, { seen });
      toast.success(`Writes to ${name} enabled`, { description: `Sending ${describePlan(done.counts)}` });
      setConfirming(false);
      void qc.invalidateQueries({ queryKey: ["workspace"] });
    } catch (e) {
      toast.error("Writes were not enabled", { description: errorMessage(e) });
      setConfirming(false);
    } finally {
      setEnabling(false);
      void plan.refetch();
    }
  };

  if (plan.isError) return <ErrorState error={plan.error} retry={() => void plan.refetch()} title="Could not load the plan" />;
  if (!plan.data) return <Loading />;
  const p = plan.data;
  const held = p.writes === "plan";
  return (
    <div className="page">
      <PageHeader
        title={`Plan for ${name}`}
        description={
          held
            ? "Concord reads and links this system but writes nothing to it yet. These are the writes it would send; enabling sends exactly these."
            : p.breaker
              ? "Writes to this system are enabled, and the circuit breaker holds these until an admin decides."
              : "Writes to this system are enabled: these are the writes queued now."
        }
        actions={
          <div className="row">
            <button type="button" className="btn" onClick={() => void download()}>
              <Download size={16} /> Download CSV
            </button>
            {held ? (
              <button type="button" className="btn primary" disabled={!mayEnable} title={mayEnable ? undefined : whyNot(me.role, "enable_writes")} onClick={() => setConfirming(true)}>
                <Play size={16} /> Enable writes
              </button>
            ) : p.breaker ? (
              <Pill tone="danger">writes held by the breaker</Pill>
            ) : (
              <Pill tone="success">writes enabled</Pill>
            )}
          </div>
        }
      />
      {p.breaker ? <BreakerPanel system={id} name={name} trip={p.breaker} counts={p.counts} onDecided={() => void plan.refetch()} /> : null}
      <section className="card" aria-label="Plan summary" style={{ padding: 12 }}>
        <p role="status">{describePlan(p.counts)}</p>
        <div className="row" role="group" aria-label="Show">
          {OPS.map((o) => (
            <button key={o || "all"} type="button" className={`btn sm ${op === o ? "primary" : ""}`} aria-pressed={op === o} onClick={() => setOp(o)}>
              {o ? `${o}s` : "all"}
            </button>
          ))}
        </div>
      </section>
      <section className="card" aria-label="Planned writes">
        {p.items.length === 0 ? (
          <EmptyState title="Nothing planned">No write to this system is waiting.</EmptyState>
        ) : (
          <table className="simple-table">
            <thead>
              <tr>
                <th>Write</th>
                <th>Record</th>
                <th>Field</th>
                <th>Now</th>
                <th>Would become</th>
              </tr>
            </thead>
            <tbody>
              {p.items.flatMap((w: PlannedWrite) =>
                (w.fields.length ? w.fields : [null]).map((f, i) => (
                  <tr key={`${w.id}-${f?.field ?? "none"}`}>
                    <td>{i === 0 ? <Pill tone={w.op === "delete" ? "danger" : w.op === "create" ? "info" : "accent"}>{w.op}</Pill> : null}</td>
                    <td>{i === 0 ? <Link to={`/records/${w.record_id}`}>{w.external_id ?? `#${w.record_id}`}</Link> : null}</td>
                    <td className="mono">{f?.field ?? ""}</td>
                    <td>{f ? <Value v={f.from} /> : null}</td>
                    <td>{f ? <Value v={f.to} /> : null}</td>
                  </tr>
                )),
              )}
            </tbody>
          </table>
        )}
      </section>
      <Dialog
        open={confirming}
        onClose={() => setConfirming(false)}
        title={`Enable writes to ${name}?`}
        footer={
          <>
            <button type="button" className="btn" onClick={() => setConfirming(false)}>
              Cancel
            </button>
            <button type="button" className="btn primary" disabled={enabling} onClick={() => void enable(p.counts)}>
              {enabling ? <Spinner /> : null} Enable and send {p.counts.creates + p.counts.updates + p.counts.deletes} writes
            </button>
          </>
        }
      >
        <p>Concord will send {describePlan(p.counts)} From then on, changes are written to {name} as they happen. This is recorded in the audit.</p>
      </Dialog>
    </div>
  );
}
