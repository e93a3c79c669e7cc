// The values of a bulk set, one row per record: the field's current value, the value chosen,
// the first approval where there is one, and what deciding the row does. Both people who
// approve a four-eyes field see this table before they approve.

import { Link } from "react-router";
import { ArrowRight } from "lucide-react";
import type { BulkItem } from "../api/types";
import { STEP_LABEL, STEP_TONE } from "../lib/approvals";
import { formatTime } from "../lib/format";
import { Pill, Value } from "./ui";

export function BulkItems({ items, caption }: { items: BulkItem[]; caption: string }) {
  return (
    <div className="bulk-items" tabIndex={0} aria-label={caption}>
      <table className="simple-table">
        <caption className="sr-only">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Record</th>
            <th scope="col">Field</th>
            <th scope="col">Now</th>
            <th scope="col" aria-label="becomes" />
            <th scope="col">Chosen</th>
            <th scope="col">First approval</th>
            <th scope="col">What happens</th>
          </tr>
        </thead>
        <tbody>
          {items.map((i) => (
            <tr key={i.exception} data-exception={i.exception}>
              <td>
                {i.record_id != null ? <Link to={`/exceptions/${i.exception}`}>{`${i.object} ${i.record_id}`}</Link> : <span className="faint">{i.object}</span>}
              </td>
              <td className="mono">{i.field ?? "—"}</td>
              <td>
                <Value v={i.current} currency={i.currency} />
              </td>
              <td aria-hidden="true">
                <ArrowRight size={14} className="faint" />
              </td>
              <td>{i.chosen === null || i.chosen === undefined ? <span className="faint">—</span> : <Value v={i.chosen} currency={i.currency} />}</td>
              <td>
                {i.first_approval ? (
                  <span title={i.first_approval.note ?? undefined}>
                    {i.first_approval.by}
                    {i.first_approval.at ? <span className="faint"> · {formatTime(i.first_approval.at)}</span> : null}
                  </span>
                ) : (
                  <span className="faint">—</span>
                )}
              </td>
              <td>
                <Pill tone={STEP_TONE[i.step]}>{STEP_LABEL[i.step]}</Pill>
                {i.reason ? <div className="faint bulk-reason">{i.reason}</div> : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
