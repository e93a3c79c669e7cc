// The audit's hash chain at a glance: whether every entry still matches its fields and the
// entry before it, checked by the engine over the whole audit when asked (it reads every
// entry, so it runs on demand, not on every visit).

import { useQuery } from "@tanstack/react-query";
import { ShieldAlert, ShieldCheck } from "lucide-react";
import { api, errorMessage } from "../api/client";
import type { ChainReport } from "../api/types";
import { Pill, Spinner } from "./ui";

/** What the chain's state means for a steward, in one sentence. */
export function describeChain(r: ChainReport): string {
  if (r.state === "broken" && r.first_broken) {
    return `Audit chain broken at entry ${r.first_broken.id}: ${r.first_broken.reason}.`;
  }
  const head = r.head ? ` Head: entry ${r.head.id}, ${r.head.hash.slice(0, 12)}…` : "";
  const triggers = r.triggers_present ? "" : " The append-only triggers were removed.";
  return `Audit chain intact over ${r.entries.toLocaleString()} entries.${head}${triggers}`;
}

export function AuditChain() {
  const q = useQuery({
    queryKey: ["audit", "chain"],
    queryFn: ({ signal }) => api.get("/api/audit/chain", undefined, signal),
    staleTime: Infinity,
    refetchOnWindowFocus: false,
  });
  const verify = (
    <button type="button" className="btn" onClick={() => void q.refetch()} disabled={q.isFetching}>
      {q.isFetching ? <Spinner /> : null} Verify now
    </button>
  );
  if (q.isError) {
    return (
      <div className="row" role="status" aria-label="Audit chain">
        <Pill tone="warning">Chain not checked: {errorMessage(q.error)}</Pill>
        {verify}
      </div>
    );
  }
  if (!q.data) {
    return (
      <div className="row" role="status" aria-label="Audit chain">
        <Spinner /> Checking the audit chain…
      </div>
    );
  }
  const r = q.data;
  const intact = r.state === "intact";
  return (
    <div className="row" role="status" aria-label="Audit chain" title={describeChain(r)}>
      {intact ? (
        <Pill tone={r.triggers_present ? "success" : "warning"}>
          <ShieldCheck size={14} aria-hidden /> Chain intact · {r.entries.toLocaleString()} entries
        </Pill>
      ) : (
        <Pill tone="danger">
          <ShieldAlert size={14} aria-hidden /> Chain broken at entry {r.first_broken?.id}
        </Pill>
      )}
      {!r.triggers_present ? <Pill tone="warning">Append-only triggers removed</Pill> : null}
      {!intact && r.first_broken ? <span className="muted">{r.first_broken.reason}</span> : null}
      {verify}
    </div>
  );
}
