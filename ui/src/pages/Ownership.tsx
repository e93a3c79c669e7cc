// Ownership: per canonical field, which systems may write it (one owner, writers, or open),
// how conflicts are decided, what a non-owner's change does, and whether the field is
// sensitive or needs a second approver. Saving shows what changes and what the new rules would
// decide now (the what-if), then PUT /api/policies/{object}.

import { useEffect, useMemo, useState } from "react";
import { useSearchParams } from "react-router";
import { useQueryClient } from "@tanstack/react-query";
import { toast } from "sonner";
import { Lock, Save, Undo2 } from "lucide-react";
import { api, errorMessage } from "../api/client";
import { useMe, useWorkspace } from "../api/queries";
import type { FieldPolicy } from "../api/types";
import { can, whyNot } from "../lib/roles";
import { accessOf, conflictFromKey, conflictKey, isOpen, normalize, openPolicy, policyWarnings, samePolicy, setAccess, type Access } from "../lib/policy";
import { EmptyState, ErrorState, Loading, PageHeader, Pill, Spinner } from "../components/ui";
import { useRemovalConfirmation } from "../components/ConfirmRemoval";
import { OwnershipSaveDialog } from "../components/OwnershipSaveDialog";
import { UnsavedGuard } from "../components/UnsavedGuard";

export function OwnershipPage() {
  const me = useMe();
  const ws = useWorkspace();
  const qc = useQueryClient();
  const [params, setParams] = useSearchParams();
  const objects = ws.data?.objects ?? [];
  const object = params.get("object") ?? objects[0]?.name ?? "";
  const schema = objects.find((o) => o.name === object);
  const systems = ws.data?.systems ?? [];
  const mayEdit = can(me.role, "edit_ownership");

  const saved = useMemo(() => {
    const m = new Map<string, FieldPolicy>();
    for (const p of ws.data?.policies?.find((x) => x.object === object)?.fields ?? []) m.set(p.field, normalize(p));
    return m;
  }, [ws.data, object]);
  const [draft, setDraft] = useState<Map<string, FieldPolicy>>(new Map());
  const [saving, setSaving] = useState(false);
  const [reviewing, setReviewing] = useState(false);
  useEffect(() => setDraft(new Map(saved)), [saved]);
  const confirmation = useRemovalConfirmation("Could not save ownership");

  if (ws.isPending) return <div className="page"><Loading /></div>;
  if (ws.error) return <div className="page"><ErrorState error={ws.error} retry={() => void ws.refetch()} /></div>;

  const policy = (field: string) => draft.get(field) ?? saved.get(field) ?? openPolicy(field);
  const update = (field: string, p: FieldPolicy) => setDraft((d) => new Map(d).set(field, p));
  const dirtyFields = (schema?.fields ?? []).filter((f) => !samePolicy(policy(f.name), saved.get(f.name) ?? openPolicy(f.name))).map((f) => f.name);
  const systemIds = systems.map((s) => s.id);

  const draftFields = () =>
    (schema?.fields ?? []).map((f) => normalize(policy(f.name))).filter((p) => saved.has(p.field) || !samePolicy(p, openPolicy(p.field)));

  const save = async (redecide: boolean) => {
    if (!schema) return;
    setSaving(true);
    try {
      const fields = draftFields();
      const changed = dirtyFields.length;
      await confirmation.attempt(async (confirm) => {
        const { headers } = await api.putWithHeaders("/api/policies/{object}", { object, confirm: confirm || undefined, redecide: redecide || undefined }, fields);
        const decided = Number(headers.get("x-decided") ?? "0") || 0;
        const what = `${changed} field${changed === 1 ? "" : "s"} changed.`;
        toast.success(`Ownership of ${object} saved`, { description: decided ? `${what} ${decided} held item${decided === 1 ? "" : "s"} decided.` : what });
        setReviewing(false);
        await qc.invalidateQueries({ queryKey: ["workspace"] });
        void qc.invalidateQueries({ queryKey: ["metrics"] });
      });
    } catch (e) {
      toast.error("Could not save ownership", { description: errorMessage(e) });
    } finally {
      setSaving(false);
    }
  };

  return (
    <div className="page">
      {confirmation.dialog}
      <UnsavedGuard dirty={dirtyFields.length > 0 && !reviewing} what={`The ownership of ${object}`} />
      {reviewing && schema ? <OwnershipSaveDialog object={object} fields={draftFields()} busy={saving} onSave={(redecide) => void save(redecide)} onClose={() => setReviewing(false)} /> : null}
      <PageHeader
        title="Ownership"
        description="Who may write each field. An owner is the source of truth; writers may change it too, and their conflicts follow the policy. With no owner and no writers, every system may write."
        actions={
          <>
            {objects.length > 1 ? (
              <select className="select" aria-label="Object" value={object} onChange={(e) => setParams({ object: e.target.value })}>
                {objects.map((o) => (
                  <option key={o.name}>{o.name}</option>
                ))}
              </select>
            ) : null}
            <button type="button" className="btn" disabled={dirtyFields.length === 0 || saving} onClick={() => setDraft(new Map(saved))}>
              <Undo2 size={16} /> Discard changes
            </button>
            <button type="button" className="btn primary" disabled={!mayEdit || dirtyFields.length === 0 || saving} onClick={() => setReviewing(true)} title={mayEdit ? undefined : whyNot(me.role, "edit_ownership")}>
              {saving ? <Spinner /> : <Save size={16} />} Save{dirtyFields.length ? ` (${dirtyFields.length})` : ""}
            </button>
          </>
        }
      />
      {!mayEdit ? <div className="banner info"><div className="b-body">{whyNot(me.role, "edit_ownership")} The matrix is read-only.</div></div> : null}
      {!schema ? (
        <div className="card">
          <EmptyState title="No objects in the workspace">The canonical schema defines the objects and their fields.</EmptyState>
        </div>
      ) : systems.length === 0 ? (
        <div className="card">
          <EmptyState title="No systems yet">Add systems first; then assign who owns each field.</EmptyState>
        </div>
      ) : (
        <div className="card" style={{ overflow: "auto" }}>
          <table className="matrix" aria-label={`Ownership of ${object} fields`}>
            <thead>
              <tr>
                <th scope="col" className="sticky-col">Field</th>
                {systems.map((s) => (
                  <th scope="col" key={s.id}>
                    {s.name}
                  </th>
                ))}
                <th scope="col">Conflict policy</th>
                <th scope="col">Non-owner change</th>
                <th scope="col">Sensitive</th>
                <th scope="col" title="Manual resolutions need a second person's approval">Four eyes</th>
              </tr>
            </thead>
            <tbody>
              {schema.fields.map((f) => {
                const p = normalize(policy(f.name));
                const dirty = dirtyFields.includes(f.name);
                const warnings = policyWarnings(p, systemIds);
                return (
                  <tr key={f.name} className={dirty ? "dirty" : undefined}>
                    <td className="fieldname sticky-col">
                      {f.name} <span className="faint" style={{ fontWeight: 400 }}>{f.type}</span>
                      {isOpen(p) ? <div><Pill title="No owner and no writers: every system may write">open</Pill></div> : null}
                      {warnings.map((w) => (
                        <div key={w} style={{ color: "var(--danger)", fontSize: 12, fontFamily: "inherit" }} role="alert">
                          {w}
                        </div>
                      ))}
                    </td>
                    {systems.map((s) => {
                      const a = accessOf(p, s.id);
                      return (
                        <td key={s.id}>
                          <div className="seg" role="radiogroup" aria-label={`${s.name} access to ${f.name}`}>
                            {(["owner", "writer", "read"] as Access[]).map((opt) => (
                              <button
                                key={opt}
                                type="button"
                                role="radio"
                                className={opt}
                                aria-checked={a === opt}
                                disabled={!mayEdit}
                                onClick={() => update(f.name, setAccess(p, s.id, opt))}
                              >
                                {opt === "owner" ? "Owner" : opt === "writer" ? "Writer" : "Read"}
                              </button>
                            ))}
                          </div>
                        </td>
                      );
                    })}
                    <td>
                      <select className="select" aria-label={`Conflict policy of ${f.name}`} value={conflictKey(p.conflict)} disabled={!mayEdit} onChange={(e) => update(f.name, { ...p, conflict: conflictFromKey(e.target.value) })}>
                        <option value="owner_wins" disabled={!p.owner}>
                          Owner wins
                        </option>
                        <option value="last_write_wins">Last write wins</option>
                        {systems.map((s) => (
                          <option key={s.id} value={`prefer:${s.id}`}>
                            Prefer {s.name}
                          </option>
                        ))}
                        <option value="manual">Manual (steward)</option>
                      </select>
                    </td>
                    <td>
                      <select className="select" aria-label={`Non-owner policy of ${f.name}`} value={p.non_owner} disabled={!mayEdit || isOpen(p)} onChange={(e) => update(f.name, { ...p, non_owner: e.target.value as "revert" | "quarantine" })}>
                        <option value="revert">Revert</option>
                        <option value="quarantine">Quarantine</option>
                      </select>
                    </td>
                    <td>
                      {f.sensitive ? (
                        <span className="row" title="Sensitive in the canonical schema">
                          <Lock size={14} aria-hidden="true" /> <span className="muted">schema</span>
                        </span>
                      ) : (
                        <input type="checkbox" aria-label={`${f.name} is sensitive`} checked={p.sensitive} disabled={!mayEdit} onChange={(e) => update(f.name, { ...p, sensitive: e.target.checked })} />
                      )}
                    </td>
                    <td>
                      <input type="checkbox" aria-label={`${f.name} needs a second approver`} checked={p.four_eyes} disabled={!mayEdit} onChange={(e) => update(f.name, { ...p, four_eyes: e.target.checked })} />
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
