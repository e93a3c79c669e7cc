// Saving ownership asks first, with the diff: the rules that change, field by field, and what
// the new rules would decide now of the conflicts and quarantined changes the old ones hold for
// a person (the engine's what-if, which writes nothing): how many records each system would be
// written, with samples. The admin saves with or without deciding those items.

import { useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { ArrowRight, Save } from "lucide-react";
import { api } from "../api/client";
import type { FieldPolicy } from "../api/types";
import { describePolicy } from "../lib/policy";
import { Dialog, ErrorState, Loading, Spinner, Value } from "./ui";

export function OwnershipSaveDialog({ object, fields, busy, onSave, onClose }: { object: string; fields: FieldPolicy[]; busy: boolean; onSave: (redecide: boolean) => void; onClose: () => void }) {
  const [redecide, setRedecide] = useState(true);
  const whatIf = useQuery({
    queryKey: ["policy-what-if", object, fields],
    queryFn: () => api.post("/api/policies/{object}/what-if", { object }, fields),
    staleTime: Infinity,
    refetchOnWindowFocus: false,
  });
  const w = whatIf.data;
  const decided = w?.decided.length ?? 0;
  return (
    <Dialog
      open
      wide
      onClose={onClose}
      title={`Save the ownership of ${object}?`}
      footer={
        <>
          <span className="spacer" />
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="button" className="btn primary" disabled={busy || !w} onClick={() => onSave(redecide && decided > 0)}>
            {busy ? <Spinner /> : <Save size={16} />} {redecide && decided > 0 ? `Save and decide ${decided}` : "Save"}
          </button>
        </>
      }
    >
      {whatIf.isPending ? (
        <Loading label="Working out what would change…" />
      ) : whatIf.isError ? (
        <ErrorState error={whatIf.error} retry={() => void whatIf.refetch()} title="Could not work out what would change" />
      ) : w ? (
        <>
          <h3 className="dialog-h">Rules that change ({w.changes.length})</h3>
          <table className="simple-table" aria-label="Rules that change">
            <thead>
              <tr>
                <th scope="col">Field</th>
                <th scope="col">Now</th>
                <th scope="col" aria-label="becomes" />
                <th scope="col">After saving</th>
              </tr>
            </thead>
            <tbody>
              {w.changes.map((c) => (
                <tr key={c.field}>
                  <td className="mono">{c.field}</td>
                  <td>{describePolicy(c.before)}</td>
                  <td aria-hidden="true">
                    <ArrowRight size={14} className="faint" />
                  </td>
                  <td>{describePolicy(c.after)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h3 className="dialog-h">Held items the new rules decide ({decided})</h3>
          {decided === 0 ? (
            <p className="faint">None: the new rules apply to the next changes. {w.still_held ? `${w.still_held} held item${w.still_held === 1 ? "" : "s"} on these fields still wait for a steward.` : ""}</p>
          ) : (
            <>
              <table className="simple-table" aria-label="Values the new rules would write">
                <thead>
                  <tr>
                    <th scope="col">System</th>
                    <th scope="col">Field</th>
                    <th scope="col">Records</th>
                    <th scope="col">For example</th>
                  </tr>
                </thead>
                <tbody>
                  {w.writes.map((x) => (
                    <tr key={`${x.system}-${x.field}`}>
                      <td className="mono">{x.system}</td>
                      <td className="mono">{x.field}</td>
                      <td>{x.count}</td>
                      <td>
                        {x.samples.map((s, i) => (
                          <div key={i}>
                            <span className="faint">{s.record_id != null ? `record ${s.record_id}: ` : ""}</span>
                            <Value v={s.from} /> <ArrowRight size={12} className="faint" aria-label="becomes" /> <Value v={s.to} />
                          </div>
                        ))}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              {w.still_held ? <p className="faint">{`${w.still_held} other held item${w.still_held === 1 ? "" : "s"} still wait for a steward (four eyes, manual, or last write wins without timestamps).`}</p> : null}
              <label className="check">
                <input type="checkbox" checked={redecide} onChange={(e) => setRedecide(e.target.checked)} /> Decide these {decided} now, as resolutions in your name (audited)
              </label>
            </>
          )}
        </>
      ) : null}
    </Dialog>
  );
}
