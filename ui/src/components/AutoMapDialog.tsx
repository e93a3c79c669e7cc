// The review step of auto-map: each suggested connection with its sample value, the transform
// the samples suggest, why it was suggested and how sure, ticked when confident. Only the
// ticked ones are connected, in the draft: nothing is saved until the person saves the mapping.

import { useState } from "react";
import { Sparkles } from "lucide-react";
import { CONFIDENT, type Suggestion } from "../lib/automap";
import { transformLabel } from "../lib/mapping";
import { Dialog, EmptyState, Value } from "./ui";

export function AutoMapDialog({ suggestions, systemName, onApply, onClose }: { suggestions: Suggestion[]; systemName: string; onApply: (chosen: Suggestion[]) => void; onClose: () => void }) {
  const [chosen, setChosen] = useState(() => new Set(suggestions.filter((s) => s.score >= CONFIDENT).map((s) => s.field)));
  const toggle = (field: string) =>
    setChosen((c) => {
      const next = new Set(c);
      if (next.has(field)) next.delete(field);
      else next.add(field);
      return next;
    });
  const picked = suggestions.filter((s) => chosen.has(s.field));
  return (
    <Dialog
      open
      wide
      onClose={onClose}
      title={`Auto-map ${systemName}: review the suggestions`}
      footer={
        <>
          <span className="muted">Connections are added to the draft; nothing is saved until you save the mapping.</span>
          <span className="spacer" />
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="button" className="btn primary" disabled={picked.length === 0} onClick={() => onApply(picked)}>
            <Sparkles size={16} /> Connect {picked.length}
          </button>
        </>
      }
    >
      {suggestions.length === 0 ? (
        <EmptyState title="Nothing to suggest">Every canonical field is connected, or no system field matches one by name or by its values.</EmptyState>
      ) : (
        <div className="table-scroll" style={{ maxHeight: "52vh" }}>
          <table className="simple-table" aria-label="Suggested connections">
            <thead>
              <tr>
                <th scope="col">Connect</th>
                <th scope="col">{systemName} field</th>
                <th scope="col">Canonical field</th>
                <th scope="col">Transform</th>
                <th scope="col">Why</th>
                <th scope="col" className="num">
                  Match
                </th>
              </tr>
            </thead>
            <tbody>
              {suggestions.map((s) => (
                <tr key={s.field} data-suggestion={s.field}>
                  <td>
                    <input type="checkbox" checked={chosen.has(s.field)} onChange={() => toggle(s.field)} aria-label={`Connect ${s.path} to ${s.field}`} />
                  </td>
                  <td>
                    <span className="mono">{s.path}</span>
                    <div className="faint">
                      <Value v={s.sample} />
                    </div>
                  </td>
                  <td className="mono">{s.field}</td>
                  <td>
                    {transformLabel(s.transform)}
                    {s.transformWhy ? <div className="faint bulk-reason">{s.transformWhy}</div> : null}
                  </td>
                  <td className="bulk-reason">{s.reasons.join("; ")}</td>
                  <td className="num">{Math.round(s.score * 100)}%</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Dialog>
  );
}
