// The parts of an exception's panel that stand on their own: a delete under review and its
// decision, an ambiguous match's candidates, a closed exception's outcome, a record that keeps
// changing, a reconciliation's held deletes, and the dialog to dismiss one exception.

import { useState } from "react";
import { Link } from "react-router";
import { useQuery } from "@tanstack/react-query";
import { toast } from "sonner";
import { ArrowRight, UserCheck } from "lucide-react";
import { api, errorMessage } from "../api/client";
import type { DeleteDecision, ExceptionView, WorkspaceConfig } from "../api/types";
import { suggestedDeactivation } from "../lib/policy";
import { LOCALE, formatTime, parseTyped } from "../lib/format";
import { formatPercent } from "../lib/reconcile";
import { detailOf } from "../lib/exceptions";
import { Dialog, Field, Spinner, Value } from "./ui";

type DecisionKind = DeleteDecision["kind"];

function describeDecision(d: DeleteDecision): string {
  if (d.kind === "delete_everywhere") return "deleted in every system";
  if (d.kind === "keep") return "kept in the other systems";
  return `deactivated: ${d.field} set to ${typeof d.value === "string" ? d.value : JSON.stringify(d.value)}`;
}

export function DeleteReview({ e, ws, systemName, mayDecide, whyNot: why, onDone }: { e: ExceptionView; ws: WorkspaceConfig | undefined; systemName: string; mayDecide: boolean; whyNot: string; onDone: () => void }) {
  const suggested = suggestedDeactivation(ws, e.object);
  const fields = ws?.objects.find((o) => o.name === e.object)?.fields ?? [];
  const [kind, setKind] = useState<DecisionKind>(suggested ? "deactivate" : "keep");
  const [field, setField] = useState(suggested?.field ?? fields[0]?.name ?? "");
  const [value, setValue] = useState(suggested?.value ?? "");
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const def = fields.find((f) => f.name === field);
  const options: { kind: DecisionKind; label: string; sub: string }[] = [
    { kind: "deactivate", label: "Deactivate", sub: "keep the record everywhere else, with a status that says it has ended" },
    { kind: "delete_everywhere", label: "Delete everywhere", sub: "delete the record in every other system too" },
    { kind: "keep", label: "Keep", sub: `keep it as it is elsewhere; ${systemName} is no longer linked` },
  ];
  const decision: DeleteDecision | null =
    kind === "deactivate" ? (field && value.trim() !== "" ? { kind, field, value: parseTyped(value, def?.type) } : null) : { kind };
  const decide = async () => {
    if (!decision) return;
    setBusy(true);
    try {
      await api.post("/api/exceptions/{id}/delete-decision", { id: e.id }, { decision, note });
      toast.success(`Exception #${e.id} decided`, { description: `The record is ${describeDecision(decision)}.` });
      onDone();
    } catch (err) {
      toast.error("Could not carry out the decision", { description: errorMessage(err) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="section" aria-labelledby="delete-h">
      <h3 id="delete-h">Delete under review</h3>
      <p className="muted">{systemName} deleted this record. The other systems keep it until a steward decides.</p>
      {mayDecide ? (
        <>
          <div className="col" role="radiogroup" aria-label="What happens to the record">
            {options.map((o) => (
              <label key={o.kind} className="row" style={{ alignItems: "flex-start", gap: 8, cursor: "pointer" }}>
                <input type="radio" name={`delete-${e.id}`} checked={kind === o.kind} onChange={() => setKind(o.kind)} />
                <span>
                  <strong>{o.label}</strong> <span className="faint">{o.sub}</span>
                </span>
              </label>
            ))}
          </div>
          {kind === "deactivate" ? (
            <div className="row" style={{ gap: 12 }}>
              <Field label="Field">
                {(id) => (
                  <select id={id} className="select" value={field} onChange={(ev) => { setField(ev.target.value); setValue(""); }}>
                    {fields.map((f) => (
                      <option key={f.name} value={f.name}>
                        {f.name}
                      </option>
                    ))}
                  </select>
                )}
              </Field>
              <Field label="Value" hint={def?.type === "enum" ? undefined : def?.type}>
                {(id) =>
                  def?.type === "enum" && def.values?.length ? (
                    <select id={id} className="select" value={value} onChange={(ev) => setValue(ev.target.value)}>
                      <option value="">Choose…</option>
                      {def.values.map((v) => (
                        <option key={v} value={v}>
                          {v}
                        </option>
                      ))}
                    </select>
                  ) : (
                    <input id={id} className="input" value={value} onChange={(ev) => setValue(ev.target.value)} />
                  )
                }
              </Field>
            </div>
          ) : null}
          <Field label="Note" hint="Kept in the audit with your decision.">
            {(id) => <textarea id={id} className="textarea" rows={2} value={note} onChange={(ev) => setNote(ev.target.value)} />}
          </Field>
          <div className="row">
            <button type="button" className="btn primary" disabled={busy || !decision} onClick={() => void decide()}>
              {busy ? <Spinner /> : <UserCheck size={16} />} Carry out
            </button>
          </div>
        </>
      ) : e.status === "open" ? (
        <p className="faint">{why}</p>
      ) : null}
    </section>
  );
}

export function ResolutionSummary({ e }: { e: ExceptionView }) {
  const r = e.resolution && typeof e.resolution === "object" ? (e.resolution as { value?: unknown; note?: string; choice?: { choose?: string; value?: unknown }; dismissed?: boolean; link_to?: number | null; decision?: DeleteDecision }) : null;
  return (
    <section className="section">
      <h3>{e.status === "resolved" ? "Resolution" : "Outcome"}</h3>
      <dl className="kv">
        <dt>By</dt>
        <dd>{e.resolved_by ?? "—"}</dd>
        <dt>When</dt>
        <dd>{formatTime(e.updated_at)}</dd>
        {r && "value" in r ? (
          <>
            <dt>Value</dt>
            <dd>
              <Value v={r.value ?? null} currency={e.currency} />
              {r.choice?.choose ? <span className="faint"> ({r.choice.choose}{typeof r.choice.value === "string" && r.choice.choose === "system" ? `: ${r.choice.value}` : ""})</span> : null}
            </dd>
          </>
        ) : null}
        {r?.decision ? (
          <>
            <dt>Decision</dt>
            <dd>The record was {describeDecision(r.decision)}.</dd>
          </>
        ) : null}
        {r && "link_to" in r ? (
          <>
            <dt>Match</dt>
            <dd>{r.link_to == null ? "created a new record" : `linked to record ${r.link_to}`}</dd>
          </>
        ) : null}
        {r?.note ? (
          <>
            <dt>Note</dt>
            <dd>{r.note}</dd>
          </>
        ) : null}
      </dl>
    </section>
  );
}

export function AmbiguousMatch({ e, busy, mayResolve, onLink }: { e: ExceptionView; busy: boolean; mayResolve: boolean; onLink: (r: number | null) => void }) {
  const d = detailOf(e);
  const candidates = d.candidates ?? [];
  return (
    <section className="section">
      <h3>Candidates</h3>
      <p className="muted">
        {e.system} record <span className="mono">{d.external_id ?? "?"}</span> matches {candidates.length} existing records. Link it to one, or create a new record.
      </p>
      <div className="col">
        {candidates.map((c) => (
          <Candidate key={c} id={c} onLink={() => onLink(c)} disabled={!mayResolve || busy} />
        ))}
      </div>
      <div className="row">
        <button type="button" className="btn" disabled={!mayResolve || busy} onClick={() => onLink(null)}>
          Create a new record
        </button>
      </div>
    </section>
  );
}

function Candidate({ id, onLink, disabled }: { id: number; onLink: () => void; disabled: boolean }) {
  const q = useQuery({ queryKey: ["record", id], queryFn: () => api.get("/api/records/{id}", { id }) });
  const g = (q.data?.golden ?? {}) as Record<string, unknown>;
  return (
    <div className="card" style={{ padding: 12 }}>
      <div className="row wrap">
        <strong>
          <Link to={`/records/${id}`}>Record {id}</Link>
        </strong>
        {q.isPending ? <Spinner /> : q.error ? <span className="faint">{errorMessage(q.error)}</span> : (
          <span className="muted">
            {[g.given_name, g.family_name].filter((x) => typeof x === "string").join(" ")} {typeof g.employee_number === "string" ? `· ${g.employee_number}` : ""} {typeof g.work_email === "string" ? `· ${g.work_email}` : ""}
          </span>
        )}
        <span className="spacer" />
        <button type="button" className="btn sm primary" disabled={disabled} onClick={onLink}>
          Link to this record
        </button>
      </div>
    </div>
  );
}

export function DismissDialog({ open, onClose, id, onDone }: { open: boolean; onClose: () => void; id: number; onDone: () => void }) {
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    setBusy(true);
    try {
      await api.post("/api/exceptions/{id}/dismiss", { id }, { note });
      toast.success(`Exception #${id} dismissed`);
      setNote("");
      onClose();
      onDone();
    } catch (err) {
      toast.error("Could not dismiss", { description: errorMessage(err) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog
      open={open}
      onClose={onClose}
      title={`Dismiss exception #${id}`}
      footer={
        <>
          <span className="spacer" />
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="button" className="btn danger" disabled={busy || note.trim() === ""} onClick={() => void submit()}>
            {busy ? <Spinner /> : null} Dismiss
          </button>
        </>
      }
    >
      <p className="muted">Dismissing closes the exception and changes no value. The note is kept in the audit.</p>
      <Field label="Note (required)">
        {(fid) => <textarea id={fid} className="textarea" data-autofocus value={note} onChange={(e) => setNote(e.target.value)} />}
      </Field>
    </Dialog>
  );
}

/** A record its system kept changing under the engine's writes: the engine stopped re-reading and held the write. */
export function UnstableRecord({ e, systemName }: { e: ExceptionView; systemName: string }) {
  const d = detailOf(e);
  const deadLetters = `/dead-letters?status=all${e.record_id != null ? `&record_id=${e.record_id}` : ""}${e.system ? `&system=${encodeURIComponent(e.system)}` : ""}`;
  return (
    <section className="section" aria-labelledby={`unstable-${e.id}`}>
      <h3 id={`unstable-${e.id}`}>Keeps changing</h3>
      <p style={{ margin: 0 }}>
        {systemName} changed this record each time the engine read it to write{d.rereads != null ? ` (${d.rereads} re-reads in a row)` : ""}, so the engine stopped instead of trying again. Nothing was overwritten: the write is held as a dead letter.
      </p>
      <dl className="kv">
        {d.rereads != null ? (
          <>
            <dt>Re-reads in a row</dt>
            <dd>{d.rereads}</dd>
          </>
        ) : null}
        {d.outbox_id != null ? (
          <>
            <dt>Held write</dt>
            <dd className="mono">#{d.outbox_id}</dd>
          </>
        ) : null}
      </dl>
      <p className="muted" style={{ margin: 0 }}>
        There is no value to choose. Find out what keeps editing the record in {systemName} (a script, another integration), then replay or re-plan the held write from <Link to={deadLetters}>the record's dead letters</Link> and dismiss this exception.
      </p>
    </section>
  );
}

/** A reconciliation that found too many records gone: nothing was deleted; an admin decides on the Systems page. */
export function HeldDeletes({ e, systemName, decidedAt }: { e: ExceptionView; systemName: string; decidedAt: string }) {
  const d = detailOf(e);
  const share = d.linked ? (d.vanished ?? 0) / d.linked : 0;
  return (
    <section className="section" aria-labelledby={`held-${e.id}`}>
      <h3 id={`held-${e.id}`}>Deletes held for an admin</h3>
      <dl className="kv">
        {d.run != null ? (
          <>
            <dt>Reconciliation</dt>
            <dd className="mono">#{d.run}</dd>
          </>
        ) : null}
        {d.vanished != null && d.linked != null ? (
          <>
            <dt>Gone from {systemName}</dt>
            <dd>
              {d.vanished.toLocaleString(LOCALE)} of {d.linked.toLocaleString(LOCALE)} linked {e.object} records ({formatPercent(share)})
            </dd>
          </>
        ) : null}
        {d.max_delete_share != null ? (
          <>
            <dt>One run may delete</dt>
            <dd>up to {formatPercent(d.max_delete_share)}</dd>
          </>
        ) : null}
      </dl>
      <p style={{ margin: 0 }}>
        Nothing was deleted. {e.status === "open" ? "An admin deletes the records or keeps them on the Systems page; this exception closes with that decision." : "An admin decided on the Systems page."}
      </p>
      <div className="row">
        <Link className="btn sm" to={decidedAt}>
          {e.status === "open" ? "Decide on the Systems page" : "Open the Systems page"} <ArrowRight size={14} />
        </Link>
      </div>
    </section>
  );
}
