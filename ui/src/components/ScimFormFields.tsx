// The form of a `scim` system (a SCIM 2.0 service provider): the SCIM base URL and auth, each
// object as a resource type (endpoint, page size, what a delete does, a Group's members),
// overrides of what the server says it supports, polling and reconciliation. Paging, filters,
// ETags and PatchOp are SCIM's own conventions, so there is nothing else to describe.

import type { ReactNode } from "react";
import type { OnDelete, ScimObject } from "../api/types";
import {
  defaultEndpoint,
  featureChoice,
  featureValue,
  memberObjectChoices,
  newScimObject,
  resourceKind,
  scimAuthTypes,
  scimBaseUrlProblem,
  scimObjectProblems,
  scimReconcileInputs,
  toScimConfig,
  withResource,
  DEFAULT_PAGE_SIZE,
  DEFAULT_POLL_SECS,
  FEATURE_LABELS,
  MAX_PAGE_SIZE,
  ON_DELETE_LABELS,
  type FeatureChoice,
  type ResourceKind,
  type ScimForm,
} from "../lib/scimconfig";
import type { SecretInput } from "./SecretField";
import { ConfigPreview, ConnectionSection, type ConnectorFormProps, Num, ObjectTabs, PollSection, ReconcileFields, Section, Select, Text, options } from "./SystemFormFields";

const RESOURCE_LABELS: Record<ResourceKind, string> = { User: "User", Group: "Group", other: "Another resource type" };

export function ScimFormFields(props: ConnectorFormProps & { cfg: ScimForm; onChange: (f: ScimForm) => void; authSecret: SecretInput }) {
  const { cfg, onChange, disabled: ro } = props;
  const features = cfg.features ?? {};
  return (
    <>
      <ConnectionSection
        cfg={cfg}
        onChange={(patch) => onChange({ ...cfg, ...patch })}
        authTypes={scimAuthTypes(cfg.auth.type)}
        baseUrl={{ placeholder: "https://example.okta.com/scim/v2", hint: "The SCIM base: /Users, /Groups and /ServiceProviderConfig are below it.", problem: scimBaseUrlProblem(cfg.base_url) }}
        systemId={props.systemId}
        secret={props.authSecret}
        usedBy={props.usedBy(cfg.auth.secret)}
        mayEdit={props.mayEdit}
        disabled={ro}
      />

      <ObjectTabs<ScimObject>
        objects={cfg.objects}
        onChange={(objects) => onChange({ ...cfg, objects })}
        active={props.activeObject}
        onActive={props.onActiveObject}
        workspaceObjects={props.workspaceObjects}
        newObject={newScimObject}
        flagged={(n) => Object.keys(scimObjectProblems(cfg.objects, n)).length > 0}
        empty="Add the resource types to sync, e.g. employee as User."
        disabled={ro}
      >
        {(name, o, nameField) => <ScimObjectFields key={name} name={name} o={o} objects={cfg.objects} nameField={nameField} onChange={(next) => onChange({ ...cfg, objects: { ...cfg.objects, [name]: next } })} disabled={ro} />}
      </ObjectTabs>

      <Section title="What the server supports">
        <p className="muted" style={{ margin: 0 }}>
          The engine reads the server&apos;s ServiceProviderConfig. Override it where the server says more than it does.
        </p>
        <div className="form-grid">
          {(Object.keys(FEATURE_LABELS) as (keyof typeof FEATURE_LABELS)[]).map((k) => (
            <Select<FeatureChoice>
              key={k}
              label={FEATURE_LABELS[k].label}
              value={featureChoice(features[k])}
              disabled={ro}
              onChange={(v) => onChange({ ...cfg, features: { ...features, [k]: featureValue(v) } })}
              options={[
                ["server", "As the server says"],
                ["yes", FEATURE_LABELS[k].yes],
                ["no", FEATURE_LABELS[k].no],
              ]}
            />
          ))}
        </div>
      </Section>

      <PollSection
        poll={cfg.poll}
        onChange={(poll) => onChange({ ...cfg, poll })}
        disabled={ro}
        toggle="Set an interval"
        off={`Every ${DEFAULT_POLL_SECS} s (the default): a SCIM server sends no webhooks, so changes are polled for.`}
        start={{ interval_secs: DEFAULT_POLL_SECS }}
      />

      <ReconcileFields cfg={scimReconcileInputs(cfg)} onChange={(reconcile) => onChange({ ...cfg, reconcile })} disabled={ro} />

      <ConfigPreview config={toScimConfig(cfg)} />
    </>
  );
}

/** One object: its resource type, endpoint, page size, what a delete does, and a Group's members. */
function ScimObjectFields({ name, o, objects, nameField, onChange, disabled }: { name: string; o: ScimObject; objects: Record<string, ScimObject>; nameField: ReactNode; onChange: (o: ScimObject) => void; disabled: boolean }) {
  const problems = scimObjectProblems(objects, name);
  const kind = resourceKind(o.resource);
  const members = memberObjectChoices(objects);
  return (
    <div className="form-grid">
      {nameField}
      <Select<ResourceKind>
        label="Resource type"
        value={kind}
        disabled={disabled}
        onChange={(v) => onChange(withResource(o, v === "other" ? (kind === "other" ? o.resource : "") : v))}
        options={options(RESOURCE_LABELS)}
      />
      {kind === "other" ? <Text label="Resource type name" value={o.resource} onChange={(v) => onChange(withResource(o, v))} mono placeholder="Device" error={problems.resource} disabled={disabled} /> : null}
      <Text
        label="Endpoint"
        value={o.endpoint}
        onChange={(v) => onChange({ ...o, endpoint: v })}
        mono
        placeholder={o.resource.trim() ? defaultEndpoint(o.resource.trim()) : "/Users"}
        hint="Below the base URL. Blank: the resource type's usual endpoint."
        error={problems.endpoint}
        disabled={disabled}
      />
      <Num label="Page size" value={o.page_size} onChange={(v) => onChange({ ...o, page_size: v })} min={1} max={MAX_PAGE_SIZE} placeholder={String(DEFAULT_PAGE_SIZE)} hint={`Records per listing page (count), 1 to ${MAX_PAGE_SIZE}. Blank: ${DEFAULT_PAGE_SIZE}.`} error={problems.page_size} disabled={disabled} />
      <Select<OnDelete>
        label="On delete"
        value={o.on_delete ?? "delete"}
        disabled={disabled}
        hint="Deactivating sets active = false, as identity providers expect of leavers."
        onChange={(v) => onChange({ ...o, on_delete: v })}
        options={options(ON_DELETE_LABELS)}
      />
      {o.resource === "Group" ? (
        <>
          <Text
            label="Member key"
            value={o.member_key}
            onChange={(v) => onChange({ ...o, member_key: v })}
            mono
            placeholder="externalId"
            hint={<>The User attribute that names each member (externalId, userName, or urn:…:User:employeeNumber). Members are then synced one by one at <code>memberKeys</code>. Blank: members are not synced.</>}
            error={problems.member_key}
            disabled={disabled}
          />
          <Select<string>
            label="Member object"
            value={o.member_object ?? ""}
            disabled={disabled || !o.member_key}
            error={problems.member_object}
            onChange={(v) => onChange({ ...o, member_object: v || null })}
            options={[
              ["", members.byDefault ? `The first User object (${members.byDefault})` : "The first User object (none yet)"],
              ...[...new Set([...(o.member_object ? [o.member_object] : []), ...members.choices])].map((n): [string, string] => [n, n]),
            ]}
          />
        </>
      ) : null}
    </div>
  );
}
