// What "Check paths against records" found: a summary, and each problem with the connection
// it concerns, so a person can go to it.

import { AlertTriangle, CheckCircle2, ListChecks } from "lucide-react";
import type { MappingCheck, MappingRule } from "../api/types";
import { checkSummary, problemsByRule } from "../lib/mapping";
import { Spinner } from "./ui";

/** What the last check found: a summary, and each problem with the connection it concerns. */
export function CheckResult(props: { check: MappingCheck; stale: boolean; system: string; rules: MappingRule[]; checking: boolean; onRecheck: () => void; onShow: (rule: number) => void; onClose: () => void }) {
  const { check, stale } = props;
  const ok = check.problems.length === 0;
  return (
    <div className={`banner ${ok && check.sample_count > 0 ? "success" : "warning"}`} role="status" aria-label="Path check">
      {ok && check.sample_count > 0 ? <CheckCircle2 size={16} /> : <AlertTriangle size={16} />}
      <div className="b-body col" style={{ gap: 6 }}>
        <strong>
          {checkSummary(check, props.system)}
          {stale ? <span className="faint" style={{ fontWeight: 400 }}> (checked before your latest edits)</span> : null}
        </strong>
        {!ok ? <ProblemList check={check} rules={props.rules} onShow={props.onShow} /> : null}
        <div className="row">
          <button type="button" className="btn sm" onClick={props.onRecheck} disabled={props.checking}>
            {props.checking ? <Spinner /> : <ListChecks size={14} />} Check again
          </button>
          <button type="button" className="btn sm ghost" onClick={props.onClose}>
            Hide
          </button>
        </div>
      </div>
    </div>
  );
}

export function ProblemList({ check, rules, onShow }: { check: MappingCheck; rules: MappingRule[]; onShow: (rule: number) => void }) {
  return (
    <ul className="problem-list">
      {[...problemsByRule(check.problems)].map(([rule, problems]) => (
        <li key={rule}>
          <button type="button" className="btn sm ghost" onClick={() => onShow(rule)} title="Show this connection">
            Connection {rule + 1}
            {rules[rule]?.canonical?.length ? `: ${rules[rule]!.canonical!.join(", ")}` : ""}
          </button>
          <ul>
            {problems.map((p, j) => (
              <li key={j}>
                <span className="mono">{p.path}</span> <span className="muted">{p.message}</span>
              </li>
            ))}
          </ul>
        </li>
      ))}
    </ul>
  );
}
