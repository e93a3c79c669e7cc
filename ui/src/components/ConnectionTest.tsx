// Testing a system's connection: a saved system as the engine runs it
// (POST /api/systems/{id}/test?object=), or a draft before it is saved (POST /api/systems/test).
// Either lists the first page of one object and reports the fields it found, with an example
// value each. A 422 means the draft config is malformed: its message is shown as is.

import { useCallback, useRef, useState } from "react";
import { CheckCircle2, X, XCircle } from "lucide-react";
import { api, ApiError, errorMessage } from "../api/client";
import type { ConnectionTest, SystemConfig } from "../api/types";
import { formatCount, formatTime } from "../lib/format";
import { fieldRows } from "../lib/restconfig";
import { pageSummary } from "../lib/connection";
import { Spinner, Value } from "./ui";

export type TestRequest = { via: "saved"; id: string; object?: string | null } | { via: "draft"; system: SystemConfig; object?: string | null };

export type TestState =
  | { phase: "running"; via: TestRequest["via"] }
  | { phase: "done"; via: TestRequest["via"]; at: string; key: string; result: ConnectionTest }
  | { phase: "invalid"; via: TestRequest["via"]; at: string; key: string; message: string }
  | { phase: "error"; via: TestRequest["via"]; at: string; key: string; message: string };

/** Runs one test at a time; `key` names what was tested (to tell when the form has changed since). */
export function useConnectionTest() {
  const [state, setState] = useState<TestState | null>(null);
  const seq = useRef(0);
  const run = useCallback(async (req: TestRequest, key: string) => {
    const mine = ++seq.current;
    setState({ phase: "running", via: req.via });
    const at = new Date().toISOString();
    try {
      const result =
        req.via === "saved"
          ? await api.post("/api/systems/{id}/test", { id: req.id, object: req.object ?? undefined })
          : await api.post("/api/systems/test", {}, { system: req.system, object: req.object ?? null });
      if (mine === seq.current) setState({ phase: "done", via: req.via, at, key, result });
    } catch (e) {
      if (mine !== seq.current) return;
      const message = errorMessage(e);
      setState(e instanceof ApiError && e.status === 422 ? { phase: "invalid", via: req.via, at, key, message } : { phase: "error", via: req.via, at, key, message });
    }
  }, []);
  /** A draft that cannot even be sent (e.g. its JSON does not parse) is reported like a 422. */
  const invalid = useCallback((message: string, key: string) => {
    seq.current++;
    setState({ phase: "invalid", via: "draft", at: new Date().toISOString(), key, message });
  }, []);
  const clear = useCallback(() => {
    seq.current++;
    setState(null);
  }, []);
  return { state, run, invalid, clear };
}

/** The outcome of a test: connected or not, the message, and on success the fields found. */
export function ConnectionTestCard({ state, stale, onClose }: { state: TestState; stale: boolean; onClose: () => void }) {
  const head = (
    <div className="card-head">
      <h2 id="conn-test-h">Connection test</h2>
      {state.phase !== "running" ? (
        <span className="faint" style={{ fontSize: 12.5 }}>
          {state.via === "saved" ? "the saved config" : "the config in this form, not saved"} · {formatTime(state.at)}
        </span>
      ) : null}
      <button type="button" className="btn ghost icon sm" onClick={onClose} aria-label="Close the connection test">
        <X size={16} />
      </button>
    </div>
  );
  let body;
  if (state.phase === "running") {
    body = (
      <div className="row muted" role="status">
        <Spinner /> Listing the first page of records…
      </div>
    );
  } else if (state.phase === "invalid") {
    body = (
      <div className="banner danger" role="alert">
        <XCircle size={16} />
        <div className="b-body">
          <strong>The configuration is not valid</strong>
          {state.message}
        </div>
      </div>
    );
  } else if (state.phase === "error") {
    body = (
      <div className="banner danger" role="alert">
        <XCircle size={16} />
        <div className="b-body">
          <strong>Could not test</strong>
          {state.message}
        </div>
      </div>
    );
  } else {
    const r = state.result;
    const rows = fieldRows(r.fields as Record<string, unknown>);
    body = (
      <>
        <div className={`banner ${r.ok ? "success" : "danger"}`} role={r.ok ? "status" : "alert"}>
          {r.ok ? <CheckCircle2 size={16} /> : <XCircle size={16} />}
          <div className="b-body">
            <strong>{r.ok ? "Connected" : "Connection failed"}</strong>
            {r.message}
          </div>
        </div>
        {r.ok ? (
          <>
            <p className="muted">
              {pageSummary(r)}
              {rows.length > 0 ? `; ${formatCount(rows.length)} ${rows.length === 1 ? "field" : "fields"} found, with an example value each.` : "; no fields found (check the records pointer)."}
            </p>
            {rows.length > 0 ? (
              <div className="scroll-box">
                <table className="simple-table">
                  <caption className="sr-only">Fields found in the sample records</caption>
                  <thead>
                    <tr>
                      <th scope="col">Field path</th>
                      <th scope="col">Example value</th>
                    </tr>
                  </thead>
                  <tbody>
                    {rows.map(([path, v]) => (
                      <tr key={path}>
                        <td className="mono">{path}</td>
                        <td>
                          <Value v={v ?? null} />
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            ) : null}
          </>
        ) : null}
      </>
    );
  }
  return (
    <section className="card" aria-labelledby="conn-test-h">
      {head}
      <div className="card-body col" style={{ gap: 12 }}>
        {body}
        {stale && state.phase !== "running" ? <p className="faint">The form has changed since this test. Test again to check the changes.</p> : null}
      </div>
    </section>
  );
}

