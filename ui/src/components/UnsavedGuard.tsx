// Asks before unsaved edits are lost: a navigation inside the console is held and a dialog
// asks whether to leave, and closing or reloading the window gets the browser's own question.

import { useEffect } from "react";
import { useBlocker } from "react-router";
import { Dialog } from "./ui";

export function UnsavedGuard({ dirty, what }: { dirty: boolean; what: string }) {
  const blocker = useBlocker(({ currentLocation, nextLocation }) => dirty && (currentLocation.pathname !== nextLocation.pathname || currentLocation.search !== nextLocation.search));
  useEffect(() => {
    if (!dirty) return;
    const hold = (e: BeforeUnloadEvent) => {
      e.preventDefault();
      // Older engines need a value set to ask.
      e.returnValue = "";
    };
    window.addEventListener("beforeunload", hold);
    return () => window.removeEventListener("beforeunload", hold);
  }, [dirty]);
  if (blocker.state !== "blocked") return null;
  return (
    <Dialog
      open
      onClose={() => blocker.reset()}
      title="Leave without saving?"
      footer={
        <>
          <span className="spacer" />
          <button type="button" className="btn" data-autofocus onClick={() => blocker.reset()}>
            Stay
          </button>
          <button type="button" className="btn danger" onClick={() => blocker.proceed()}>
            Leave and lose them
          </button>
        </>
      }
    >
      <p>{what} has unsaved changes. Leaving now loses them.</p>
    </Dialog>
  );
}
