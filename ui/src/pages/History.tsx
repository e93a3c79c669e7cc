// Configuration history: every change to a system, a mapping or an object's ownership, newest
// first, with what it changed value by value. An admin restores a version (its config after
// the change) or undoes a change (the config before it); either is a new, audited change.

import { useState } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { toast } from "sonner";
import { History, RotateCcw, Undo2 } from "lucide-react";
import { api, errorMessage } from "../api/client";
import { useMe } from "../api/queries";
import type { ConfigVersion } from "../api/types";
import { KIND_LABEL, describeVersion } from "../lib/history";
import { formatTime } from "../lib/format";
import { can, whyNot } from "../lib/roles";
import { Dialog, EmptyState, ErrorState, Field, Loading, PageHeader, Pill, Spinner, Value } from "../components/ui";

const KINDS = ["", "system", "mapping", "policies"] as const;

export function HistoryPage() {
  const me = useMe();
  const qc = useQueryClient();
  const [kind, setKind] = useState<(typeof KINDS)[number]>("");
  const [target, setTarget] = useState("");
  const [picked, setPicked] = useState<number | null>(null);
  const [restoring, setRestoring] = useState<{ v: ConfigVersion; undo: boolean } | null>(null);
  const [busy, setBusy] = useState(false);
  const history = useQuery({
    queryKey: ["config-history", kind, target],
    queryFn: ({ signal }) => api.get("/api/config/history", { kind: kind || undefined, target: target.trim() || undefined, limit: 200 }, signal),
    refetchInterval: 15_000,
  });
  const mayRestore = can(me.role, "restore_config");
  const versions = history.data ?? [];
  const selected = versions.find((v) => v.id === picked) ?? versions[0];
  const restore = async (v: ConfigVersion, undo: boolean) => {
    setBusy(true);
    try {
      await api.post("/api/config/history/{id}/restore", { id: v.id, undo });
      toast.success(undo ? `Change ${v.id} undone` : `Version ${v.id} restored`, { description: `${KIND_LABEL[v.kind]} ${v.target} is saved as it was ${undo ? "before" : "after"} that change.` });
      setRestoring(null);
      setPicked(null);
      void qc.invalidateQueries({ queryKey: ["workspace"] });
      void history.refetch();
    } catch (e) {
      toast.error("Nothing was restored", { description: errorMessage(e) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="page">
      <PageHeader title="Configuration history" description="Every change to systems, mappings and ownership, with what it changed. The entries are part of the audit's hash chain. An admin can restore any version, or undo a change." />
      <div className="toolbar" role="search" aria-label="Filter the history">
        <Field label="Kind">
          {(id) => (
            <select id={id} className="select" value={kind} onChange={(e) => setKind(e.target.value as (typeof KINDS)[number])}>
              {KINDS.map((k) => (
                <option key={k || "all"} value={k}>
                  {k ? KIND_LABEL[k] : "All"}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Target">{(id) => <input id={id} className="input" placeholder="payroll, hris/employee, employee" value={target} onChange={(e) => setTarget(e.target.value)} />}</Field>
      </div>
      {history.isPending ? (
        <Loading />
      ) : history.isError ? (
        <ErrorState error={history.error} retry={() => void history.refetch()} />
      ) : versions.length === 0 ? (
        <EmptyState icon={<History size={22} />} title="No configuration changes yet">
          Saving a system, a mapping or ownership from the console records a version here.
        </EmptyState>
      ) : (
        <div className="history-split">
          <section className="card" aria-label="Versions">
            <table className="simple-table">
              <thead>
                <tr>
                  <th>When</th>
                  <th>What</th>
                  <th>Who</th>
                  <th>Change</th>
                </tr>
              </thead>
              <tbody>
                {versions.map((v) => (
                  <tr key={v.id} aria-selected={selected?.id === v.id} className={selected?.id === v.id ? "selected" : undefined}>
                    <td>
                      <button type="button" className="link-button" onClick={() => setPicked(v.id)}>
                        {formatTime(v.at)}
                      </button>
                    </td>
                    <td>
                      <Pill tone="info">{KIND_LABEL[v.kind]}</Pill> <span className="mono">{v.target}</span>
                    </td>
                    <td>{v.actor}</td>
                    <td>{describeVersion(v)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </section>
          {selected ? (
            <section className="card" aria-labelledby="version-h" style={{ padding: 12 }}>
              <div className="row">
                <h2 id="version-h" style={{ margin: 0 }}>
                  Version {selected.id}: {KIND_LABEL[selected.kind]} <span className="mono">{selected.target}</span>
                </h2>
                <span className="spacer" />
                <button type="button" className="btn" disabled={!mayRestore || selected.after == null} title={mayRestore ? "Save this target as it was after this change" : whyNot(me.role, "restore_config")} onClick={() => setRestoring({ v: selected, undo: false })}>
                  <RotateCcw size={16} /> Restore this version
                </button>
                <button type="button" className="btn" disabled={!mayRestore || selected.before == null} title={mayRestore ? "Save this target as it was before this change" : whyNot(me.role, "restore_config")} onClick={() => setRestoring({ v: selected, undo: true })}>
                  <Undo2 size={16} /> Undo this change
                </button>
              </div>
              <p className="muted">
                {describeVersion(selected)} by {selected.actor}, {formatTime(selected.at)} ({selected.rule}).
              </p>
              {selected.changes.length === 0 ? (
                <p className="faint">Nothing differs from the version before.</p>
              ) : (
                <table className="simple-table" aria-label={`What version ${selected.id} changed`}>
                  <thead>
                    <tr>
                      <th>Path</th>
                      <th>Before</th>
                      <th>After</th>
                    </tr>
                  </thead>
                  <tbody>
                    {selected.changes.map((c) => (
                      <tr key={c.path}>
                        <td className="mono">{c.path || "(all of it)"}</td>
                        <td>
                          <Value v={c.before} />
                        </td>
                        <td>
                          <Value v={c.after} />
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </section>
          ) : null}
        </div>
      )}
      <Dialog
        open={restoring !== null}
        onClose={() => setRestoring(null)}
        title={restoring?.undo ? `Undo change ${restoring.v.id}?` : `Restore version ${restoring?.v.id}?`}
        footer={
          <>
            <button type="button" className="btn" onClick={() => setRestoring(null)}>
              Cancel
            </button>
            <button type="button" className="btn primary" disabled={busy} onClick={() => restoring && void restore(restoring.v, restoring.undo)}>
              {busy ? <Spinner /> : null} {restoring?.undo ? "Undo it" : "Restore it"}
            </button>
          </>
        }
      >
        {restoring ? (
          <p>
            {KIND_LABEL[restoring.v.kind]} <span className="mono">{restoring.v.target}</span> is saved as it was {restoring.undo ? "before" : "after"} change {restoring.v.id}. The sync uses it at once, and the restore is recorded in the audit as a new version.
          </p>
        ) : null}
      </Dialog>
    </div>
  );
}
