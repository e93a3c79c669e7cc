// Effective-dated changes: values a system dated in the future (a pay rise effective on the
// 1st) that Concord holds until that date, then applies as that system's change, judged
// against the records as they are then. Released and superseded changes stay listed with
// what became of them.

import { useState } from "react";
import { Link } from "react-router";
import { ArrowRight, CalendarClock } from "lucide-react";
import { useScheduled } from "../api/queries";
import type { ScheduledStatus } from "../api/types";
import { STATUS_LABEL, fieldChanges, outcome, relativeDay } from "../lib/scheduled";
import { formatTime } from "../lib/format";
import { EmptyState, ErrorState, Field, Loading, PageHeader, Pill, Value } from "../components/ui";

const STATUSES: ScheduledStatus[] = ["scheduled", "released", "superseded", "all"];

export function ScheduledPage() {
  const [status, setStatus] = useState<ScheduledStatus>("scheduled");
  const list = useScheduled(status);
  const items = list.data?.items ?? [];
  return (
    <div className="page">
      <PageHeader
        title="Scheduled changes"
        description="Values a system dated in the future wait here until their date. On the date each is applied as that system's change, and a conflict with a change made meanwhile is judged then, by the field's policy."
      />
      <div className="toolbar" role="search" aria-label="Filter scheduled changes">
        <Field label="Show">
          {(id) => (
            <select id={id} className="select" value={status} onChange={(e) => setStatus(e.target.value as ScheduledStatus)}>
              {STATUSES.map((s) => (
                <option key={s} value={s}>
                  {STATUS_LABEL[s]}
                  {list.data && s !== "all" ? ` (${list.data[s]})` : ""}
                </option>
              ))}
            </select>
          )}
        </Field>
      </div>
      {list.isPending ? (
        <Loading />
      ) : list.isError ? (
        <ErrorState error={list.error} retry={() => void list.refetch()} />
      ) : items.length === 0 ? (
        <EmptyState icon={<CalendarClock size={22} />} title={status === "scheduled" ? "Nothing waits for a date" : "No changes here"}>
          A mapping that names its system's effective-date field holds changes dated in the future here until their date.
        </EmptyState>
      ) : (
        <div className="table-scroll" tabIndex={0} aria-label="Scheduled changes">
          <table className="simple-table">
            <caption className="sr-only">Scheduled changes</caption>
            <thead>
              <tr>
                <th scope="col">Effective</th>
                <th scope="col">Record</th>
                <th scope="col">From</th>
                <th scope="col">Field</th>
                <th scope="col">Now</th>
                <th scope="col" aria-label="becomes" />
                <th scope="col">On the date</th>
                <th scope="col">Status</th>
              </tr>
            </thead>
            <tbody>
              {items.flatMap((c) => {
                const rows = fieldChanges(c);
                const o = outcome(c);
                return rows.map((r, i) => (
                  <tr key={`${c.id}-${r.field}`} data-scheduled={c.id}>
                    {i === 0 ? (
                      <>
                        <td rowSpan={rows.length}>
                          <div>{c.effective_date}</div>
                          <div className="faint">{c.status === "scheduled" ? relativeDay(c.effective_at) : formatTime(c.released_at ?? c.effective_at)}</div>
                        </td>
                        <td rowSpan={rows.length}>
                          {c.record_id != null ? <Link to={`/records/${c.record_id}`}>{`${c.object} ${c.record_id}`}</Link> : <span title="Not linked yet: the record joins on its date">{`${c.object} (new)`}</span>}
                        </td>
                        <td rowSpan={rows.length}>
                          <span className="mono">{c.system}</span> <span className="faint">{c.external_id}</span>
                        </td>
                      </>
                    ) : null}
                    <td className="mono">{r.field}</td>
                    <td>{c.record_id == null ? <span className="faint">—</span> : <Value v={r.now} currency={c.currency} />}</td>
                    <td aria-hidden="true">
                      <ArrowRight size={14} className="faint" />
                    </td>
                    <td>
                      <Value v={r.then} currency={c.currency} />
                    </td>
                    {i === 0 ? (
                      <td rowSpan={rows.length}>
                        <Pill tone={o.tone}>{STATUS_LABEL[c.status as ScheduledStatus] ?? c.status}</Pill>
                        <div className="faint bulk-reason">{o.text}</div>
                      </td>
                    ) : null}
                  </tr>
                ));
              })}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
