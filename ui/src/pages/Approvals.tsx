// The second approver's queue: resolutions of four-eyes fields (pay, bank details) one steward
// approved, waiting for a different person. Each row shows the record's value now, the value
// approved, and who approved it. Approving opens the exact set again as the engine computes
// it, and the approval names that set: a value that changed in between is refused, never
// approved unseen.

import { useState } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { toast } from "sonner";
import { UserCheck } from "lucide-react";
import { ApiError, api, errorMessage } from "../api/client";
import { useApprovals, useMe } from "../api/queries";
import type { BulkItem } from "../api/types";
import { confirmLabel, stepCounts } from "../lib/approvals";
import { can, whyNot } from "../lib/roles";
import { BulkItems } from "../components/BulkItems";
import { Dialog, EmptyState, ErrorState, Field, Loading, PageHeader, Spinner } from "../components/ui";

export function ApprovalsPage() {
  const me = useMe();
  const queue = useApprovals();
  const [approving, setApproving] = useState<BulkItem[] | null>(null);
  const mayApprove = can(me.role, "resolve_exceptions");
  const items = queue.data?.items ?? [];
  const yours = items.filter((i) => i.step === "second_approval");
  const others = items.filter((i) => i.step !== "second_approval");
  return (
    <div className="page">
      <PageHeader
        title="Approvals"
        description="Resolutions of four-eyes fields that one steward approved and a second person must approve. Each shows the record's value now and the value approved."
        actions={
          yours.length > 0 ? (
            <button type="button" className="btn primary" disabled={!mayApprove} title={mayApprove ? undefined : whyNot(me.role, "resolve_exceptions")} onClick={() => setApproving(yours)}>
              <UserCheck size={16} /> Review and approve {yours.length}
            </button>
          ) : null
        }
      />
      {queue.isPending ? (
        <Loading />
      ) : queue.isError ? (
        <ErrorState error={queue.error} retry={() => void queue.refetch()} />
      ) : items.length === 0 ? (
        <EmptyState icon={<UserCheck size={22} />} title="Nothing awaits a second approval">
          When a steward approves a value of a four-eyes field, it waits here for a different person.
        </EmptyState>
      ) : (
        <>
          <section className="section" aria-labelledby="awaiting-you">
            <h2 id="awaiting-you">Awaiting you ({yours.length})</h2>
            {yours.length ? <BulkItems items={yours} caption="Approvals awaiting you" /> : <p className="faint">None: the approvals below wait for someone other than you.</p>}
          </section>
          {others.length > 0 ? (
            <section className="section" aria-labelledby="awaiting-others">
              <h2 id="awaiting-others">Awaiting another steward ({others.length})</h2>
              <p className="faint">You gave the first approval of these: a different person must approve them.</p>
              <BulkItems items={others} caption="Approvals awaiting another steward" />
            </section>
          ) : null}
        </>
      )}
      {approving ? <ApproveDialog ids={approving.map((i) => i.exception)} onClose={() => setApproving(null)} /> : null}
    </div>
  );
}

/** The second approval of a set: the engine's preview of exactly those exceptions, then the approval naming it. */
function ApproveDialog({ ids, onClose }: { ids: number[]; onClose: () => void }) {
  const qc = useQueryClient();
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const body = { filter: { ids, awaiting_approval: true, status: "open" }, choice: { choose: "approved" as const } };
  const preview = useQuery({
    queryKey: ["approve-preview", ids],
    queryFn: () => api.post("/api/exceptions/bulk-resolve/preview", {}, body),
    staleTime: Infinity,
    refetchOnWindowFocus: false,
  });
  const counts = preview.data ? stepCounts(preview.data.items) : null;
  const approve = async () => {
    if (!preview.data) return;
    setBusy(true);
    try {
      const r = await api.post("/api/exceptions/bulk-resolve", {}, { ...body, note, shown: preview.data.digest });
      void qc.invalidateQueries({ queryKey: ["approvals"] });
      void qc.invalidateQueries({ queryKey: ["metrics"] });
      if (r.failed.length) {
        toast.warning(`${r.applied} approved and applied, ${r.failed.length} not`, { description: r.failed.slice(0, 3).join("\n") });
      } else {
        toast.success(`${r.applied} approved and applied`);
      }
      onClose();
    } catch (err) {
      if (err instanceof ApiError && err.code === "preview_changed") {
        toast.warning("These approvals changed while you reviewed them", { description: "Nothing was approved. Review the values again." });
        void preview.refetch();
      } else {
        toast.error("Approval failed", { description: errorMessage(err) });
      }
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog
      open
      wide
      onClose={onClose}
      title="Second approval"
      footer={
        <>
          <span className="spacer" />
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="button" className="btn primary" disabled={busy || !counts || preview.isFetching || counts.second_approval === 0} onClick={() => void approve()}>
            {busy ? <Spinner /> : <UserCheck size={16} />} {counts ? confirmLabel(counts) : "Approve"}
          </button>
        </>
      }
    >
      <p>Approving applies each value below to every system that holds something else. Check each record's value now and the value approved.</p>
      {preview.isPending ? <Loading label="Loading the values…" /> : preview.isError ? <ErrorState error={preview.error} retry={() => void preview.refetch()} /> : <BulkItems items={preview.data.items} caption="The values you approve" />}
      <Field label="Note (kept in the audit)">{(id) => <textarea id={id} className="textarea" value={note} onChange={(e) => setNote(e.target.value)} />}</Field>
    </Dialog>
  );
}
