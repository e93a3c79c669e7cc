// Change capture of a saved `sql` system: the SQL that installs the change table and triggers
// (GET /api/systems/{id}/change-capture, admins only), whether it is installed, and for admins an
// install that shows the SQL again and asks first (POST, audited). Nothing is installed otherwise.
// A refusal shows the API's message: not allowed (403), no such saved system (404), a config the
// engine cannot use (422), or a database that did not answer or refused the statements (502).

import { useState } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { toast } from "sonner";
import { DatabaseZap, XCircle } from "lucide-react";
import { api, ApiError, errorMessage } from "../api/client";
import type { CaptureStatus } from "../api/types";
import { Dialog, Loading, Pill, Spinner } from "./ui";
import { Section } from "./SystemFormFields";

/** What went wrong, for people: the API's message, after what its status means here. */
export function captureErrorText(e: unknown): string {
  if (!(e instanceof ApiError)) return errorMessage(e);
  const what: Record<number, string> = {
    403: "Not allowed for your role",
    404: "No such saved system",
    422: "The saved config cannot be used",
    502: "The database did not answer or refused the statements",
  };
  return `${what[e.status] ?? "Refused"}: ${e.message}${e.code ? ` (${e.code})` : ""}`;
}

function CaptureError({ error }: { error: unknown }) {
  return (
    <div className="banner danger" role="alert">
      <XCircle size={16} />
      <div className="b-body">{captureErrorText(error)}</div>
    </div>
  );
}

/** The install SQL, read-only. */
function CaptureSql({ sql }: { sql: string }) {
  return (
    <pre className="block mono" aria-label="Change capture SQL" tabIndex={0}>
      {sql}
    </pre>
  );
}

export function ChangeCapturePanel({ systemId, objects, mayInstall }: { systemId: string; objects: string[]; mayInstall: boolean }) {
  const qc = useQueryClient();
  const key = ["change-capture", systemId];
  const status = useQuery({
    queryKey: key,
    queryFn: ({ signal }) => api.get("/api/systems/{id}/change-capture", { id: systemId }, signal),
    enabled: mayInstall,
    retry: false,
  });
  const [confirming, setConfirming] = useState(false);
  const [installing, setInstalling] = useState(false);
  const [failure, setFailure] = useState<unknown>(null);

  const install = async () => {
    setInstalling(true);
    setFailure(null);
    try {
      const after: CaptureStatus = await api.post("/api/systems/{id}/change-capture", { id: systemId });
      qc.setQueryData(key, after);
      setConfirming(false);
      if (after.installed) toast.success("Change capture installed", { description: `Triggers on ${after.objects.join(", ")}; recorded in the audit.` });
      else toast.warning("The statements ran, but change capture is not complete", { description: "Read the SQL and the database's state, then try again." });
    } catch (e) {
      setFailure(e);
      toast.error("Could not install change capture", { description: errorMessage(e) });
    } finally {
      setInstalling(false);
    }
  };

  const s = status.data;
  return (
    <Section
      title="Change capture"
      extra={s ? s.installed ? <Pill tone="success">installed</Pill> : <Pill tone="warning">not installed</Pill> : null}
    >
      <p className="muted" style={{ margin: 0 }}>
        Triggers on {objects.join(", ")} (as saved) record each change for the engine. Nothing is installed in the database until an admin does it here; the install is recorded in the audit.
      </p>
      {!mayInstall ? (
        <p className="muted" style={{ margin: 0 }}>Only admins may read and install change capture.</p>
      ) : status.isPending ? (
        <Loading label="Asking the database…" />
      ) : status.error ? (
        <>
          <CaptureError error={status.error} />
          <div className="row">
            <button type="button" className="btn sm" onClick={() => void status.refetch()}>
              Try again
            </button>
          </div>
        </>
      ) : s ? (
        <>
          <p style={{ margin: 0 }}>
            <strong>Now:</strong> {s.installed ? `installed for ${s.objects.join(", ")}.` : `not installed${s.objects.length ? ` (${s.objects.join(", ")} ask for it)` : ""}.`}
          </p>
          <CaptureSql sql={s.sql} />
          {failure && !confirming ? <CaptureError error={failure} /> : null}
          <div className="row">
            <button type="button" className="btn sm primary" disabled={s.installed || installing} title={s.installed ? "Every object that asks for change capture has its trigger" : undefined} onClick={() => setConfirming(true)}>
              <DatabaseZap size={14} /> Install change capture
            </button>
          </div>
        </>
      ) : null}
      <Dialog
        open={confirming}
        onClose={() => setConfirming(false)}
        title="Install change capture?"
        footer={
          <>
            <span className="spacer" />
            <button type="button" className="btn" onClick={() => setConfirming(false)} data-autofocus>
              Cancel
            </button>
            <button type="button" className="btn primary" disabled={installing} onClick={() => void install()}>
              {installing ? <Spinner /> : <DatabaseZap size={16} />} Install
            </button>
          </>
        }
      >
        <p>These statements run in the database of <strong>{systemId}</strong>, exactly as shown:</p>
        {s ? <CaptureSql sql={s.sql} /> : null}
        {failure ? <CaptureError error={failure} /> : null}
      </Dialog>
    </Section>
  );
}
