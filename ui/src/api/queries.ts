// Shared server state (TanStack Query): the workspace, the caller, live metrics. Lists with
// 100,000 rows do not go through here; they page through lib/paged.ts.

import { createContext, useContext } from "react";
import { useQuery } from "@tanstack/react-query";
import { api } from "./client";
import type { Principal, ScheduledStatus } from "./types";

export const SessionContext = createContext<Principal | null>(null);

/** The signed-in person (always present inside the shell). */
export function useMe(): Principal {
  const me = useContext(SessionContext);
  if (!me) throw new Error("useMe outside the signed-in shell");
  return me;
}

export function useWorkspace() {
  return useQuery({
    queryKey: ["workspace"],
    queryFn: () => api.get("/api/workspace"),
    staleTime: 30_000,
  });
}

export function useMetrics() {
  return useQuery({
    queryKey: ["metrics"],
    queryFn: () => api.get("/api/metrics"),
    refetchInterval: 5_000,
  });
}

/** The items waiting for a second approver (the navigation counts them). */
export function useApprovals() {
  return useQuery({
    queryKey: ["approvals"],
    queryFn: ({ signal }) => api.get("/api/approvals", {}, signal),
    refetchInterval: 10_000,
  });
}

/** Effective-dated changes by status (the navigation counts those waiting). */
export function useScheduled(status: ScheduledStatus = "scheduled") {
  return useQuery({
    queryKey: ["scheduled", status],
    queryFn: ({ signal }) => api.get("/api/scheduled", { status, limit: 500 }, signal),
    refetchInterval: 15_000,
  });
}
