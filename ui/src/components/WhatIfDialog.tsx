// What saving a mapping draft would change in its system, before it is saved: per system path,
// how many of the records the system holds would get another value, with samples, and the
// paths the draft would stop writing. Nothing is written to find out.

import { useQuery } from "@tanstack/react-query";
import { ArrowRight } from "lucide-react";
import { api } from "../api/client";
import type { Mapping } from "../api/types";
import { Dialog, ErrorState, Loading, Value } from "./ui";

export function WhatIfDialog({ draft, systemName, onClose }: { draft: Mapping; systemName: string; onClose: () => void }) {
  const result = useQuery({
    queryKey: ["what-if", draft],
    queryFn: () => api.post("/api/mappings/what-if", {}, draft),
    staleTime: Infinity,
    refetchOnWindowFocus: false,
  });
  const r = result.data;
  return (
    <Dialog open wide onClose={onClose} title={`What saving would change in ${systemName}`} footer={<button type="button" className="btn" onClick={onClose}>Close</button>}>
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
