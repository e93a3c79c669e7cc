// The circuit breaker's trip on a system's plan page: why its writes are held, and an admin's
// decision about them: confirm (the writes below are sent) or discard (they never are, with a
// note). Both name the newest write the admin reviewed: writes queued meanwhile are judged
// afresh by the breaker (they flow only if on their own they stay within its share), never
// released unseen.

import { useState } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { toast } from "sonner";
import { ShieldAlert, Send, Trash2 } from "lucide-react";
import { api, errorMessage } from "../api/client";
import { useMe } from "../api/queries";
import type { BreakerTrip, PlanCounts } from "../api/types";
import { tripReason } from "../lib/breaker";
import { formatTime, plural } from "../lib/format";
import { can, whyNot } from "../lib/roles";
import { Dialog, Field, Spinner } from "./ui";

export function BreakerPanel({ system, name, trip, counts, onDecided }: { system: string; name: string; trip: BreakerTrip; counts: PlanCounts; onDecided: () => void }) {
  const me = useMe();
  const qc = useQueryClient();
  const may = can(me.role, "enable_writes");
  const [deciding, setDeciding] = useState<"confirm" | "discard" | null>(null);
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const held = counts.creates + counts.updates + counts.deletes;
  const decide = async (decision: "confirm" | "discard") => {
    setBusy(true);
    try {
      const body = { note, seen: counts };
      const r = decision === "confirm" ? await api.post("/api/systems/{id}/breaker/confirm", { id: system }, body) : await api.post("/api/systems/{id}/breaker/discard", { id: system }, body);
      const since = r.queued_since_review > 0 ? ` ${plural(r.queued_since_review, "write")} queued while you reviewed ${r.queued_since_review === 1 ? "was" : "were"} judged by the breaker on ${r.queued_since_review === 1 ? "its" : "their"} own.` : "";
      const done = decision === "confirm" ? "The writes you reviewed are being sent." : `${plural(r.discarded, "update or delete", "updates and deletes")} will never be sent.`;
      if (r.tripped_again) {
        toast.warning(`The breaker tripped again on writes to ${name}`, { description: `${done}${since} ${tripReason(r.tripped_again)}: review them.` });
      } else {
        toast.success(decision === "confirm" ? `Held writes to ${name} confirmed` : `Held writes to ${name} discarded`, { description: `${done}${since}` });
      }
      setDeciding(null);
      setNote("");
      void qc.invalidateQueries({ queryKey: ["metrics"] });
    } catch (e) {
      toast.error("Nothing was decided", { description: errorMessage(e) });
      setDeciding(null);
    } finally {
      setBusy(false);
      onDecided();
    }
  };
  return (
    <section className="banner danger" aria-labelledby="breaker-h" role="region">
      <ShieldAlert size={18} />
      <div className="b-body col" style={{ gap: 6 }}>
        <strong id="breaker-h">The circuit breaker holds every write to {name}</strong>
        <span>
          {tripReason(trip)}. Tripped {formatTime(trip.tripped_at)}. Review the writes below, then send them or discard them.
        </span>
        <div className="row">
          <button type="button" className="btn primary" disabled={!may} title={may ? undefined : whyNot(me.role, "enable_writes")} onClick={() => setDeciding("confirm")}>
            <Send size={16} /> Confirm and send
          </button>
          <button type="button" className="btn danger" disabled={!may} title={may ? undefined : whyNot(me.role, "enable_writes")} onClick={() => setDeciding("discard")}>
            <Trash2 size={16} /> Discard…
          </button>
        </div>
      </div>
      <Dialog
        open={deciding !== null}
        onClose={() => setDeciding(null)}
        title={deciding === "confirm" ? `Send the held writes to ${name}?` : `Discard the held writes to ${name}?`}
        footer={
          <>
            <button type="button" className="btn" onClick={() => setDeciding(null)}>
              Cancel
            </button>
            <button type="button" className={`btn ${deciding === "discard" ? "danger" : "primary"}`} disabled={busy || (deciding === "discard" && !note.trim())} onClick={() => deciding && void decide(deciding)}>
              {busy ? <Spinner /> : null} {deciding === "confirm" ? `Send ${held} writes` : "Discard them"}
            </button>
          </>
        }
      >
        <p>
          {deciding === "confirm"
            ? `The ${held} writes you reviewed are sent to ${name}, and writes flow again. This is recorded in the audit.`
            : `The held updates and deletes are never sent; ${name} keeps what it holds. The golden record keeps the change, so correct it at its source. This is recorded in the audit.`}
        </p>
        <Field label={deciding === "discard" ? "Why (required, kept in the audit)" : "Note (kept in the audit)"}>{(id) => <textarea id={id} className="textarea" value={note} onChange={(e) => setNote(e.target.value)} />}</Field>
      </Dialog>
    </section>
  );
}
