// What saving a mapping draft would change in its system, before it is saved: the rules it
// adds, removes and changes, then per system path how many of the records the system holds
// would get another value, with samples, and the paths the draft would stop writing. Nothing
// is written to find out. Opened by "Save mapping" it is the confirmation, with the save in it.

import { useQuery } from "@tanstack/react-query";
import { ArrowRight, Save } from "lucide-react";
import { api } from "../api/client";
import type { Mapping } from "../api/types";
import { describeRule, ruleDiff } from "../lib/mapping";
import { Dialog, ErrorState, Loading, Spinner, Value } from "./ui";

export function WhatIfDialog({ draft, saved, systemName, onClose, onSave, saving }: { draft: Mapping; saved?: Mapping | null; systemName: string; onClose: () => void; onSave?: () => void; saving?: boolean }) {
  const diff = ruleDiff(saved, draft);
  const result = useQuery({
    queryKey: ["what-if", draft],
    queryFn: () => api.post("/api/mappings/what-if", {}, draft),
    staleTime: Infinity,
    refetchOnWindowFocus: false,
  });
  const r = result.data;
  return (
    <Dialog
      open
      wide
      onClose={onClose}
      title={onSave ? `Save the mapping of ${systemName}?` : `What saving would change in ${systemName}`}
      footer={
        onSave ? (
          <>
            <span className="spacer" />
            <button type="button" className="btn" onClick={onClose}>
              Cancel
            </button>
            <button type="button" className="btn primary" disabled={saving || !r} onClick={onSave}>
              {saving ? <Spinner /> : <Save size={16} />} Save mapping
            </button>
          </>
        ) : (
          <button type="button" className="btn" onClick={onClose}>
            Close
          </button>
        )
      }
    >
      <section aria-label="Rules that change">
        <h3 className="dialog-h">Rules that change</h3>
        {diff.added.length + diff.removed.length + diff.changed.length === 0 ? <p className="faint">None.</p> : null}
        <ul className="rule-diff">
          {diff.added.map((r) => (
            <li key={`a-${describeRule(r)}`}>
              <span className="diff-add">added</span> <span className="mono">{describeRule(r)}</span>
            </li>
          ))}
          {diff.removed.map((r) => (
            <li key={`r-${describeRule(r)}`}>
              <span className="diff-del">removed</span> <span className="mono">{describeRule(r)}</span>
            </li>
          ))}
          {diff.changed.map(([a, b]) => (
            <li key={`c-${describeRule(a)}`}>
              <span className="diff-chg">changed</span> <span className="mono">{describeRule(a)}</span>: <span className="mono faint">{JSON.stringify(a.transform ?? "copy")}</span> <ArrowRight size={12} className="faint" aria-label="becomes" /> <span className="mono">{JSON.stringify(b.transform ?? "copy")}</span>
              {JSON.stringify(a.null) !== JSON.stringify(b.null) ? <span className="faint"> (nulls: {JSON.stringify(a.null ?? "leave_unchanged")} → {JSON.stringify(b.null ?? "leave_unchanged")})</span> : null}
            </li>
          ))}
        </ul>
        <h3 className="dialog-h">Values that would change</h3>
      </section>
      {result.isError ? (
        <ErrorState error={result.error} retry={() => void result.refetch()} />
      ) : !r ? (
        <Loading label="Rendering every record through the draft…" />
      ) : (
        <div className="col" style={{ gap: 10 }}>
          <p role="status">
            {r.changed_records.toLocaleString()} of the {r.records.toLocaleString()} records {systemName} holds would be written another value
            {r.refused ? `; ${r.refused.toLocaleString()} cannot be rendered by the draft` : ""}. Saving holds {systemName}'s writes in a plan to review first.
          </p>
          {r.changes.length ? (
            <table className="simple-table" aria-label="Paths that would change">
              <thead>
                <tr>
                  <th>Path</th>
                  <th className="num">Records</th>
                  <th>Samples (now → after saving)</th>
                </tr>
              </thead>
              <tbody>
                {r.changes.map((c) => (
                  <tr key={c.path}>
                    <td className="mono">{c.path}</td>
                    <td className="num">{c.records.toLocaleString()}</td>
                    <td>
                      {c.samples.map((s) => (
                        <div key={s.record_id} className="row" style={{ gap: 6 }}>
                          <span className="faint mono">{s.external_id}</span> <Value v={s.from} /> <ArrowRight size={12} className="faint" aria-label="becomes" /> <Value v={s.to} />
                        </div>
                      ))}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <p className="faint">No value would change.</p>
          )}
          {r.unwritten_paths.length ? <p className="muted">No longer written (the system keeps what it holds there): <span className="mono">{r.unwritten_paths.join(", ")}</span></p> : null}
        </div>
      )}
    </Dialog>
  );
}
