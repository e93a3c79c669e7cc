// The banner under the top bar, on every page, when a metrics threshold is crossed
// (lib/alerts.ts): a circuit breaker holding a system's writes, dead letters rising, an old
// pending event, a large outbox.

import { useState } from "react";
import { Link } from "react-router";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { toast } from "sonner";
import { AlertOctagon, AlertTriangle, Pause, Play, X } from "lucide-react";
import { api, errorMessage } from "../api/client";
import { useMe, useWorkspace } from "../api/queries";
import type { Metrics } from "../api/types";
import { computeAlerts } from "../lib/alerts";
import { can, whyNot } from "../lib/roles";
import { Spinner } from "./ui";

/** Pauses or resumes applying and delivering (PUT /api/engine); events keep arriving meanwhile. */
export function usePauseSync() {
  const qc = useQueryClient();
  const [busy, setBusy] = useState(false);
  const set = async (paused: boolean) => {
    setBusy(true);
    try {
      const r = await api.put("/api/engine", {}, { paused });
      toast.success(r.paused ? "Sync paused" : "Sync resumed", {
        description: r.paused ? "Changes are still received and kept; nothing is applied or sent until you resume." : undefined,
      });
      await qc.invalidateQueries({ queryKey: ["metrics"] });
    } catch (e) {
      toast.error(paused ? "Could not pause sync" : "Could not resume sync", { description: errorMessage(e) });
    } finally {
      setBusy(false);
    }
  };
  return { set, busy };
}

export function PauseButton({ paused }: { paused: boolean }) {
  const me = useMe();
  const pause = usePauseSync();
  const may = can(me.role, "pause_sync");
  return (
    <button type="button" className="btn" disabled={!may || pause.busy} title={may ? undefined : whyNot(me.role, "pause_sync")} onClick={() => void pause.set(!paused)}>
      {pause.busy ? <Spinner /> : paused ? <Play size={16} /> : <Pause size={16} />} {paused ? "Resume sync" : "Pause sync"}
    </button>
  );
}

export function useHistory(rangeSecs: number) {
  return useQuery({
    queryKey: ["history", rangeSecs],
    queryFn: () => api.get("/api/metrics/history", { since: new Date(Date.now() - rangeSecs * 1000).toISOString() }),
    refetchInterval: 5_000,
  });
}

/** The banner under the top bar when a threshold is crossed; dismissible per alert until it changes. */
export function AlertBanner({ metrics }: { metrics: Metrics | undefined }) {
  const history = useHistory(600);
  const ws = useWorkspace();
  const names = new Map((ws.data?.systems ?? []).map((s) => [s.id, s.name] as const));
  const [dismissed, setDismissed] = useState<Set<string>>(new Set());
  const alerts = computeAlerts(metrics, history.data ?? [], Date.now(), undefined, names).filter((a) => !dismissed.has(a.id + a.title));
  const paused = metrics?.paused === true;
  if (alerts.length === 0 && !paused) return null;
  return (
    <div role="alert" aria-live="assertive">
      {paused ? (
        <div className="banner alert-strip info">
          <Pause size={16} />
          <div className="b-body">
            <strong>Sync is paused</strong>
            <span className="muted">Changes are received and kept; nothing is applied or sent until sync resumes.</span>
          </div>
          <PauseButton paused />
        </div>
      ) : null}
      {alerts.map((a) => (
        <div key={a.id} className={`banner alert-strip ${a.level}`}>
          {a.level === "danger" ? <AlertOctagon size={16} /> : <AlertTriangle size={16} />}
          <div className="b-body">
            <strong>{a.title}</strong>
            <span className="muted">{a.detail}</span> {a.link ? <Link to={a.link}>Review</Link> : null}
          </div>
          <button type="button" className="btn ghost sm icon" aria-label={`Dismiss: ${a.title}`} onClick={() => setDismissed((d) => new Set(d).add(a.id + a.title))}>
            <X size={14} />
          </button>
        </div>
      ))}
    </div>
  );
}

