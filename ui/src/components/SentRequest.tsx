// An HTTP request as a system got it (or would get it): the method and path, and the JSON body.
// Values the caller's role may not see arrive masked from the server (••••) and stay masked.

import { Lock } from "lucide-react";
import type { SentRequest } from "../api/types";
import { containsMasked } from "../lib/format";
import { requestBodyText } from "../lib/deadletter";

export function RequestView({ request, label, empty }: { request: SentRequest | null | undefined; label: string; empty?: string }) {
  if (!request) return <p className="faint">{empty ?? "The request is not known."}</p>;
  const body = requestBodyText(request);
  return (
    <div className="col" style={{ gap: 6 }} role="group" aria-label={label}>
      <div className="request-line mono">
        <span className="method">{request.method.toUpperCase()}</span> <span className="path">{request.path}</span>
      </div>
      {body === null ? <p className="faint" style={{ fontSize: 12.5 }}>No body.</p> : <pre className="block" aria-label={`${label}: body`}>{body}</pre>}
      {containsMasked(request.body) ? (
        <p className="faint row" style={{ fontSize: 12, gap: 4 }}>
          <Lock size={11} aria-hidden="true" /> •••• marks a sensitive value your role may not see; the request carries the real one.
        </p>
      ) : null}
    </div>
  );
}
