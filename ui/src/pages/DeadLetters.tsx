// Dead letters, for support: writes (and events) that failed for good, grouped by cause (the
// system's reason in its words, with counts, a whole cause replayed or discarded at once, and
// a warning when a replay would fail again), then one by one with the reason and attempts. Open one to see the request sent and to replay it as
// sent or re-plan it from current data (components/DeadLetterDrawer.tsx); replay a selection or
// everything a filter selects (with progress), or discard with a reason. Each says who
// replayed or discarded it, when, and why.

import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useNavigate, useParams } from "react-router";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { toast } from "sonner";
import { AlertOctagon, RotateCcw, Trash2 } from "lucide-react";
import { api, errorMessage } from "../api/client";
import { useMe, useMetrics, useWorkspace } from "../api/queries";
import type { DeadLetterCause, DeadLetterView } from "../api/types";
import { usePagedList } from "../lib/paged";
import { useUrlFilters } from "../lib/urlstate";
import { LOCALE, ageSeconds, formatAge, formatTime, humanize } from "../lib/format";
import { deadLetterOutcome } from "../lib/deadletter";
import { can, whyNot } from "../lib/roles";
import { DataTable, type Column } from "../components/DataTable";
import { Dialog, EmptyState, Field, PageHeader, Pill, Progress, Spinner } from "../components/ui";
import { DeadLetterDrawer, FailsAgain, statusTone } from "../components/DeadLetterDrawer";

export const ERROR_CLASSES = ["validation", "rejected", "retries_exhausted", "not_found", "version_conflict", "config"] as const;
const FILTER_KEYS = ["status", "system", "error_class", "record_id"] as const;

interface Job {
  title: string;
  total: number;
  sent: number;
  /** Ids queued, to follow until delivered (selection), or null for a filter replay. */
  ids: number[] | null;
  queued: number;
  remaining: number | null;
  failedAgain: number | null;
  done: boolean;
  filter: { system?: string | null; error_class?: string | null; record_id?: number | null };
}

const REPLAY_CHUNK = 50;

export function DeadLettersPage() {
  const me = useMe();
  const ws = useWorkspace();
  const metrics = useMetrics();
  const navigate = useNavigate();
  const qc = useQueryClient();
  const { id } = useParams();
  const [f, setF] = useUrlFilters(FILTER_KEYS);
  const status = f.status || "dead";
  const recordId = f.record_id && /^\d+$/.test(f.record_id) ? Number(f.record_id) : undefined;
  const [selected, setSelected] = useState<Set<number>>(new Set());
  const [job, setJob] = useState<Job | null>(null);
  const [discardIds, setDiscardIds] = useState<number[] | null>(null);
  const [confirmFilterReplay, setConfirmFilterReplay] = useState(false);
  const mayReplay = can(me.role, "replay_dead_letters");

  const key = JSON.stringify([status, f.system, f.error_class, recordId]);
  const fetchPage = useCallback(
    (offset: number, limit: number, signal: AbortSignal) =>
      api.list("/api/dead-letters", { status, system: f.system || undefined, error_class: f.error_class || undefined, record_id: recordId, limit, offset }, signal),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [key],
  );
  const unfiltered = status === "dead" && !f.system && !f.error_class && recordId === undefined;
  const list = usePagedList(key, fetchPage, { estimate: unfiltered ? metrics.data?.dead_letters : null });
  useEffect(() => setSelected(new Set()), [key]);

  const names = new Map((ws.data?.systems ?? []).map((s) => [s.id, s.name]));
  const afterChange = () => {
    list.reload();
    void qc.invalidateQueries({ queryKey: ["metrics"] });
    void qc.invalidateQueries({ queryKey: ["dead-letter"] });
  };

  const loadedIds = () => list.loaded().filter((d) => d.status === "dead").map((d) => d.id);
  const selection = {
    isSelected: (d: DeadLetterView) => selected.has(d.id),
    toggle: (d: DeadLetterView) =>
      setSelected((s) => {
        const n = new Set(s);
        if (n.has(d.id)) n.delete(d.id);
        else n.add(d.id);
        return n;
      }),
    allLoadedSelected: list.loadedRows > 0 && loadedIds().every((i) => selected.has(i)) && selected.size > 0,
    toggleAllLoaded: () => {
      const ids = loadedIds();
      setSelected((s) => (ids.every((i) => s.has(i)) && s.size > 0 ? new Set() : new Set(ids)));
    },
  };

  // Past "dead", the status cell also says who acted and when (in place of the failure's age).
  const settled = status !== "dead";
  const columns: Column<DeadLetterView>[] = [
    { key: "id", header: "#", width: "64px", render: (d) => <span className="mono faint">{d.id}</span> },
    { key: "system", header: "System", width: "116px", render: (d) => names.get(d.system) ?? d.system },
    { key: "op", header: "Operation", width: "106px", render: (d) => <span className="mono">{d.op ?? d.kind}</span> },
    { key: "record", header: "Record", width: "88px", render: (d) => (d.record_id != null ? <span className="mono">{d.record_id}</span> : "—") },
    { key: "class", header: "Error class", width: "130px", render: (d) => <Pill tone={d.error_class === "validation" ? "warning" : "danger"}>{humanize(d.error_class)}</Pill> },
    {
      key: "resp",
      header: "Reason",
      width: settled ? "minmax(120px, 3fr)" : "minmax(200px, 3fr)",
      render: (d) => (
        <span title={d.response_body ?? undefined}>
          {d.response_status != null ? <strong className="mono">{d.response_status} </strong> : null}
          {d.message ? <span>{d.message}</span> : <span className="muted">{(d.response_body ?? "").slice(0, 200)}</span>}
          {d.fails_again && d.status === "dead" ? (
            <>
              {" "}
              <Pill tone="warning" title="Will fail again unless the record or the mapping changes">
                fails again
              </Pill>
            </>
          ) : null}
        </span>
      ),
    },
    { key: "attempts", header: "Attempts", width: "100px", className: "num", render: (d) => d.attempts },
    ...(settled
      ? [
          {
            key: "status",
            header: "Status",
            width: "minmax(260px, 2fr)",
            render: (d: DeadLetterView) => {
              const o = deadLetterOutcome(d, formatTime);
              return (
                <span title={o?.long ?? `Failed ${formatTime(d.created_at)}`}>
                  <Pill tone={statusTone(d.status)}>{d.status}</Pill> <span className="faint">{formatAge(ageSeconds(d.updated_at))}</span>
                  {o?.byline ? <span className="muted"> · {o.byline}</span> : null}
                </span>
              );
            },
          },
        ]
      : [
          { key: "age", header: "Age", width: "64px", className: "num", render: (d: DeadLetterView) => <span title={formatTime(d.created_at)}>{formatAge(ageSeconds(d.created_at))}</span> },
          { key: "status", header: "Status", width: "96px", render: (d: DeadLetterView) => <Pill tone={statusTone(d.status)}>{d.status}</Pill> },
        ]),
  ];

  // A selection is replayed in requests of REPLAY_CHUNK ids, so the progress bar moves as they go.
  const replaySelected = async (ids: number[], title?: string) => {
    const j: Job = { title: title ?? `Replaying ${ids.length} dead letters`, total: ids.length, sent: 0, ids: [], queued: 0, remaining: null, failedAgain: null, done: false, filter: {} };
    setJob({ ...j });
    const errors: string[] = [];
    for (let at = 0; at < ids.length; at += REPLAY_CHUNK) {
      const chunk = ids.slice(at, at + REPLAY_CHUNK);
      try {
        const r = await api.post("/api/dead-letters/replay-selected", {}, { ids: chunk });
        for (const res of r.results) {
          if (res.outcome === "queued") {
            j.queued++;
            j.ids!.push(res.id);
          } else if (res.error) {
            errors.push(`#${res.id}: ${res.error.message}`);
            if (errors.length === 1) toast.error(`Could not replay #${res.id}`, { description: res.error.message });
          }
        }
      } catch (e) {
        errors.push(`#${chunk[0]}–#${chunk[chunk.length - 1]}: ${errorMessage(e)}`);
        if (errors.length === 1) toast.error("Could not replay the selection", { description: errorMessage(e) });
      }
      j.sent += chunk.length;
      setJob({ ...j });
    }
    setSelected(new Set());
    afterChange();
  };

  const replayFilter = async () => {
    setConfirmFilterReplay(false);
    const filter = { system: f.system || null, error_class: f.error_class || null, record_id: recordId ?? null };
    const j: Job = { title: "Replaying every dead letter in this filter", total: 1, sent: 0, ids: null, queued: 0, remaining: null, failedAgain: null, done: false, filter };
    setJob({ ...j });
    try {
      const r = await api.post("/api/dead-letters/replay", {}, filter);
      j.sent = 1;
      j.total = 1;
      j.queued = r.queued;
      setJob({ ...j });
      toast.success(`${r.queued} dead letters queued for replay`);
    } catch (e) {
      toast.error("Replay failed", { description: errorMessage(e) });
      setJob(null);
    }
    afterChange();
  };

  return (
    <div className="page fill">
      <PageHeader
        title="Dead letters"
        description="Writes that failed for good: a validation error from the target, a rejection, or retries exhausted. Replaying re-sends the request as it was sent, with the same idempotency key, so a replay writes at most once; re-planning writes again from the current data, after a mapping or data fix."
        actions={
          <>
            <button
              type="button"
              className="btn"
              disabled={!mayReplay || status !== "dead" || list.count === 0}
              title={mayReplay ? "Replay every dead letter this filter selects" : whyNot(me.role, "replay_dead_letters")}
              onClick={() => setConfirmFilterReplay(true)}
            >
              <RotateCcw size={16} /> Replay all in filter…
            </button>
          </>
        }
      />
      <div className="toolbar" role="search" aria-label="Filter dead letters">
        <Field label="Status">
          {(fid) => (
            <select id={fid} className="select" value={status} onChange={(e) => setF({ status: e.target.value === "dead" ? "" : e.target.value })}>
              <option value="dead">Dead</option>
              <option value="replaying">Replaying</option>
              <option value="replayed">Replayed</option>
              <option value="discarded">Discarded</option>
              <option value="all">All</option>
            </select>
          )}
        </Field>
        <Field label="System">
          {(fid) => (
            <select id={fid} className="select" value={f.system} onChange={(e) => setF({ system: e.target.value })}>
              <option value="">Any system</option>
              {(ws.data?.systems ?? []).map((s) => (
                <option key={s.id} value={s.id}>
                  {s.name}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Error class">
          {(fid) => (
            <select id={fid} className="select" value={f.error_class} onChange={(e) => setF({ error_class: e.target.value })}>
              <option value="">Any class</option>
              {ERROR_CLASSES.map((c) => (
                <option key={c} value={c}>
                  {humanize(c)}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Record id">
          {(fid) => <input id={fid} className="input" inputMode="numeric" style={{ width: 110 }} value={f.record_id} onChange={(e) => setF({ record_id: e.target.value.replace(/\D/g, "") })} />}
        </Field>
        <span className="grow" />
        {selected.size > 0 ? (
          <>
            <span className="meta">{selected.size} selected</span>
            <button type="button" className="btn primary" disabled={!mayReplay || !!(job && !job.done)} onClick={() => void replaySelected([...selected])} title={mayReplay ? undefined : whyNot(me.role, "replay_dead_letters")}>
              <RotateCcw size={16} /> Replay selected
            </button>
            <button type="button" className="btn danger" disabled={!mayReplay} onClick={() => setDiscardIds([...selected])}>
              <Trash2 size={16} /> Discard…
            </button>
          </>
        ) : null}
      </div>
      {job ? <ReplayJob job={job} onClose={() => setJob(null)} onUpdate={setJob} onSettled={afterChange} /> : null}
      {status === "dead" ? (
        <Causes
          system={f.system || undefined}
          names={names}
          mayAct={mayReplay && !(job && !job.done)}
          whyNot={mayReplay ? undefined : whyNot(me.role, "replay_dead_letters")}
          onReplay={(c) => void replaySelected(c.ids, `Replaying ${c.count} dead ${c.count === 1 ? "letter" : "letters"}: ${c.message}`)}
          onDiscard={(c) => setDiscardIds(c.ids)}
          version={list.count}
        />
      ) : null}
      <DataTable
        label="Dead letters"
        list={list}
        columns={columns}
        rowKey={(d) => d.id}
        activeKey={id ? Number(id) : null}
        selection={mayReplay && status === "dead" ? selection : undefined}
        onOpen={(d) => navigate({ pathname: `/dead-letters/${d.id}`, search: window.location.search })}
        empty={
          <EmptyState icon={<AlertOctagon size={22} />} title={unfiltered ? "No dead letters" : "No dead letters match these filters"}>
            {unfiltered ? "Every write reached its system." : "Try another status, system or error class."}
          </EmptyState>
        }
      />
      {id ? (
        <DeadLetterDrawer
          id={Number(id)}
          known={list.loaded().find((d) => d.id === Number(id))}
          names={names}
          onClose={() => navigate({ pathname: "/dead-letters", search: window.location.search })}
          onDiscard={() => setDiscardIds([Number(id)])}
          onChanged={afterChange}
        />
      ) : null}
      <DiscardDialog
        ids={discardIds}
        onClose={() => setDiscardIds(null)}
        onDone={() => {
          setSelected(new Set());
          afterChange();
          if (id && discardIds?.includes(Number(id))) navigate({ pathname: "/dead-letters", search: window.location.search });
        }}
      />
      <Dialog
        open={confirmFilterReplay}
        onClose={() => setConfirmFilterReplay(false)}
        title="Replay every dead letter in this filter?"
        footer={
          <>
            <span className="spacer" />
            <button type="button" className="btn" onClick={() => setConfirmFilterReplay(false)}>
              Cancel
            </button>
            <button type="button" className="btn primary" onClick={() => void replayFilter()} data-autofocus>
              <RotateCcw size={16} /> Replay
            </button>
          </>
        }
      >
        <p>
          Re-sends every <strong>dead</strong> letter
          {f.system ? ` to ${names.get(f.system) ?? f.system}` : " to every system"}
          {f.error_class ? ` with error class ${humanize(f.error_class)}` : ""}
          {recordId !== undefined ? ` for record ${recordId}` : ""} ({list.exactTotal != null ? list.exactTotal.toLocaleString(LOCALE) : `${list.count.toLocaleString(LOCALE)}+`} now, up to 10,000). Each keeps its idempotency key.
        </p>
        <p className="muted">Open one first to preview what it would change in its target.</p>
      </Dialog>
    </div>
  );
}

/** Progress of a replay: sending the requests, then following delivery until none is replaying. */
function ReplayJob({ job, onClose, onUpdate, onSettled }: { job: Job; onClose: () => void; onUpdate: (j: Job) => void; onSettled: () => void }) {
  const sending = job.sent < job.total;
  const jobRef = useRef(job);
  jobRef.current = job;
  useEffect(() => {
    if (sending || job.done) return;
    let stop = false;
    const tick = async () => {
      const j = jobRef.current;
      try {
        const ids = j.ids ? new Set(j.ids) : null;
        // A filter replay follows how many are still replaying: the list's total when it has one.
        const replaying = await api.list("/api/dead-letters", { status: "replaying", system: j.filter.system ?? undefined, error_class: j.filter.error_class ?? undefined, record_id: j.filter.record_id ?? undefined, limit: 10000 });
        const remaining = ids ? replaying.items.filter((d) => ids.has(d.id)).length : (replaying.total ?? replaying.items.length);
        let failedAgain: number | null = null;
        if (remaining === 0 && ids) {
          const dead = await api.get("/api/dead-letters", { status: "dead", limit: 10000 });
          failedAgain = dead.filter((d) => ids.has(d.id)).length;
        }
        if (stop) return;
        onUpdate({ ...jobRef.current, remaining, failedAgain, done: remaining === 0 });
        if (remaining === 0) onSettled();
      } catch {
        /* keep polling */
      }
    };
    void tick();
    const t = setInterval(() => void tick(), 2000);
    return () => {
      stop = true;
      clearInterval(t);
    };
  }, [sending, job.done, onUpdate, onSettled]);
  const delivered = job.remaining == null ? 0 : Math.max(0, job.queued - job.remaining);
  return (
    <div className="card" role="region" aria-label="Replay progress" style={{ padding: 14 }}>
      <div className="col">
        <div className="row">
          <strong>{job.title}</strong>
          <span className="spacer" />
          {job.done || !sending ? (
            <button type="button" className="btn sm ghost" onClick={onClose}>
              {job.done ? "Close" : "Hide"}
            </button>
          ) : null}
        </div>
        {job.ids ? <Progress value={job.sent} max={job.total} label="Requests sent" /> : null}
        {!sending ? <Progress value={delivered} max={job.queued} label={job.done ? "Delivered or settled" : "Delivering"} /> : null}
        {job.done ? (
          <span className="muted">
            {job.queued} queued.{" "}
            {job.failedAgain ? <strong style={{ color: "var(--danger)" }}>{job.failedAgain} failed again and are dead letters once more.</strong> : job.ids ? "All were delivered." : "None is replaying any more."}
          </span>
        ) : null}
      </div>
    </div>
  );
}

function DiscardDialog({ ids, onClose, onDone }: { ids: number[] | null; onClose: () => void; onDone: () => void }) {
  const [reason, setReason] = useState("");
  const [progress, setProgress] = useState<number | null>(null);
  const n = ids?.length ?? 0;
  const submit = async () => {
    if (!ids) return;
    setProgress(0);
    let failed = 0;
    for (const [i, id] of ids.entries()) {
      try {
        await api.post("/api/dead-letters/{id}/discard", { id }, { reason });
      } catch (e) {
        failed++;
        if (failed === 1) toast.error(`Could not discard #${id}`, { description: errorMessage(e) });
      }
      setProgress(i + 1);
    }
    if (failed < n) toast.success(`${n - failed} dead ${n - failed === 1 ? "letter" : "letters"} discarded`);
    setProgress(null);
    setReason("");
    onClose();
    onDone();
  };
  const title = useMemo(() => (n === 1 ? `Discard dead letter #${ids![0]}` : `Discard ${n} dead letters`), [n, ids]);
  return (
    <Dialog
      open={ids !== null}
      onClose={onClose}
      title={title}
      footer={
        <>
          <span className="spacer" />
          <button type="button" className="btn" onClick={onClose} disabled={progress !== null}>
            Cancel
          </button>
          <button type="button" className="btn danger" disabled={reason.trim() === "" || progress !== null} onClick={() => void submit()}>
            {progress !== null ? <Spinner /> : <Trash2 size={16} />} Discard
          </button>
        </>
      }
    >
      <p className="muted">A discarded write is never sent. The target keeps what it has; the reason is kept in the audit.</p>
      <Field label="Reason (required)">
        {(fid) => <textarea id={fid} className="textarea" data-autofocus value={reason} onChange={(e) => setReason(e.target.value)} placeholder="e.g. the employee left before payroll onboarding" />}
      </Field>
      {progress !== null && n > 1 ? <Progress value={progress} max={n} label="Discarding" /> : null}
    </Dialog>
  );
}

/** Dead letters grouped by cause: the most frequent first, each replayed or discarded as one. */
function Causes({ system, names, mayAct, whyNot: why, onReplay, onDiscard, version }: { system?: string; names: Map<string, string>; mayAct: boolean; whyNot?: string; onReplay: (c: DeadLetterCause) => void; onDiscard: (c: DeadLetterCause) => void; version: number | null }) {
  const causes = useQuery({
    queryKey: ["dead-letter-causes", system, version],
    queryFn: ({ signal }) => api.get("/api/dead-letters/causes", { system }, signal),
    refetchInterval: 10_000,
  });
  const items = causes.data ?? [];
  if (items.length === 0) return null;
  return (
    <section className="card causes" aria-label="Dead letters by cause">
      <table className="simple-table">
        <caption className="sr-only">Dead letters by cause</caption>
        <thead>
          <tr>
            <th scope="col">Cause</th>
            <th scope="col">System</th>
            <th scope="col" className="num">
              Count
            </th>
            <th scope="col">Last</th>
            <th scope="col" aria-label="Actions" />
          </tr>
        </thead>
        <tbody>
          {items.map((c) => (
            <tr key={c.key} data-cause={c.key}>
              <td>
                <div>
                  {c.response_status != null ? <strong className="mono">{c.response_status} </strong> : null}
                  {c.message}
                </div>
                {c.fails_again ? (
                  <div className="faint">
                    <FailsAgain d={{ record_id: c.records[0] ?? null, object: c.object ?? null, fields: c.fields, system: c.system }} />
                  </div>
                ) : null}
              </td>
              <td>{names.get(c.system) ?? c.system}</td>
              <td className="num">{c.count}</td>
              <td>
                <span title={formatTime(c.last_at)}>{formatAge(ageSeconds(c.last_at))} ago</span>
              </td>
              <td className="row-actions">
                <button type="button" className="btn sm" disabled={!mayAct} title={why ?? (c.fails_again ? "These failed on their content: fix the record or the mapping first, or the replay fails again" : undefined)} onClick={() => onReplay(c)}>
                  <RotateCcw size={14} /> Replay {c.count}
                </button>{" "}
                <button type="button" className="btn sm danger" disabled={!mayAct} title={why} onClick={() => onDiscard(c)}>
                  <Trash2 size={14} /> Discard {c.count}…
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
