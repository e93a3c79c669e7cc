// The connectors the Systems form edits (`rest`, `scim`, `sql`), and what the Systems page reads
// from a stored system of any of them: where it is (a base URL, or a database URL without any
// password), its auth, objects, keychain entries, how changes arrive and when it is reconciled. A
// system of another connector is edited as JSON and summarised by name.

import type { SystemConfig } from "../api/types";
import { reconcileSchedule, restConfigOf, secretRefs, toConfig, toForm, type ReconcileSchedule, type SecretRef } from "./restconfig";
import { scimConfigOf, scimSchedule, toScimConfig, toScimForm, DEFAULT_POLL_SECS } from "./scimconfig";
import { describeCapture, displayUrl, relationKind, relationOf, sqlChangesBy, sqlConfigOf, sqlSchedule, sqlSecretRefs, toSqlConfig, toSqlForm } from "./sqlconfig";

/** The connectors with a form, for people. */
export const CONNECTOR_LABELS = { rest: "REST (declarative)", scim: "SCIM 2.0", sql: "SQL database (PostgreSQL, SQLite)" } as const;
export type FormConnector = keyof typeof CONNECTOR_LABELS;

export function hasForm(connector: string): connector is FormConnector {
  return Object.hasOwn(CONNECTOR_LABELS, connector);
}

/** The connector select's options, with a connector that has no form last when the system uses it. */
export function connectorOptions(current: string): [string, string][] {
  const known = Object.entries(CONNECTOR_LABELS);
  return hasForm(current) ? known : [...known, [current, current]];
}

/**
 * A stored config as the form would save it, unchanged: blank values the engine reads as absent
 * left out. A connector without a form keeps its config as it is.
 */
export function normalConfig(connector: string, config: unknown): unknown {
  if (connector === "rest") return toConfig(toForm(restConfigOf(config)));
  if (connector === "scim") return toScimConfig(toScimForm(scimConfigOf(config)));
  if (connector === "sql") return toSqlConfig(toSqlForm(sqlConfigOf(config)));
  return config;
}

/** What the Systems page shows of a system with a form. */
export interface SystemSummary {
  /** What `url` is: an HTTP system's base URL or a database's. */
  urlLabel: "Base URL" | "Database";
  /** Never with a password in it. */
  url: string;
  /** The auth type (`api_key`, `bearer`, ...), or `password` for a database's. */
  auth: string;
  /** Object names, with the SCIM resource type or the table or view where there is one. */
  objects: string[];
  secrets: SecretRef[];
  changesBy: string;
  /** A database's change capture, per object. */
  capture?: string;
  schedule: ReconcileSchedule;
}

export function systemSummary(s: Pick<SystemConfig, "connector" | "config">): SystemSummary | null {
  if (s.connector === "rest") {
    const c = restConfigOf(s.config);
    return {
      urlLabel: "Base URL",
      url: c.base_url,
      auth: c.auth?.type ?? "none",
      objects: Object.keys(c.objects),
      secrets: secretRefs(c),
      changesBy: [c.webhooks ? "webhooks" : null, c.poll ? `polling every ${c.poll.interval_secs} s` : null].filter(Boolean).join(" + ") || "webhooks in Concord's format",
      schedule: reconcileSchedule(c),
    };
  }
  if (s.connector === "scim") {
    const c = scimConfigOf(s.config);
    return {
      urlLabel: "Base URL",
      url: c.base_url,
      auth: c.auth?.type ?? "none",
      objects: Object.entries(c.objects).map(([n, o]) => (o?.resource ? `${n} (${o.resource})` : n)),
      secrets: secretRefs(c),
      changesBy: c.poll ? `polling every ${c.poll.interval_secs} s` : `polling every ${DEFAULT_POLL_SECS} s (default)`,
      schedule: scimSchedule(c),
    };
  }
  if (s.connector === "sql") {
    const c = sqlConfigOf(s.config);
    const secrets = sqlSecretRefs(c);
    return {
      urlLabel: "Database",
      url: displayUrl(c.url),
      auth: secrets.length > 0 ? "password" : "none",
      objects: Object.entries(c.objects).map(([n, o]) => `${n} (${relationKind(o)} ${relationOf(o)})`),
      secrets,
      changesBy: sqlChangesBy(c),
      capture: describeCapture(c),
      schedule: sqlSchedule(c),
    };
  }
  return null;
}

/** The keychain entries a stored system refers to (none for a connector without a form). */
export function systemSecretRefs(s: Pick<SystemConfig, "connector" | "config">): SecretRef[] {
  return systemSummary(s)?.secrets ?? [];
}
