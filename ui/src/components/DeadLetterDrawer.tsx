// One dead letter in detail: what became of it, the request sent beside the system's response,
// and the two ways to retry it, each showing the exact request it would send before it is
// confirmed: "Replay as sent" (the failed request again, same idempotency key) and "Re-plan
// from current data" (the write planned again from the golden record and mapping as they are
// now, after a fix). A replay is followed until it settles; a re-plan's new write is followed
// through the audit until it is delivered or fails again.

import { useEffect, useRef, useState } from "react";
import { Link } from "react-router";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { toast } from "sonner";
import { AlertOctagon, CheckCircle2, RefreshCw, RotateCcw, Trash2 } from "lucide-react";
import { api, errorMessage } from "../api/client";
import { useMe } from "../api/queries";
import type { DeadLetterView, PreviewField, ReplayPreview, SentRequest } from "../api/types";
import { ageSeconds, formatAge, formatTime, humanize, isMasked, sameValue } from "../lib/format";
import { deadLetterOutcome, justAfter, prettyBody, replanDelivery, replanMessage, sameRequest } from "../lib/deadletter";
import { can, whyNot } from "../lib/roles";
import { Dialog, Drawer, EmptyState, ErrorState, Loading, Pill, Spinner, Value } from "./ui";
import { RequestView } from "./SentRequest";

export function statusTone(s: string): "danger" | "info" | "success" | undefined {
  return s === "dead" ? "danger" : s === "replaying" ? "info" : s === "replayed" ? "success" : undefined;
}

type Retry = "replay" | "replan";

/** A re-planned write being followed: its record and system, and the audit from the re-plan on. */
interface Followed {
  outboxId: number | null;
  since: string;
  system: string;
  recordId: number;
}

export function DeadLetterDrawer({ id, known, names, onClose, onDiscard, onChanged }: { id: number; known: DeadLetterView | undefined; names: Map<string, string>; onClose: () => void; onDiscard: () => void; onChanged: () => void }) {
  const me = useMe();
  const qc = useQueryClient();
  const mayReplay = can(me.role, "replay_dead_letters");
  const preview = useQuery({ queryKey: ["dead-letter", id], queryFn: () => api.get("/api/dead-letters/{id}/preview", { id }) });
  const [busy, setBusy] = useState(false);
  const [confirm, setConfirm] = useState<Retry | null>(null);
  const [followed, setFollowed] = useState<Followed | null>(null);
  const details = useDeadLetter(id, known);
  const d = details.data;
  const actor = useActorAction(d);
  const outcome = d ? deadLetterOutcome(d, formatTime, actor?.role, actor?.rule === "dead_letter:replan") : null;

  const refresh = () => {
    void qc.invalidateQueries({ queryKey: ["dead-letter", id] });
    onChanged();
  };

  // A replay's toast says how it ended, not that it was queued: followed until the dead letter
  // is replayed (the system accepted it) or dead again after one more attempt.
  const [following, setFollowing] = useState<{ attempts: number } | null>(null);
  useEffect(() => {
    if (!following || !d) return;
    if (d.status === "replayed") {
      toast.success(`Dead letter #${id} replayed`, { description: `${names.get(d.system) ?? d.system} accepted the write.` });
      setFollowing(null);
    } else if (d.status === "dead" && d.attempts > following.attempts) {
      toast.error(`Dead letter #${id} failed again`, { description: d.message ?? d.response_body ?? undefined });
      setFollowing(null);
    }
  }, [following, d, id, names]);
  // Followed by asking again while the outcome is awaited (the status may go back to dead
  // before a refetch ever sees it replaying).
  useEffect(() => {
    if (!following) return;
    const t = setInterval(() => void details.refetch(), 1500);
    return () => clearInterval(t);
  }, [following, details]);

  const replay = async () => {
    setBusy(true);
    try {
      const r = await api.post("/api/dead-letters/{id}/replay", { id });
      if (r.outcome === "queued") {
        toast.info(`Replaying dead letter #${id}…`, { description: "Its outcome follows when the system answers." });
        setFollowing({ attempts: d?.attempts ?? 0 });
      } else toast.info(r.outcome === "already_replayed" ? "Already replayed: nothing is sent again" : "This dead letter was discarded");
      setConfirm(null);
      refresh();
    } catch (e) {
      toast.error("Could not replay", { description: errorMessage(e) });
    } finally {
      setBusy(false);
    }
  };

  const replan = async () => {
    setBusy(true);
    try {
      const r = await api.post("/api/dead-letters/{id}/replan", { id });
      const said = replanMessage(r, id);
      (said.tone === "success" ? toast.success : toast.info)(said.title, { description: said.description });
      setConfirm(null);
      if (r.outcome === "queued" && d?.record_id != null) {
        // The engine's own time of the re-plan (the dead letter's last change), so the audit
        // is read from then on whatever this browser's clock says.
        const fresh = await api.get("/api/dead-letters/{id}", { id }).catch(() => null);
        setFollowed({ outboxId: r.outbox_id ?? null, since: fresh?.updated_at ?? new Date(Date.now() - 5000).toISOString(), system: d.system, recordId: d.record_id });
      }
      refresh();
    } catch (e) {
      toast.error("Could not re-plan", { description: errorMessage(e) });
    } finally {
      setBusy(false);
    }
  };

  const isDead = d?.status === "dead";
  const p = preview.data;
  const replanWhyNot = !mayReplay
    ? whyNot(me.role, "replay_dead_letters")
    : !isDead
      ? "Only a dead letter that is still dead can be retried"
      : d?.kind !== "write"
        ? "An event is not planned: replaying it applies it again through the current mapping"
        : p && !p.replan
          ? `Nothing to plan: ${d?.system ?? "the system"} has no mapping for ${p.object}`
          : undefined;
  const replayWhyNot = !mayReplay ? whyNot(me.role, "replay_dead_letters") : !isDead ? "Only a dead letter that is still dead can be replayed" : undefined;

  return (
    <Drawer
      open
      onClose={onClose}
      title={`Dead letter #${id}`}
      headerExtra={d ? <Pill tone={statusTone(d.status)}>{d.status}</Pill> : null}
      footer={
        <>
          <button type="button" className="btn danger" disabled={!mayReplay || !isDead || busy} onClick={onDiscard} title={mayReplay ? undefined : whyNot(me.role, "replay_dead_letters")}>
            <Trash2 size={16} /> Discard…
          </button>
          <span className="spacer" />
          <button type="button" className="btn" disabled={!!replayWhyNot || busy} onClick={() => setConfirm("replay")} title={replayWhyNot}>
            <RotateCcw size={16} /> Replay as sent…
          </button>
          <button type="button" className="btn primary" disabled={!!replanWhyNot || busy || preview.isPending} onClick={() => setConfirm("replan")} title={replanWhyNot}>
            <RefreshCw size={16} /> Re-plan from current data…
          </button>
        </>
      }
    >
      {details.isPending ? <Loading /> : details.error ? <ErrorState error={details.error} retry={() => void details.refetch()} /> : d ? (
        <section className="section">
          {outcome ? (
            <div className={`banner ${outcome.tone ?? "neutral"}`} role="status">
              {outcome.tone === "success" ? <CheckCircle2 size={16} /> : outcome.tone === "info" ? <Spinner /> : outcome.tone === "warning" ? <AlertOctagon size={16} /> : <Trash2 size={16} />}
              <div className="b-body">{outcome.long}</div>
            </div>
          ) : null}
          {followed ? <ReplanFollow followed={followed} deadLetter={id} onDone={onChanged} /> : null}
          {d.message ? (
            <div className={`banner ${d.fails_again && d.status === "dead" ? "warning" : "neutral"}`} role="note">
              <AlertOctagon size={16} />
              <div className="b-body">
                <strong>{d.message}</strong>
                {d.fails_again && d.status === "dead" ? <FailsAgain d={d} /> : null}
              </div>
            </div>
          ) : null}
          <dl className="kv">
            <dt>System</dt>
            <dd>{names.get(d.system) ?? d.system}</dd>
            <dt>Operation</dt>
            <dd className="mono">{d.op ?? d.kind}</dd>
            <dt>Record</dt>
            <dd>{d.record_id != null ? <Link to={`/records/${d.record_id}`}>{d.object ?? "record"} {d.record_id}</Link> : "—"}</dd>
            <dt>Error class</dt>
            <dd>
              <Pill tone="danger">{humanize(d.error_class)}</Pill>
            </dd>
            <dt>Attempts</dt>
            <dd>
              {d.attempts}
              {(d.attempt_log ?? []).length > 0 ? (
                <ol className="attempts" aria-label="Attempts">
                  {(d.attempt_log ?? []).map((a) => (
                    <li key={a.attempt}>
                      <span className="mono">{formatTime(a.at)}</span> {a.status != null ? <strong className="mono">{a.status}</strong> : <span className="faint">no answer</span>} <span className="muted">{a.message}</span>
                      {a.retry_at ? <span className="faint"> · next try {formatTime(a.retry_at)}</span> : null}
                    </li>
                  ))}
                </ol>
              ) : null}
            </dd>
            <dt>Failed</dt>
            <dd>{formatTime(d.created_at)}</dd>
            {d.updated_at && d.updated_at !== d.created_at ? (
              <>
                <dt>Last change</dt>
                <dd>
                  {formatTime(d.updated_at)} <span className="faint">({formatAge(ageSeconds(d.updated_at))} ago)</span>
                </dd>
              </>
            ) : null}
            {d.actor ? (
              <>
                <dt>{d.status === "discarded" ? "Discarded by" : actor?.rule === "dead_letter:replan" ? "Re-planned by" : "Replayed by"}</dt>
                <dd>
                  {d.actor}
                  {actor?.role ? <span className="faint"> ({actor.role})</span> : null}
                </dd>
              </>
            ) : null}
            {d.discard_reason ? (
              <>
                <dt>Reason</dt>
                <dd>{d.discard_reason}</dd>
              </>
            ) : null}
            <dt>Idempotency key</dt>
            <dd className="mono">{d.idempotency_key ?? "—"}</dd>
          </dl>
        </section>
      ) : null}
      {d ? (
        <section className="section" aria-label="The request and the response">
          <div className="pair">
            <div className="card">
              <h3>The request sent</h3>
              <RequestView request={d.request} label="The request sent" empty={d.kind === "write" ? "Not kept for this dead letter (it failed before requests were kept, or before one was sent)." : "An event: nothing was sent to the system."} />
            </div>
            <div className="card">
              <h3>The system's response {d.response_status != null ? <span className="mono">({d.response_status})</span> : null}</h3>
              {d.response_body ? <pre className="block">{prettyBody(d.response_body)}</pre> : <p className="faint">No response body (the request did not get an answer).</p>}
            </div>
          </div>
        </section>
      ) : null}
      <section className="section" aria-labelledby={`retry-${id}`}>
        <h3 id={`retry-${id}`}>Two ways to retry</h3>
        {d && !isDead ? <p className="faint" style={{ margin: 0 }}>This dead letter is {d.status}: it is not retried again. What each way would send now:</p> : null}
        {preview.isPending ? <Loading /> : preview.error ? <ErrorState error={preview.error} retry={() => void preview.refetch()} /> : (
          <RetryChoices preview={preview.data} kind={d?.kind} />
        )}
      </section>
      <RetryConfirm
        retry={confirm}
        id={id}
        system={d ? names.get(d.system) ?? d.system : ""}
        kind={d?.kind}
        preview={p}
        busy={busy}
        onClose={() => setConfirm(null)}
        onConfirm={() => void (confirm === "replan" ? replan() : replay())}
      />
    </Drawer>
  );
}

/** The two choices, each with the request it would send and the values it would write. */
function RetryChoices({ preview, kind }: { preview: ReplayPreview; kind: string | undefined }) {
  const replan = preview.replan;
  const same = replan ? sameRequest(preview.sent, replan.request) : false;
  return (
    <div className="col" style={{ gap: 14 }}>
      <div className="card" style={{ padding: "12px 14px" }} role="group" aria-label="Replay as sent">
        <div className="col" style={{ gap: 10 }}>
          <strong>1. Replay as sent</strong>
          <p className="muted" style={{ margin: 0 }}>
            {kind === "write"
              ? "Sends the failed request again, unchanged and with the same idempotency key. Use it when the system refused it for a reason fixed on its side (it was down, a record it needed exists now)."
              : "Applies the event again through the current mapping."}
          </p>
          {kind === "write" ? <RequestView request={preview.sent} label="Replay request" empty="The request is not known: the replay sends the failed write's values again." /> : null}
          <FieldsTable fields={preview.fields} op={preview.op} heads={["Target holds now", "Would write", "Base"]} label="What a replay would change" />
          {!preview.fields.every((f) => sameValue(f.current, f.base)) ? (
            <p className="muted" style={{ fontSize: 12.5, margin: 0 }}>
              Where the target's value differs from the base, someone changed it there since this write was planned: the replay would overwrite it.
            </p>
          ) : null}
        </div>
      </div>
      <div className="card" style={{ padding: "12px 14px" }} role="group" aria-label="Re-plan from current data">
        <div className="col" style={{ gap: 10 }}>
          <strong>2. Re-plan from current data</strong>
          <p className="muted" style={{ margin: 0 }}>
            Plans the write again from the golden record and the mapping as they are now. Use it after fixing a mapping or the data. The failed write is settled and a new write is queued.
          </p>
          {replan ? (
            <>
              <RequestView request={replan.request} label="Re-plan request" empty="This connector does not describe its requests: the values below are written." />
              {replan.note ? (
                <div className="banner info" role="note">
                  <div className="b-body">{replan.note}</div>
                </div>
              ) : null}
              {same ? <p className="faint" style={{ fontSize: 12.5, margin: 0 }}>The same request as a replay: nothing it depends on changed since the write failed.</p> : null}
              <FieldsTable fields={replan.fields} op={replan.op} heads={["Target holds (last known)", "Would write now", "The failed write had"]} label="What a re-plan would write" compareTo="base" />
            </>
          ) : (
            <p className="faint" style={{ margin: 0 }}>{kind === "write" ? "Nothing to plan: the system has no mapping for this object." : "An event is not planned: replay it."}</p>
          )}
        </div>
      </div>
    </div>
  );
}

/** Whether the caller sees this field's values masked (the engine decided what changed before masking). */
function hidden(f: PreviewField): boolean {
  return isMasked(f.write) || isMasked(f.current) || isMasked(f.base);
}

/** Per field: the target's value, the value to write, and a third column (the base, or what the failed write had). */
function FieldsTable({ fields, op, heads, label, compareTo = "current" }: { fields: PreviewField[]; op: string; heads: [string, string, string]; label: string; compareTo?: "current" | "base" }) {
  if (fields.length === 0) return <EmptyState title="No field values">This sends no field values ({op}).</EmptyState>;
  return (
    <div style={{ overflowX: "auto" }}>
      <table className="simple-table" aria-label={label}>
        <thead>
          <tr>
            <th>Field</th>
            <th>{heads[0]}</th>
            <th>{heads[1]}</th>
            <th>{heads[2]}</th>
          </tr>
        </thead>
        <tbody>
          {fields.map((f) => (
            <tr key={f.field}>
              <td className="mono">{f.field}</td>
              <td>
                <Value v={f.current} />
              </td>
              <td>
                <Value v={f.write} />{" "}
                {compareTo === "current" ? (
                  f.changes ? <Pill tone="info">{hidden(f) ? "changed (hidden)" : "change"}</Pill> : <span className="faint">(no change)</span>
                ) : f.differs_from_base ? (
                  <Pill tone="accent">{hidden(f) ? "new value (hidden)" : "new value"}</Pill>
                ) : (
                  <span className="faint">(as before)</span>
                )}
              </td>
              <td>
                <Value v={f.base} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Before a retry is sent: the exact request it sends, and what happens after. */
function RetryConfirm(props: { retry: Retry | null; id: number; system: string; kind: string | undefined; preview: ReplayPreview | undefined; busy: boolean; onClose: () => void; onConfirm: () => void }) {
  const { retry, preview } = props;
  const replan = retry === "replan";
  const request: SentRequest | null | undefined = replan ? preview?.replan?.request : preview?.sent;
  return (
    <Dialog
      open={retry !== null}
      onClose={props.onClose}
      title={replan ? `Re-plan dead letter #${props.id} from current data?` : `Replay dead letter #${props.id} as sent?`}
      footer={
        <>
          <span className="spacer" />
          <button type="button" className="btn" onClick={props.onClose} disabled={props.busy}>
            Cancel
          </button>
          <button type="button" className="btn primary" onClick={props.onConfirm} disabled={props.busy} data-autofocus>
            {props.busy ? <Spinner /> : replan ? <RefreshCw size={16} /> : <RotateCcw size={16} />} {replan ? "Re-plan and send" : "Replay"}
          </button>
        </>
      }
    >
      {props.kind === "write" || replan ? (
        <>
          <p>{replan ? `Queues this request to ${props.system}, planned from the current golden record and mapping:` : `Sends this request to ${props.system} again, unchanged:`}</p>
          <RequestView request={request} label={replan ? "Request to send" : "Request to send again"} empty={replan ? "This connector does not describe its requests." : "The request is not known: the failed write's values are sent again."} />
          {replan && preview?.replan?.note ? (
            <div className="banner info" role="note">
              <div className="b-body">{preview.replan.note}</div>
            </div>
          ) : null}
          <p className="muted" style={{ margin: 0 }}>
            {replan
              ? "The dead letter is settled as replayed; the new write is followed here until it is delivered or fails again."
              : "It keeps its idempotency key, so the system writes it at most once. It is followed here until it settles."}
          </p>
        </>
      ) : (
        <p>Applies the event again through the current mapping.</p>
      )}
    </Dialog>
  );
}

/** Follows a re-planned write through the audit of its record and system until it is delivered or fails again. */
function ReplanFollow({ followed, deadLetter, onDone }: { followed: Followed; deadLetter: number; onDone: () => void }) {
  const audit = useQuery({
    queryKey: ["audit", "replan-follow", deadLetter, followed.since],
    queryFn: () => api.get("/api/audit", { record_id: followed.recordId, system: followed.system, since: followed.since, limit: 200 }),
    refetchInterval: (q) => (q.state.data && replanDelivery(q.state.data).state !== "queued" ? false : 2000),
  });
  const state = audit.data ? replanDelivery(audit.data) : { state: "queued" as const };
  const failed = state.state === "failed";
  const again = useQuery({
    queryKey: ["dead-letter", "after-replan", deadLetter, followed.since],
    enabled: failed,
    queryFn: () => api.get("/api/dead-letters", { record_id: followed.recordId, system: followed.system, status: "dead", limit: 20 }),
  });
  // Once settled, the list and the counts are refreshed (once).
  const settled = state.state !== "queued";
  const onDoneRef = useRef(onDone);
  onDoneRef.current = onDone;
  useEffect(() => {
    if (settled) onDoneRef.current();
  }, [settled]);
  const newer = (again.data ?? []).filter((x) => x.id > deadLetter).sort((a, b) => b.id - a.id)[0];
  const write = followed.outboxId != null ? `The new write #${followed.outboxId}` : "The new write";
  if (state.state === "delivered") {
    return (
      <div className="banner success" role="status">
        <CheckCircle2 size={16} />
        <div className="b-body">
          {write} was delivered at {formatTime(state.at)}.
        </div>
      </div>
    );
  }
  if (state.state === "failed") {
    return (
      <div className="banner warning" role="status">
        <AlertOctagon size={16} />
        <div className="b-body">
          <strong>
            {write} failed again at {formatTime(state.at)}: {state.why}.
          </strong>
          {newer ? (
            <span>
              It is <Link to={`/dead-letters/${newer.id}`}>dead letter #{newer.id}</Link> now.
            </span>
          ) : (
            <Link to={`/dead-letters?record_id=${followed.recordId}&system=${encodeURIComponent(followed.system)}`}>See the record's dead letters</Link>
          )}
        </div>
      </div>
    );
  }
  return (
    <div className="banner info" role="status">
      <Spinner />
      <div className="b-body">{write} is queued; following its delivery…</div>
    </div>
  );
}

/** One dead letter, whatever its status; followed every 2 s while a replay is under way. */
function useDeadLetter(id: number, known: DeadLetterView | undefined) {
  return useQuery({
    queryKey: ["dead-letter", id, "view"],
    queryFn: () => api.get("/api/dead-letters/{id}", { id }),
    placeholderData: known,
    refetchInterval: (q) => (q.state.data?.status === "replaying" ? 2000 : false),
  });
}

/**
 * Who last replayed, re-planned or discarded a dead letter, as the audit has it: the dead letter
 * names only the person; the audit entry of their action also has the role and which action it
 * was. Best effort (null when not found).
 */
function useActorAction(d: DeadLetterView | undefined): { role: string | null; rule: string } | null {
  const actor = d?.actor ?? null;
  const until = d ? justAfter(d.updated_at) : undefined;
  const q = useQuery({
    queryKey: ["audit", "dead-letter-actor", d?.id, actor, until],
    enabled: !!d && !!actor && !!until,
    staleTime: 60_000,
    queryFn: () => api.get("/api/audit", { actor: actor!, until, limit: 200 }),
  });
  const entry = q.data?.find(
    (a) => (a.rule === "dead_letter:discard" || a.rule === "dead_letter:replay" || a.rule === "dead_letter:replan") && (a.detail as { dead_letter?: unknown } | null | undefined)?.dead_letter === d?.id,
  );
  return entry ? { role: entry.actor_role ?? null, rule: entry.rule } : null;
}

/** Why a replay as it is would fail again, and where to fix it: the record, the fields the system named, the mapping. */
export function FailsAgain({ d }: { d: Pick<DeadLetterView, "record_id" | "object" | "fields" | "system"> }) {
  const fields = d.fields ?? [];
  return (
    <div>
      Will fail again unless the record or the mapping changes.{" "}
      {d.record_id != null ? (
        <>
          <Link to={`/records/${d.record_id}`}>Open the record</Link>
          {" · "}
        </>
      ) : null}
      {fields.length ? (
        <>
          field{fields.length === 1 ? "" : "s"} <span className="mono">{fields.join(", ")}</span>
          {" · "}
        </>
      ) : null}
      <Link to={`/mapper?system=${encodeURIComponent(d.system)}${d.object ? `&object=${encodeURIComponent(d.object)}` : ""}`}>Open the mapping</Link>
    </div>
  );
}
