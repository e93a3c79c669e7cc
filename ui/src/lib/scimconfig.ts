// The `scim` connector's config as the Systems form edits it. The shapes are the generated ones
// (`ScimConfig`, `ScimObject`, `OnDelete`, `FeatureOverrides` in api/schema.d.ts, from
// src/connectors/scim/config.rs), so a key the engine renames or removes, a new required key or a
// new delete behaviour fails `tsc` here, in the form or in the tests. Auth, polling and
// reconciliation are the `rest` connector's and are edited with its helpers (restconfig.ts).
// The server still validates every save and names the key at fault.

import type { AuthType, FeatureOverrides, OnDelete, ReconcileConfig, ScimConfig, ScimObject } from "../api/types";
import { baseUrlProblem, prune, reconcileSchedule, storedConfigOf, toAuth, withAuthDraft, type AuthDraft, type ReconcileSchedule } from "./restconfig";

/** The config as the form edits it: the generated shape, with the auth as a draft. */
export type ScimForm = Omit<ScimConfig, "auth"> & { auth: AuthDraft };

/** Seconds between polls when the config sets none (`DEFAULT_POLL_SECS` in config.rs): SCIM sends no webhooks. */
export const DEFAULT_POLL_SECS = 30;

/** Records per listing page when the config sets none, and the range the engine takes (config.rs). */
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

/** The auth types SCIM servers use, offered first; another type a saved config has is offered too. */
export const SCIM_AUTH_TYPES: readonly AuthType[] = ["bearer", "oauth2_client_credentials", "none"];

export function scimAuthTypes(current: AuthType): AuthType[] {
  return SCIM_AUTH_TYPES.includes(current) ? [...SCIM_AUTH_TYPES] : [...SCIM_AUTH_TYPES, current];
}

/** The core resource types, and "other" for any other resource type's name. */
export type ResourceKind = "User" | "Group" | "other";

export function resourceKind(resource: string): ResourceKind {
  return resource === "User" || resource === "Group" ? resource : "other";
}

/** What a delete the engine sends does, for people. Every behaviour the engine takes is listed: a new one fails `tsc` here. */
export const ON_DELETE_LABELS: Record<OnDelete, string> = {
  delete: "Delete the resource",
  deactivate: "Deactivate it",
};

/** The resource endpoint the engine uses when the object names none (`ScimObject::endpoint`). */
export function defaultEndpoint(resource: string): string {
  return resource === "User" ? "/Users" : resource === "Group" ? "/Groups" : `/${resource}s`;
}

/** A feature override as a choice: as the server's ServiceProviderConfig says, or forced on or off. */
export type FeatureChoice = "server" | "yes" | "no";

export function featureChoice(v: boolean | null | undefined): FeatureChoice {
  return v === true ? "yes" : v === false ? "no" : "server";
}

export function featureValue(c: FeatureChoice): boolean | null {
  return c === "yes" ? true : c === "no" ? false : null;
}

/** The features the server's ServiceProviderConfig can be overridden on, for people. Every key is listed: a new one fails `tsc` here. */
export const FEATURE_LABELS: { [K in keyof Required<FeatureOverrides>]: { label: string; yes: string; no: string } } = {
  patch: { label: "PATCH", yes: "Yes: send changes as PatchOp", no: "No: PUT the resource as last read" },
  filter: { label: "Filter", yes: "Yes: ask for changes since the last poll", no: "No: list everything each poll" },
};

/** An object's resource type changed; only Groups keep their member settings (the server refuses them elsewhere). */
export function withResource(o: ScimObject, resource: string): ScimObject {
  if (resource === "Group") return { ...o, resource };
  const { member_key: _k, member_object: _o, ...rest } = o;
  return { ...rest, resource };
}

/** What a new object starts with: a User object, or a Group once the config has one. */
export function newScimObject(objects: Record<string, ScimObject>): ScimObject {
  return { resource: Object.values(objects).some((o) => o.resource === "User") ? "Group" : "User" };
}

/** What a new system's form starts with. */
export function newScimForm(): ScimForm {
  return { base_url: "https://", auth: { type: "bearer" }, objects: { employee: { resource: "User" } } };
}

/**
 * The form as the config the server gets: blank optional values left out (so the engine's
 * defaults apply), only the chosen auth type's keys, and no feature overrides object when every
 * feature is as the server says. Everything else is kept as it is, including keys this console
 * does not know.
 */
export function toScimConfig(f: ScimForm): ScimConfig {
  const { auth, objects, poll, reconcile, features, ...rest } = f;
  const overrides = features && prune(features);
  return prune<ScimConfig>({
    ...rest,
    auth: toAuth(auth),
    objects: Object.fromEntries(Object.entries(objects).map(([name, o]) => [name, prune(o)])),
    poll: poll && prune(poll),
    reconcile: reconcile && prune(reconcile),
    features: overrides && Object.keys(overrides).length > 0 ? overrides : undefined,
  });
}

/** A saved config in the form's shape (a copy: editing the form leaves the saved one alone). */
export function toScimForm(c: ScimConfig): ScimForm {
  return withAuthDraft(c);
}

/** A stored system's config as the `scim` connector's; an absent or malformed one reads as empty. */
export function scimConfigOf(config: unknown): ScimConfig {
  return storedConfigOf<ScimConfig>(config);
}

/** Why the base URL cannot work: as for rest, and not a resource endpoint (the objects add those). */
export function scimBaseUrlProblem(url: string | null | undefined): string | null {
  const general = baseUrlProblem(url);
  if (general) return general;
  const endpoint = /\/(Users|Groups)\/?$/.exec(url?.trim() ?? "");
  return endpoint ? `The SCIM base, without /${endpoint[1]}: each object adds its endpoint.` : null;
}

/** What is wrong with one object, per key, as the server would refuse it (`ScimConfig::parse`). */
export type ScimObjectProblems = Partial<Record<keyof ScimObject, string>>;

export function scimObjectProblems(objects: Record<string, ScimObject>, name: string): ScimObjectProblems {
  const o = objects[name];
  if (!o) return {};
  const out: ScimObjectProblems = {};
  if (!o.resource.trim()) out.resource = "Name a resource type, e.g. Device.";
  if (o.endpoint && (!o.endpoint.startsWith("/") || o.endpoint.includes("?"))) out.endpoint = "A path below the base URL, starting with /, without a query.";
  if (o.page_size !== undefined && !Number.isNaN(o.page_size) && !(Number.isInteger(o.page_size) && o.page_size >= 1 && o.page_size <= MAX_PAGE_SIZE)) {
    out.page_size = `A whole number from 1 to ${MAX_PAGE_SIZE}.`;
  }
  if (o.member_key && o.resource !== "Group") out.member_key = "Only Groups have members.";
  else if (o.member_key && !o.member_object && !Object.values(objects).some((x) => x.resource === "User")) out.member_key = "Members need a User object in this config, or a member object.";
  if (o.member_object) {
    const target = objects[o.member_object];
    if (!target) out.member_object = `No object “${o.member_object}” in this config.`;
    else if (target.resource === "Group") out.member_object = "A Group's members are not Groups: name a User object.";
  }
  return out;
}

/** The objects a Group's members can be (non-Group objects), and which one is used when none is named. */
export function memberObjectChoices(objects: Record<string, ScimObject>): { choices: string[]; byDefault: string | null } {
  const entries = Object.entries(objects);
  return {
    choices: entries.filter(([, o]) => o.resource !== "Group").map(([n]) => n),
    byDefault: entries.find(([, o]) => o.resource === "User")?.[0] ?? null,
  };
}

/** The config as the `rest` connector's reconciliation helpers read it: always polled (every 30 s by default), never by webhook. */
export function scimReconcileInputs(c: Pick<ScimConfig, "poll" | "reconcile">): { poll: { interval_secs: number }; webhooks: null; reconcile: ReconcileConfig | null | undefined } {
  return { poll: c.poll ?? { interval_secs: DEFAULT_POLL_SECS }, webhooks: null, reconcile: c.reconcile };
}

/** When a SCIM system is reconciled on a schedule, as the engine decides it. */
export function scimSchedule(c: Pick<ScimConfig, "poll" | "reconcile">): ReconcileSchedule {
  return reconcileSchedule(scimReconcileInputs(c));
}
