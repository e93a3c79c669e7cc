// The dialog of a configuration change the API asked to confirm (409 `confirmation_required`):
// it lists what would be removed and, once confirmed, sends the change again with
// `?confirm=true`. Pages run their save through `attempt`.

import { useState, type ReactNode } from "react";
import { toast } from "sonner";
import { Trash2 } from "lucide-react";
import { errorMessage } from "../api/client";
import type { Removal } from "../api/types";
import { describeRemoval, removalOf, removalTitle } from "../lib/confirmation";
import { Dialog, Spinner } from "./ui";

interface Pending {
  removal: Removal;
  message: string;
  retry: () => Promise<void>;
}

/**
 * `attempt(call)` runs `call(false)`; when the API asks for confirmation it shows what would be
 * removed and runs `call(true)` once the person confirms. Other errors are thrown as they are.
 * Resolves true when the change went through without asking.
 */
export function useRemovalConfirmation(failure: string): { attempt: (call: (confirm: boolean) => Promise<void>) => Promise<boolean>; dialog: ReactNode } {
  const [pending, setPending] = useState<Pending | null>(null);
  const [busy, setBusy] = useState(false);
  const attempt = async (call: (confirm: boolean) => Promise<void>) => {
    try {
      await call(false);
      return true;
    } catch (e) {
      const removal = removalOf(e);
      if (!removal) throw e;
      setPending({ removal, message: errorMessage(e), retry: () => call(true) });
      return false;
    }
  };
  const confirm = async () => {
    if (!pending) return;
    setBusy(true);
    try {
      await pending.retry();
      setPending(null);
    } catch (e) {
      toast.error(failure, { description: errorMessage(e) });
    } finally {
      setBusy(false);
    }
  };
  const dialog = (
    <Dialog
      open={pending !== null}
      onClose={() => setPending(null)}
      title={pending ? removalTitle(pending.removal) : ""}
      footer={
        <>
          <span className="spacer" />
          <button type="button" className="btn" onClick={() => setPending(null)} data-autofocus>
            Cancel
          </button>
          <button type="button" className="btn danger" onClick={() => void confirm()} disabled={busy}>
            {busy ? <Spinner /> : <Trash2 size={16} />} Remove and save
          </button>
        </>
      }
    >
      {pending ? (
        <div className="col">
          <p>{pending.message}</p>
          <ul>
            {describeRemoval(pending.removal).map((line) => (
              <li key={line}>{line}</li>
            ))}
          </ul>
          <p className="muted">The change is recorded in the audit as confirmed by you.</p>
        </div>
      ) : null}
    </Dialog>
  );
  return { attempt, dialog };
}
