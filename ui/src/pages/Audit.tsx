// Audit: every change and every decision, searchable by record, field, actor, system and time
// (server-paginated). And a record's lineage: golden values, what each system was last known
// to hold, and for any field, "why does it hold this value?" from its audit history. A record
// is found by its Concord id or by the id one of the systems gives it.

import { useCallback, useMemo, useState } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { HelpCircle, History, Search } from "lucide-react";
import { api, errorMessage } from "../api/client";
import { useWorkspace } from "../api/queries";
import type { AuditRow } from "../api/types";
import { AUDIT_COUNT_CAP, usePagedList } from "../lib/paged";
import { useUrlFilters } from "../lib/urlstate";
import { formatShortTime, formatTime, sameValue } from "../lib/format";
import { DataTable, type Column } from "../components/DataTable";
import { EmptyState, ErrorState, Field, Loading, PageHeader, Pill, Spinner, Value } from "../components/ui";
import { FieldLineage, describeRule, isPerson } from "../components/Lineage";
import { AuditChain } from "../components/AuditChain";

const FILTER_KEYS = ["record_id", "field", "actor", "system", "since", "until"] as const;
/** The "why does this field hold this value?" form: by (a system's id, or blank for Concord's), id, field. */
const WHY_KEYS = ["why_by", "why_id", "why_field"] as const;

/** `datetime-local` input value (local time) to RFC 3339 UTC, or undefined. */
export function localToIso(v: string): string | undefined {
  if (!v) return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

export function AuditPage() {
  const ws = useWorkspace();
  const navigate = useNavigate();
  const [f, setF] = useUrlFilters(FILTER_KEYS);
  const qc = useQueryClient();
  const [why, setWhy] = useUrlFilters(WHY_KEYS);
  const [finding, setFinding] = useState(false);
  const [notFound, setNotFound] = useState<string | null>(null);
  const recordId = /^\d+$/.test(f.record_id) ? Number(f.record_id) : undefined;
  const key = JSON.stringify([recordId, f.field, f.actor, f.system, f.since, f.until]);
  const fetchPage = useCallback(
    (offset: number, limit: number, signal: AbortSignal) =>
      api.list(
        "/api/audit",
        {
          record_id: recordId,
          field: f.field || undefined,
          actor: f.actor || undefined,
          system: f.system || undefined,
          since: localToIso(f.since),
          until: localToIso(f.until),
          limit,
          offset,
        },
        signal,
      ),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [key],
  );
  const list = usePagedList(key, fetchPage, { totalCap: AUDIT_COUNT_CAP });
  const fields = useMemo(() => (ws.data?.objects ?? []).flatMap((o) => o.fields.map((x) => x.name)), [ws.data]);
  const systems = ws.data?.systems ?? [];
  // A system named in a link that the workspace no longer has still reads as its id.
  const whyBy = why.why_by;
  const whySystem = whyBy ? systems.find((s) => s.id === whyBy) ?? { id: whyBy, name: whyBy } : null;
  const editWhy = (patch: Partial<Record<(typeof WHY_KEYS)[number], string>>) => {
    setNotFound(null);
    setWhy(patch);
  };
  const recordPath = (id: number) => `/records/${id}${why.why_field ? `?field=${encodeURIComponent(why.why_field)}` : ""}`;
  // By Concord's id, open the record; by a system's id, ask which record it is linked to first.
  const explain = async () => {
    const typed = why.why_id.trim();
    if (!typed) return;
    if (!whySystem) {
      if (/^\d+$/.test(typed)) navigate(recordPath(Number(typed)));
      return;
    }
    setFinding(true);
    setNotFound(null);
    try {
      const view = await api.get("/api/records", { system: whySystem.id, external_id: typed });
      qc.setQueryData(["record", view.id], view);
      navigate(recordPath(view.id));
    } catch (e) {
      setNotFound(errorMessage(e));
    } finally {
      setFinding(false);
    }
  };

  const columns: Column<AuditRow>[] = [
    { key: "at", header: "When", width: "150px", render: (r) => <span title={formatTime(r.at)}>{formatShortTime(r.at)}</span> },
    {
      key: "actor",
      header: "Who",
      width: "150px",
      render: (r) => (
        <span>
          {isPerson(r) ? <strong>{r.actor}</strong> : <span className="muted">{r.actor}</span>} {r.actor_role ? <span className="faint">({r.actor_role})</span> : null}
        </span>
      ),
    },
    { key: "system", header: "System", width: "100px", render: (r) => r.system ?? <span className="faint">—</span> },
    { key: "dir", header: "Direction", width: "96px", render: (r) => <span className="faint">{r.direction}</span> },
    { key: "record", header: "Record", width: "90px", render: (r) => (r.record_id != null ? <Link to={`/records/${r.record_id}${r.field ? `?field=${encodeURIComponent(r.field)}` : ""}`}>{r.record_id}</Link> : "—") },
    { key: "field", header: "Field", width: "minmax(110px, 1fr)", render: (r) => (r.field ? <span className="mono">{r.field}</span> : <span className="faint">—</span>) },
    {
      key: "change",
      header: "Change",
      width: "minmax(180px, 2fr)",
      render: (r) =>
        (r.before !== undefined && r.before !== null) || (r.after !== undefined && r.after !== null) ? (
          <span>
            <Value v={r.before ?? null} /> <span className="faint">→</span> <Value v={r.after ?? null} />
          </span>
        ) : (
          <span className="faint">—</span>
        ),
    },
    { key: "rule", header: "Rule", width: "minmax(180px, 2fr)", render: (r) => <span title={r.rule}>{describeRule(r.rule)}</span> },
  ];

  return (
    <div className="page fill">
      <PageHeader
        title="Audit"
        description="Every change and every decision, append-only and hash-chained: when, who (the engine or a person, with role), which system and direction, the record, the field, before and after, and the rule that decided."
        actions={<AuditChain />}
      />
      <form
        className="card"
        style={{ padding: 12 }}
        onSubmit={(e) => {
          e.preventDefault();
          void explain();
        }}
        aria-label="Why does a field hold its value"
      >
        <div className="row wrap" style={{ marginBottom: 8 }}>
          <HelpCircle size={18} style={{ color: "var(--accent)" }} aria-hidden="true" />
          <strong>Why does this field hold this value?</strong>
          <span className="faint">Find the record by its Concord id, or by the id one of the systems gives it.</span>
        </div>
        <div className="toolbar">
          <Field label="Find the record by">
            {(id) => (
              <select id={id} className="select" value={whyBy} onChange={(e) => editWhy({ why_by: e.target.value, why_id: "" })}>
                <option value="">Concord record id</option>
                {whySystem && !systems.some((s) => s.id === whySystem.id) ? <option value={whySystem.id}>{whySystem.name} id</option> : null}
                {systems.map((s) => (
                  <option key={s.id} value={s.id}>
                    {s.name} id
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label={whySystem ? `${whySystem.name} id` : "Record id"} error={notFound}>
            {(id) =>
              whySystem ? (
                <input id={id} className="input mono" style={{ width: 160 }} placeholder="as the system shows it" aria-invalid={notFound ? true : undefined} value={why.why_id} onChange={(e) => editWhy({ why_id: e.target.value })} />
              ) : (
                <input id={id} className="input" inputMode="numeric" style={{ width: 110 }} aria-invalid={notFound ? true : undefined} value={why.why_id} onChange={(e) => editWhy({ why_id: e.target.value.replace(/\D/g, "") })} />
              )
            }
          </Field>
          <Field label="Field (optional)">
            {(id) => (
              <select id={id} className="select" value={why.why_field} onChange={(e) => editWhy({ why_field: e.target.value })}>
                <option value="">All fields</option>
                {fields.map((x) => (
                  <option key={x}>{x}</option>
                ))}
              </select>
            )}
          </Field>
          <button type="submit" className="btn primary" disabled={!why.why_id.trim() || finding}>
            {finding ? <Spinner /> : null} Explain
          </button>
        </div>
      </form>
      <div className="toolbar" role="search" aria-label="Search the audit">
        <Field label="Record id">{(id) => <input id={id} className="input" inputMode="numeric" style={{ width: 100 }} value={f.record_id} onChange={(e) => setF({ record_id: e.target.value.replace(/\D/g, "") })} />}</Field>
        <Field label="Field">
          {(id) => (
            <select id={id} className="select" value={f.field} onChange={(e) => setF({ field: e.target.value })}>
              <option value="">Any field</option>
              {fields.map((x) => (
                <option key={x}>{x}</option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Actor">{(id) => <input id={id} className="input" style={{ width: 140 }} placeholder="engine, a name…" value={f.actor} onChange={(e) => setF({ actor: e.target.value })} />}</Field>
        <Field label="System">
          {(id) => (
            <select id={id} className="select" value={f.system} onChange={(e) => setF({ system: e.target.value })}>
              <option value="">Any system</option>
              {systems.map((s) => (
                <option key={s.id} value={s.id}>
                  {s.name}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="From">{(id) => <input id={id} type="datetime-local" className="input" value={f.since} onChange={(e) => setF({ since: e.target.value })} />}</Field>
        <Field label="Until">{(id) => <input id={id} type="datetime-local" className="input" value={f.until} onChange={(e) => setF({ until: e.target.value })} />}</Field>
        {Object.values(f).some(Boolean) ? (
          <button type="button" className="btn ghost" onClick={() => setF({ record_id: "", field: "", actor: "", system: "", since: "", until: "" })}>
            Clear
          </button>
        ) : null}
      </div>
      <DataTable
        label="Audit entries"
        list={list}
        columns={columns}
        rowKey={(r) => r.id}
        onOpen={(r) => (r.record_id != null ? navigate(`/records/${r.record_id}${r.field ? `?field=${encodeURIComponent(r.field)}` : ""}`) : undefined)}
        empty={
          <EmptyState icon={<Search size={22} />} title="No audit entries match">
            Changes and decisions appear here as the engine syncs.
          </EmptyState>
        }
      />
    </div>
  );
}

export function RecordPage() {
  const { id } = useParams();
  const [params, setParams] = useSearchParams();
  const ws = useWorkspace();
  const recordId = Number(id);
  const field = params.get("field");
  const q = useQuery({ queryKey: ["record", recordId], queryFn: () => api.get("/api/records/{id}", { id: recordId }), enabled: Number.isFinite(recordId) });
  const names = new Map((ws.data?.systems ?? []).map((s) => [s.id, s.name]));

  if (q.isPending) return <div className="page"><Loading /></div>;
  if (q.error) {
    return (
      <div className="page">
        <PageHeader title={`Record ${id}`} />
        <div className="card">
          <ErrorState error={q.error} retry={() => void q.refetch()} />
        </div>
      </div>
    );
  }
  const r = q.data;
  const golden = (r.golden ?? {}) as Record<string, unknown>;
  const shadows = (r.shadows ?? {}) as Record<string, Record<string, unknown>>;
  const systems = [...new Set([...Object.keys(r.links), ...Object.keys(shadows)])].sort();
  const schemaFields = ws.data?.objects.find((o) => o.name === r.object)?.fields.map((f) => f.name) ?? [];
  const allFields = [...new Set([...schemaFields, ...Object.keys(golden)])].filter((f) => f in golden || systems.some((s) => f in (shadows[s] ?? {})));
  const pick = (f: string) => setParams(f === field ? {} : { field: f }, { replace: true });
  const displayName = [golden.given_name, golden.family_name].filter((x) => typeof x === "string").join(" ");

  return (
    <div className="page">
      <PageHeader
        title={
          <>
            {r.object} {r.id} {displayName ? <span className="muted">· {displayName}</span> : null} {r.deleted ? <Pill tone="danger">deleted</Pill> : null}
          </>
        }
        description="The golden record (the agreed value of every field) beside what each system was last known to hold. Choose a field to see why it holds its value."
        actions={
          <>
            <Link className="btn" to={`/exceptions?status=all&record_id=${r.id}`}>
              Exceptions
            </Link>
            <Link className="btn" to={`/audit?record_id=${r.id}`}>
              <History size={16} /> Full audit
            </Link>
          </>
        }
      />
      <div className="row wrap">
        {systems.map((s) => (
          <Pill key={s} tone="accent">
            {names.get(s) ?? s}: <span className="mono">{r.links[s] ?? "unlinked"}</span>
          </Pill>
        ))}
      </div>
      <div className="card">
        <table className="simple-table">
          <caption className="sr-only">Fields of record {r.id}</caption>
          <thead>
            <tr>
              <th>Field</th>
              <th>Golden</th>
              {systems.map((s) => (
                <th key={s}>{names.get(s) ?? s}</th>
              ))}
              <th>
                <span className="sr-only">Explain</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {allFields.map((f) => (
              <tr key={f} aria-selected={f === field} style={f === field ? { background: "var(--bg-selected)" } : undefined}>
                <td className="mono">{f}</td>
                <td>
                  <Value v={golden[f] ?? null} />
                </td>
                {systems.map((s) => {
                  const has = f in (shadows[s] ?? {});
                  const v = shadows[s]?.[f];
                  return (
                    <td key={s}>
                      {has ? <Value v={v ?? null} /> : <span className="faint" title="not mapped or not seen">n/a</span>}{" "}
                      {has && !sameValue(v ?? null, golden[f] ?? null) ? <Pill tone="warning" title="differs from golden (a write may be on its way, or a conflict is held)">differs</Pill> : null}
                    </td>
                  );
                })}
                <td>
                  <button type="button" className="btn sm" aria-pressed={f === field} onClick={() => pick(f)}>
                    Why?
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {allFields.length === 0 ? <EmptyState title="No field values yet" /> : null}
      </div>
      {field ? (
        <section className="card" aria-labelledby="why-h">
          <div className="card-head">
            <h2 id="why-h">
              Why does <span className="mono">{field}</span> hold <Value v={golden[field] ?? null} />?
            </h2>
            <button type="button" className="btn sm ghost" onClick={() => setParams({}, { replace: true })}>
              Close
            </button>
          </div>
          <div className="card-body">
            <WhyAnswer recordId={r.id} field={field} value={golden[field] ?? null} />
            <FieldLineage recordId={r.id} field={field} limit={50} />
          </div>
        </section>
      ) : (
        <section className="card" aria-labelledby="hist-h">
          <div className="card-head">
            <h2 id="hist-h">Recent history of the record</h2>
          </div>
          <div className="card-body">
            <FieldLineage recordId={r.id} limit={30} />
          </div>
        </section>
      )}
    </div>
  );
}

/** One sentence from the newest audit entry that set the field's current value. */
function WhyAnswer({ recordId, field, value }: { recordId: number; field: string; value: unknown }) {
  const q = useQuery({ queryKey: ["audit", "lineage", recordId, field, 50], queryFn: () => api.get("/api/audit", { record_id: recordId, field, limit: 50 }) });
  if (!q.data) return null;
  const setter = q.data.find((a) => a.after !== undefined && sameValue(a.after, value));
  if (!setter) return null;
  return (
    <div className="banner info" style={{ marginBottom: 14 }}>
      <HelpCircle size={16} />
      <div className="b-body">
        <strong>{describeRule(setter.rule)}</strong>
        <span>
          Set {formatTime(setter.at)} by {setter.actor}
          {setter.actor_role ? ` (${setter.actor_role})` : ""}
          {setter.system ? `, from ${setter.system}` : ""}.
        </span>
      </div>
    </div>
  );
}
