// Tokens: who may use the console. Admins issue a token to a person with a role (the secret is
// shown once, here, and never again), see every live token with its id, issuer and last use,
// and revoke one (it gets 401 at once). The audit records issuing and revoking by token id.
// Four-eyes approval counts people: two tokens for one person's name are one approver.

import { useState } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { toast } from "sonner";
import { Copy, KeyRound, Plus, Trash2 } from "lucide-react";
import { api, errorMessage } from "../api/client";
import { useMe } from "../api/queries";
import type { IssuedToken, Role, TokenInfo } from "../api/types";
import { ROLE_LABEL, can, whyNot } from "../lib/roles";
import { nameProblem, normalizeName, revokeBlocked, sharedNames } from "../lib/tokens";
import { formatTime } from "../lib/format";
import { Dialog, EmptyState, ErrorState, Field, Loading, PageHeader, Pill, Spinner } from "../components/ui";

const ROLES: Role[] = ["admin", "steward", "support", "viewer", "scrape"];

export function TokensPage() {
  const me = useMe();
  const qc = useQueryClient();
  const mayManage = can(me.role, "manage_tokens");
  const tokens = useQuery({ queryKey: ["tokens"], queryFn: () => api.get("/api/tokens"), enabled: mayManage });
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("steward");
  const [touched, setTouched] = useState(false);
  const [issuing, setIssuing] = useState(false);
  const [issued, setIssued] = useState<IssuedToken | null>(null);
  const [revoking, setRevoking] = useState<TokenInfo | null>(null);
  const [busy, setBusy] = useState(false);
  const problem = nameProblem(name);

  const issue = async () => {
    setTouched(true);
    if (problem) return;
    setIssuing(true);
    try {
      const t = await api.post("/api/tokens", {}, { name: normalizeName(name), role });
      setIssued(t);
      setName("");
      setTouched(false);
      await qc.invalidateQueries({ queryKey: ["tokens"] });
    } catch (e) {
      toast.error("Could not issue the token", { description: errorMessage(e) });
    } finally {
      setIssuing(false);
    }
  };

  const revoke = async (t: TokenInfo) => {
    setBusy(true);
    try {
      await api.delete("/api/tokens/{id}", { id: t.id });
      toast.success(`Token of ${t.name} revoked`, { description: `${t.id} is refused from now on.` });
      setRevoking(null);
      await qc.invalidateQueries({ queryKey: ["tokens"] });
    } catch (e) {
      toast.error("Could not revoke the token", { description: errorMessage(e) });
    } finally {
      setBusy(false);
    }
  };

  if (!mayManage) {
    return (
      <div className="page">
        <PageHeader title="Tokens" />
        <div className="card">
          <EmptyState icon={<KeyRound size={22} />} title="Admins manage tokens">
            {whyNot(me.role, "manage_tokens")}
          </EmptyState>
        </div>
      </div>
    );
  }

  const all = tokens.data ?? [];
  const shared = sharedNames(all);
  return (
    <div className="page">
      <PageHeader
        title="Tokens"
        description="Who may use the console, and with which role. A token's secret is shown once when it is issued; the list shows its id only. Tokens issued here last until they are revoked, across restarts (the state file keeps a digest of each, never the secret); the launch's own token lasts until the engine restarts. Two tokens for the same person still count as one approver."
      />
      <section className="card" aria-labelledby="issue-token">
        <div className="card-head">
          <Plus size={18} aria-hidden="true" />
          <h2 id="issue-token">Issue a token</h2>
        </div>
        <form
          className="card-body row wrap"
          style={{ alignItems: "flex-end" }}
          onSubmit={(e) => {
            e.preventDefault();
            void issue();
          }}
        >
          <Field label="Person's name" error={touched ? problem : null} hint="Trimmed, and runs of spaces made one.">
            {(id) => <input id={id} className="input" value={name} onChange={(e) => setName(e.target.value)} onBlur={() => setTouched(true)} autoComplete="off" />}
          </Field>
          <Field label="Role">
            {(id) => (
              <select id={id} className="select" value={role} onChange={(e) => setRole(e.target.value as Role)}>
                {ROLES.map((r) => (
                  <option key={r} value={r}>
                    {ROLE_LABEL[r]}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <button type="submit" className="btn primary" disabled={issuing}>
            {issuing ? <Spinner /> : <KeyRound size={16} />} Issue token
          </button>
        </form>
      </section>

      <section className="card" aria-labelledby="live-tokens">
        <div className="card-head">
          <KeyRound size={18} aria-hidden="true" />
          <h2 id="live-tokens">Live tokens</h2>
        </div>
        <div className="card-body flush">
          {tokens.isPending ? (
            <Loading />
          ) : tokens.error ? (
            <ErrorState error={tokens.error} retry={() => void tokens.refetch()} />
          ) : (
            <table className="simple-table" aria-label="Live tokens">
              <thead>
                <tr>
                  <th>Person</th>
                  <th>Role</th>
                  <th>Id</th>
                  <th>Issued</th>
                  <th>Issued by</th>
                  <th>Last used</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {all.map((t) => {
                  const blocked = revokeBlocked(t, me, all);
                  return (
                    <tr key={t.id}>
                      <td>
                        <strong>{t.name}</strong> {t.id === me.id ? <Pill tone="accent">you</Pill> : null}{" "}
                        {shared.has(t.name.toLowerCase()) ? <Pill tone="info" title="Several tokens carry this name: they are one person, one approver">same person</Pill> : null}
                      </td>
                      <td>{ROLE_LABEL[t.role]}</td>
                      <td className="mono">{t.id}</td>
                      <td>{formatTime(t.issued_at)}</td>
                      <td className="mono">{t.issued_by ?? <span className="faint">launch</span>}</td>
                      <td>{t.last_used_at ? formatTime(t.last_used_at) : <span className="faint">never</span>}</td>
                      <td>
                        <button type="button" className="btn sm ghost" disabled={!!blocked} title={blocked ?? `Revoke ${t.name}'s token`} onClick={() => setRevoking(t)}>
                          <Trash2 size={14} /> Revoke…
                        </button>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          )}
        </div>
      </section>

      <Dialog
        open={issued !== null}
        onClose={() => setIssued(null)}
        title={`Token for ${issued?.principal.name ?? ""}`}
        footer={
          <>
            <span className="spacer" />
            <button type="button" className="btn primary" onClick={() => setIssued(null)} data-autofocus>
              Done
            </button>
          </>
        }
      >
        <div className="col">
          <p>Give this token to {issued?.principal.name} ({issued ? ROLE_LABEL[issued.principal.role] : ""}). It is shown only now; if it is lost, revoke it and issue another.</p>
          <div className="row">
            <code className="mono" style={{ overflowWrap: "anywhere" }} aria-label="The new token">
              {issued?.token}
            </code>
            <button
              type="button"
              className="btn sm"
              onClick={() => {
                if (issued) void navigator.clipboard?.writeText(issued.token).then(() => toast.success("Token copied"));
              }}
            >
              <Copy size={14} /> Copy
            </button>
          </div>
          <p className="muted">Its id, {issued?.principal.id}, is what the audit and approvals record.</p>
        </div>
      </Dialog>

      <Dialog
        open={revoking !== null}
        onClose={() => setRevoking(null)}
        title={`Revoke ${revoking?.name ?? ""}'s token?`}
        footer={
          <>
            <span className="spacer" />
            <button type="button" className="btn" onClick={() => setRevoking(null)} data-autofocus>
              Cancel
            </button>
            <button type="button" className="btn danger" disabled={busy} onClick={() => revoking && void revoke(revoking)}>
              {busy ? <Spinner /> : <Trash2 size={16} />} Revoke
            </button>
          </>
        }
      >
        <p>
          {revoking?.id} ({revoking ? ROLE_LABEL[revoking.role] : ""}) is refused from the next request on. What it did stays in the audit under its id.
        </p>
      </Dialog>
    </div>
  );
}
