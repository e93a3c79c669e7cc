// Pushing records to a system again (POST /api/systems/{id}/repush): every field its mapping
// writes, from the golden record, whatever the engine believes the system holds. Three ways to
// choose the records: their ids, a filter on canonical fields, or all of them (confirmed by
// typing the system's id). The outcome says how many matched and how many writes were queued.

import { useState } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { toast } from "sonner";
import { CheckCircle2, Plus, Send, Trash2 } from "lucide-react";
import { api, errorMessage } from "../api/client";
import { useMe } from "../api/queries";
import type { RepushOutcome, SystemConfig, WorkspaceConfig } from "../api/types";
import { describeRepush, repushSelection, type RepushDraft, type RepushMode } from "../lib/reconcile";
import { seesSensitive } from "../lib/roles";
import { Dialog, Field, Spinner } from "./ui";

const EMPTY: RepushDraft = { mode: "ids", object: "", idsText: "", filter: [{ field: "", value: "" }], confirmText: "" };

const MODES: { mode: RepushMode; label: string; sub: string }[] = [
  { mode: "ids", label: "By record id", sub: "the records you name" },
  { mode: "filter", label: "By a filter", sub: "records whose golden values match" },
  { mode: "all", label: "Every record", sub: "the whole object, or everything the system maps" },
];

export function RepushDialog({ system, ws, onClose }: { system: SystemConfig | null; ws: WorkspaceConfig | undefined; onClose: () => void }) {
  const me = useMe();
  const qc = useQueryClient();
  const [d, setD] = useState<RepushDraft>(EMPTY);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<RepushOutcome | null>(null);
  const [tried, setTried] = useState(false);
  if (!system) return null;
  const mapped = (ws?.mappings ?? []).filter((m) => m.system === system.id).map((m) => m.object);
  const object = d.mode === "filter" && !d.object ? mapped[0] ?? "" : d.object;
  const schema = ws?.objects.find((o) => o.name === object);
  const hidden = new Set((ws?.policies ?? []).find((p) => p.object === object)?.fields.filter((f) => f.sensitive).map((f) => f.field) ?? []);
  // A role that may not see a sensitive value may not filter on it either (the count would tell).
  const fields = (schema?.fields ?? []).filter((f) => seesSensitive(me.role) || !(f.sensitive || hidden.has(f.name)));
  const draft = { ...d, object };
  const built = repushSelection(draft, system.id, (f) => schema?.fields.find((x) => x.name === f)?.type);
  const error = "error" in built ? built.error : null;

  const close = () => {
    setD(EMPTY);
    setResult(null);
    setTried(false);
    onClose();
  };
  const submit = async () => {
    setTried(true);
    if (!("selection" in built)) return;
    setBusy(true);
    try {
      const r = await api.post("/api/systems/{id}/repush", { id: system.id }, built.selection);
      setResult(r);
      toast.success(`Re-push to ${system.name}`, { description: describeRepush(r) });
      void qc.invalidateQueries({ queryKey: ["metrics"] });
    } catch (e) {
      toast.error(`Could not re-push to ${system.name}`, { description: errorMessage(e) });
    } finally {
      setBusy(false);
    }
  };
  const setRow = (i: number, patch: Partial<{ field: string; value: string }>) => setD({ ...d, object, filter: d.filter.map((r, j) => (j === i ? { ...r, ...patch } : r)) });

  return (
    <Dialog
      open
      onClose={close}
      title={`Re-push records to ${system.name}`}
      footer={
        result ? (
          <>
            <span className="spacer" />
            <button type="button" className="btn" onClick={() => setResult(null)}>
              Push more
            </button>
            <button type="button" className="btn primary" onClick={close} data-autofocus>
              Done
            </button>
          </>
        ) : (
          <>
            <span className="spacer" />
            <button type="button" className="btn" onClick={close} disabled={busy}>
              Cancel
            </button>
            <button type="button" className={`btn ${d.mode === "all" ? "danger" : "primary"}`} onClick={() => void submit()} disabled={busy || (tried && !!error) || (d.mode === "all" && !!error)}>
              {busy ? <Spinner /> : <Send size={16} />} {d.mode === "all" ? "Push every record" : "Push"}
            </button>
          </>
        )
      }
    >
      {result ? (
        <div className="banner success" role="status">
          <CheckCircle2 size={16} />
          <div className="b-body">
            <strong>{describeRepush(result)}</strong>
            <span>Each write carries every field the mapping writes, from the golden record. The system's card shows them queued, then sent; a write that fails for good becomes a dead letter.</span>
          </div>
        </div>
      ) : (
        <>
          <p className="muted" style={{ margin: 0 }}>
            Writes every field the mapping writes from the golden record, whatever the engine believes {system.name} holds. A record {system.name} does not hold is created there.
          </p>
          <div className="col" role="radiogroup" aria-label="Which records">
            {MODES.map((m) => (
              <label key={m.mode} className="row" style={{ alignItems: "flex-start", gap: 8, cursor: "pointer" }}>
                <input type="radio" name={`repush-${system.id}`} checked={d.mode === m.mode} onChange={() => setD({ ...d, mode: m.mode })} />
                <span>
                  <strong>{m.label}</strong> <span className="faint">{m.sub}</span>
                </span>
              </label>
            ))}
          </div>
          <Field label="Object" hint={d.mode === "filter" ? "The filter compares this object's canonical fields." : undefined}>
            {(id) => (
              <select id={id} className="select" value={object} onChange={(e) => setD({ ...d, object: e.target.value, filter: [{ field: "", value: "" }] })}>
                {d.mode !== "filter" ? <option value="">Every object {system.name} maps ({mapped.join(", ") || "none"})</option> : null}
                {mapped.map((o) => (
                  <option key={o} value={o}>
                    {o}
                  </option>
                ))}
              </select>
            )}
          </Field>
          {d.mode === "ids" ? (
            <Field label="Record ids" hint="Separated by commas or spaces, e.g. 12, 57, 301." error={tried ? error : null}>
              {(id) => <textarea id={id} className="textarea mono" rows={3} data-autofocus value={d.idsText} onChange={(e) => setD({ ...d, idsText: e.target.value })} />}
            </Field>
          ) : null}
          {d.mode === "filter" ? (
            <div className="col" role="group" aria-label="Filter">
              {d.filter.map((r, i) => {
                const def = fields.find((f) => f.name === r.field);
                return (
                  <div key={i} className="row" style={{ alignItems: "flex-end" }}>
                    <Field label={i === 0 ? "Field" : "and field"}>
                      {(id) => (
                        <select id={id} className="select mono" value={r.field} onChange={(e) => setRow(i, { field: e.target.value, value: "" })}>
                          <option value="">Choose…</option>
                          {fields.map((f) => (
                            <option key={f.name} value={f.name}>
                              {f.name}
                            </option>
                          ))}
                        </select>
                      )}
                    </Field>
                    <Field label="equals" className="grow">
                      {(id) =>
                        def?.type === "enum" && def.values?.length ? (
                          <select id={id} className="select" value={r.value} onChange={(e) => setRow(i, { value: e.target.value })}>
                            <option value="">Choose…</option>
                            {def.values.map((v) => (
                              <option key={v} value={v}>
                                {v}
                              </option>
                            ))}
                          </select>
                        ) : (
                          <input id={id} className="input" value={r.value} placeholder={def ? `a ${def.type}, canonical form` : "value"} onChange={(e) => setRow(i, { value: e.target.value })} />
                        )
                      }
                    </Field>
                    <button type="button" className="btn sm ghost icon" aria-label={`Remove condition ${i + 1}`} disabled={d.filter.length === 1} onClick={() => setD({ ...d, object, filter: d.filter.filter((_, j) => j !== i) })}>
                      <Trash2 size={13} />
                    </button>
                  </div>
                );
              })}
              <div className="row">
                <button type="button" className="btn sm" onClick={() => setD({ ...d, object, filter: [...d.filter, { field: "", value: "" }] })}>
                  <Plus size={13} /> Add condition
                </button>
                {fields.length < (schema?.fields.length ?? 0) ? <span className="hint">Sensitive fields are left out: your role may not see their values.</span> : null}
              </div>
              {tried && error ? (
                <span className="err" role="alert">
                  {error}
                </span>
              ) : null}
            </div>
          ) : null}
          {d.mode === "all" ? (
            <>
              <div className="banner warning">
                <div className="b-body">
                  Pushes <strong style={{ display: "inline" }}>every {object || "record"}</strong>
                  {object ? " record" : ""} to {system.name}: one write per record, each overwriting what {system.name} holds for the mapped fields.
                </div>
              </div>
              <Field label={`Type ${system.id} to confirm`}>
                {(id) => <input id={id} className="input mono" autoComplete="off" data-autofocus value={d.confirmText} onChange={(e) => setD({ ...d, confirmText: e.target.value })} />}
              </Field>
            </>
          ) : null}
        </>
      )}
    </Dialog>
  );
}
