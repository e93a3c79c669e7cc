// Resolving a filtered set of exceptions by one rule. The set is previewed first, one row per
// record with its values (now → chosen) and what deciding it does; the resolution names the
// preview it was shown, so a set that changed in between is refused rather than approved
// unseen. Four-eyes fields are approved here by the first steward, then in the approvals queue
// by a second.

import { useMemo, useState } from "react";
import { Link } from "react-router";
import { useQuery } from "@tanstack/react-query";
import { toast } from "sonner";
import { CheckCheck } from "lucide-react";
import { ApiError, api, errorMessage } from "../api/client";
import type { BulkOutcome, Choice } from "../api/types";
import { confirmLabel, describeCounts, stepCounts } from "../lib/approvals";
import { LOCALE, formatAge } from "../lib/format";
import { kindLabel } from "../lib/exceptions";
import { BulkItems } from "./BulkItems";
import { Dialog, ErrorState, Field, Loading, Spinner } from "./ui";

export type BulkFilter = { kind: string | null; system: string | null; field: string | null; age: number | null; record_id: number | null };

function choiceOf(rule: string): Choice {
  if (rule === "golden") return { choose: "golden" };
  if (rule === "base") return { choose: "base" };
  return { choose: "system", value: rule.slice("system:".length) };
}

export function BulkResolveDialog(props: { open: boolean; onClose: () => void; filter: BulkFilter; systems: { id: string; name: string }[]; loaded: number | null; onDone: () => void }) {
  const [rule, setRule] = useState<string>("golden");
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<BulkOutcome | null>(null);
  const { filter } = props;
  // Fixed while the dialog is open, so the preview and the resolution select the same set.
  const openedAt = useMemo(() => Date.now(), [props.open, filter.age]);
  const body = {
    filter: {
      kind: filter.kind,
      system: filter.system,
      field: filter.field,
      record_id: filter.record_id,
      status: "open",
      opened_before: filter.age ? new Date(openedAt - filter.age * 1000).toISOString() : null,
    },
    choice: choiceOf(rule),
  };
  const preview = useQuery({
    queryKey: ["bulk-preview", body],
    queryFn: () => api.post("/api/exceptions/bulk-resolve/preview", {}, body),
    enabled: props.open && result === null,
    staleTime: Infinity,
    refetchOnWindowFocus: false,
  });
  const counts = preview.data ? stepCounts(preview.data.items) : null;
  const submit = async () => {
    if (!preview.data) return;
    setBusy(true);
    try {
      const r = await api.post("/api/exceptions/bulk-resolve", {}, { ...body, note, shown: preview.data.digest });
      setResult(r);
      props.onDone();
      const parts = [`${r.applied} resolved`];
      if (r.awaiting_second_approval) parts.push(`${r.awaiting_second_approval} await a second approver`);
      if (r.failed.length) parts.push(`${r.failed.length} not resolved`);
      (r.failed.length ? toast.warning : toast.success)(parts.join(", "));
    } catch (err) {
      if (err instanceof ApiError && err.code === "preview_changed") {
        toast.warning("The set changed while you reviewed it", { description: "Nothing was resolved. Review the values again." });
        void preview.refetch();
      } else {
        toast.error("Bulk resolve failed", { description: errorMessage(err) });
      }
    } finally {
      setBusy(false);
    }
  };
  const close = () => {
    setResult(null);
    props.onClose();
  };
  const scope = [filter.kind ? kindLabel(filter.kind) : "all kinds", filter.system ? `from ${filter.system}` : null, filter.field ? `on ${filter.field}` : null, filter.age ? `older than ${formatAge(filter.age)}` : null, filter.record_id != null ? `record ${filter.record_id}` : null]
    .filter(Boolean)
    .join(", ");
  const acting = counts ? counts.apply + counts.first_approval + counts.second_approval : 0;
  return (
    <Dialog
      open={props.open}
      onClose={close}
      wide
      title="Resolve filtered exceptions"
      footer={
        result ? (
          <>
            <span className="spacer" />
            <button type="button" className="btn primary" onClick={close}>
              Done
            </button>
          </>
        ) : (
          <>
            <span className="spacer" />
            <button type="button" className="btn" onClick={close}>
              Cancel
            </button>
            <button type="button" className="btn primary" disabled={busy || !preview.data || preview.isFetching || acting === 0} onClick={() => void submit()}>
              {busy ? <Spinner /> : <CheckCheck size={16} />} {counts ? confirmLabel(counts) : "Resolve"}
            </button>
          </>
        )
      }
    >
      {result ? (
        <div className="col">
          <div className="banner info">
            <div className="b-body">
              <strong>{result.applied} applied</strong>
              {result.awaiting_second_approval > 0 ? (
                <span>
                  {result.awaiting_second_approval} need a second approver (four-eyes fields): they wait in <Link to="/approvals">Approvals</Link>.{" "}
                </span>
              ) : null}
              {result.failed.length > 0 ? <span>{result.failed.length} could not be resolved by this rule:</span> : null}
            </div>
          </div>
          {result.failed.length > 0 ? <pre className="block">{result.failed.join("\n")}</pre> : null}
        </div>
      ) : (
        <>
          <p>
            Applies one rule to every <strong>open</strong> exception matching: <strong>{scope}</strong>
            {props.loaded != null ? ` (${props.loaded.toLocaleString(LOCALE)} now)` : ""}, up to 1,000 per run. Review each record's values below before you confirm.
          </p>
          <Field label="Keep">
            {(id) => (
              <select id={id} className="select" value={rule} onChange={(e) => setRule(e.target.value)} data-autofocus>
                <option value="golden">The golden value (undo the incoming change)</option>
                <option value="base">The base (the last agreed value)</option>
                {props.systems.map((s) => (
                  <option key={s.id} value={`system:${s.id}`}>
                    {s.name}'s value
                  </option>
                ))}
              </select>
            )}
          </Field>
          {preview.isPending ? (
            <Loading label="Computing what this rule would do…" />
          ) : preview.isError ? (
            <ErrorState error={preview.error} retry={() => void preview.refetch()} />
          ) : (
            <section className="col" aria-label="What this rule would do" style={{ gap: 8 }}>
              <p className="muted" role="status">
                {counts ? describeCounts(counts) : null}
                {preview.data.four_eyes > 0 ? ". Four-eyes fields need a second steward, who sees these same values in Approvals." : "."}
              </p>
              <BulkItems items={preview.data.items} caption="Each record's value now and the value chosen" />
            </section>
          )}
          <Field label="Note (kept in the audit)">
            {(id) => <textarea id={id} className="textarea" value={note} onChange={(e) => setNote(e.target.value)} />}
          </Field>
        </>
      )}
    </Dialog>
  );
}
