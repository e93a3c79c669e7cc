// The form of a `sql` system (a PostgreSQL database or an SQLite file): the database URL (never
// with a password: that goes to the keychain under the name the config gives it), each object as
// a table or a view with the statements that write it, its key, version and modification-time
// columns, page size and change capture, then polling and reconciliation. What the engine would
// refuse (`SqlConfig::parse`) is said at the field. For a saved system whose objects capture
// changes, the SQL that installs the triggers is shown and an admin installs it
// (components/ChangeCapture.tsx).

import type { ReactNode } from "react";
import type { ChangeCapture, SqlConfig, SqlObject } from "../api/types";
import { newPoll } from "../lib/restconfig";
import {
  capturedObjects,
  connectTimeoutProblem,
  passwordSecretProblem,
  sqlDialect,
  sqlObjectProblems,
  DEFAULT_SQL_POLL_SECS,
  sqlReconcileInputs,
  sqlSchedule,
  sqlUrlProblem,
  statementHint,
  newSqlObject,
  relationKind,
  toSqlConfig,
  withRelationKind,
  CHANGE_CAPTURE_LABELS,
  DEFAULT_CONNECT_TIMEOUT_SECS,
  DEFAULT_PAGE_SIZE,
  MAX_PAGE_SIZE,
  PASSWORD_SECRET_PURPOSE,
  type RelationKind,
  type SqlForm,
} from "../lib/sqlconfig";
import { Field } from "./ui";
import { SecretField, type SecretInput } from "./SecretField";
import { ChangeCapturePanel } from "./ChangeCapture";
import { ConfigPreview, Num, ObjectTabs, type ConnectorFormProps, PollSection, ReconcileFields, Section, Select, Text, options } from "./SystemFormFields";

const RELATION_LABELS: Record<RelationKind, string> = { table: "A table", view: "A view, with its statements" };

export function SqlFormFields(props: ConnectorFormProps & {
  cfg: SqlForm;
  onChange: (f: SqlForm) => void;
  /** The saved system's config, when there is one: change capture is installed from it. */
  saved: SqlConfig | null;
  passwordSecret: SecretInput;
}) {
  const { cfg, onChange, disabled: ro } = props;
  const dialect = sqlDialect(cfg.url);
  const captured = capturedObjects(cfg);
  return (
    <>
      <Section title="Database">
        <div className="form-grid">
          <Text
            className="span-2"
            label="Database URL"
            value={cfg.url}
            onChange={(v) => onChange({ ...cfg, url: v })}
            mono
            placeholder="postgres://concord@db.internal:5432/hr"
            hint={<>PostgreSQL: <code>postgres://user@host:port/db</code>; SQLite: <code>sqlite:///path/to/file.db</code>. Never a password: it goes to the keychain below.</>}
            error={sqlUrlProblem(cfg.url)}
            disabled={ro}
            required
          />
          <Num
            label="Connect timeout (s)"
            value={cfg.connect_timeout_secs}
            onChange={(v) => onChange({ ...cfg, connect_timeout_secs: v })}
            step="any"
            placeholder={String(DEFAULT_CONNECT_TIMEOUT_SECS)}
            hint={`How long a request waits for a connection before it fails and is retried. Blank: ${DEFAULT_CONNECT_TIMEOUT_SECS}.`}
            error={connectTimeoutProblem(cfg.connect_timeout_secs)}
            disabled={ro}
          />
        </div>
        {dialect !== "sqlite" || cfg.password_secret ? (
          <div className="form-grid">
            <Text
              label="Password name (keychain)"
              value={cfg.password_secret}
              onChange={(v) => onChange({ ...cfg, password_secret: v })}
              mono
              placeholder={`${props.systemId || "system"}-password`}
              hint="PostgreSQL only. The config holds only this name; the password is sent only to this database's host. Blank: no password."
              error={passwordSecretProblem(cfg)}
              disabled={ro}
            />
            {cfg.password_secret?.trim() ? (
              <SecretField className="span-2" name={cfg.password_secret} label={PASSWORD_SECRET_PURPOSE} input={props.passwordSecret} mayManage={props.mayEdit} disabled={ro} usedBy={props.usedBy(cfg.password_secret)} />
            ) : null}
          </div>
        ) : null}
      </Section>

      <ObjectTabs<SqlObject>
        objects={cfg.objects}
        onChange={(objects) => onChange({ ...cfg, objects })}
        active={props.activeObject}
        onActive={props.onActiveObject}
        workspaceObjects={props.workspaceObjects}
        newObject={newSqlObject}
        flagged={(n) => Object.keys(sqlObjectProblems(cfg.objects[n], cfg.url)).length > 0}
        empty="Add the tables or views to sync, e.g. employee from the employees table."
        disabled={ro}
      >
        {(name, o, nameField) => <SqlObjectFields key={name} o={o} url={cfg.url} nameField={nameField} onChange={(next) => onChange({ ...cfg, objects: { ...cfg.objects, [name]: next } })} disabled={ro} />}
      </ObjectTabs>

      {props.saved && capturedObjects(props.saved).length > 0 ? <ChangeCapturePanel systemId={props.systemId} objects={capturedObjects(props.saved)} mayInstall={props.mayEdit} /> : null}

      <PollSection
        poll={cfg.poll}
        onChange={(poll) => onChange({ ...cfg, poll })}
        disabled={ro}
        toggle="Set an interval"
        off={`Every ${DEFAULT_SQL_POLL_SECS} s (the default): a database sends no webhooks, so changes are polled for${captured.length > 0 ? "; NOTIFY wakes a poll early" : ""}.`}
        start={newPoll()}
      />

      <ReconcileFields cfg={sqlReconcileInputs(cfg)} schedule={sqlSchedule(cfg)} onChange={(reconcile) => onChange({ ...cfg, reconcile })} disabled={ro} />

      <ConfigPreview config={toSqlConfig(cfg)} />
    </>
  );
}

/** A view's statement, in a monospace text area; `:column` placeholders take the record's values. */
function Statement(props: { label: string; value: string | null | undefined; onChange: (v: string) => void; placeholder: string; hint: ReactNode; error?: string | null; disabled: boolean }) {
  return (
    <Field label={props.label} hint={props.hint} error={props.error} className="span-all">
      {(id) => (
        <textarea
          id={id}
          className="textarea code"
          rows={2}
          value={props.value ?? ""}
          placeholder={props.placeholder}
          disabled={props.disabled}
          aria-invalid={props.error ? true : undefined}
          onChange={(e) => props.onChange(e.target.value)}
        />
      )}
    </Field>
  );
}

/** One object: its table or view (and a view's statements), columns, page size and change capture. */
function SqlObjectFields({ o, url, nameField, onChange, disabled }: { o: SqlObject; url: string; nameField: ReactNode; onChange: (o: SqlObject) => void; disabled: boolean }) {
  const problems = sqlObjectProblems(o, url);
  const kind = relationKind(o);
  const key = o.key_column?.trim() || "id";
  const version = o.version_column?.trim();
  const postgres = sqlDialect(url) !== "sqlite";
  // NOTIFY is offered on PostgreSQL, and kept when a saved config has it (flagged if the URL is SQLite's).
  const captures = (Object.keys(CHANGE_CAPTURE_LABELS) as ChangeCapture[]).filter((k) => k !== "notify" || postgres || o.change_capture === "notify");
  return (
    <div className="form-grid">
      {nameField}
      <Select<RelationKind> label="Read from" value={kind} disabled={disabled} onChange={(v) => onChange(withRelationKind(o, v))} options={options(RELATION_LABELS)} />
      {kind === "table" ? (
        <Text label="Table" value={o.table} onChange={(v) => onChange({ ...o, table: v })} mono placeholder="employees" hint="schema.table allowed." error={problems.table} disabled={disabled} />
      ) : (
        <Text label="View" value={o.view} onChange={(v) => onChange({ ...o, view: v })} mono placeholder="staff_view" hint="schema.view allowed." error={problems.view ?? problems.table} disabled={disabled} />
      )}
      <Text label="Key column" value={o.key_column} onChange={(v) => onChange({ ...o, key_column: v })} mono placeholder="id" hint="Identifies a record; listings go in its order." error={problems.key_column} disabled={disabled} required />
      <Text label="Version column" value={o.version_column} onChange={(v) => onChange({ ...o, version_column: v })} mono placeholder="version" hint="An integer each update checks and increments. Blank: a row is read and compared before it is written." error={problems.version_column} disabled={disabled} />
      <Text label="Updated-at column" value={o.updated_at_column} onChange={(v) => onChange({ ...o, updated_at_column: v })} mono placeholder="updated_at" hint="Polls read rows changed since the newest seen. Blank: every poll lists the whole table." error={problems.updated_at_column} disabled={disabled} />
      <Num label="Page size" value={o.page_size} onChange={(v) => onChange({ ...o, page_size: v })} min={1} max={MAX_PAGE_SIZE} placeholder={String(DEFAULT_PAGE_SIZE)} hint={`Rows per page, 1 to ${MAX_PAGE_SIZE}. Blank: ${DEFAULT_PAGE_SIZE}.`} error={problems.page_size} disabled={disabled} />
      <Select<ChangeCapture>
        label="Change capture"
        value={o.change_capture ?? "none"}
        disabled={disabled || kind === "view"}
        hint={
          kind === "view"
            ? "Triggers capture tables only: a view is polled by its updated-at column."
            : o.change_capture === "table"
              ? "Triggers write every insert, update and delete to concord_changes; an admin installs them once saved."
              : o.change_capture === "notify"
                ? "Triggers send NOTIFY and each wakes a poll at once; deletes are still found by reconciliation. An admin installs them once saved."
                : "Changes are polled; deletes are found by reconciliation."
        }
        error={problems.change_capture}
        onChange={(v) => onChange({ ...o, change_capture: v })}
        options={captures.map((k) => [k, CHANGE_CAPTURE_LABELS[k]])}
      />
      {kind === "view" || o.insert || o.update || o.delete ? (
        <>
          <Statement
            label="Insert statement"
            value={o.insert}
            onChange={(v) => onChange({ ...o, insert: v })}
            placeholder={`INSERT INTO employees (name, email) VALUES (:name, :email) RETURNING ${key}`}
            hint={<>:column placeholders take the record&apos;s values; it may end with RETURNING {key}.</>}
            error={problems.insert}
            disabled={disabled}
          />
          <Statement
            label="Update statement"
            value={o.update}
            onChange={(v) => onChange({ ...o, update: v })}
            placeholder={`UPDATE employees SET name = :name WHERE ${key} = :${key}${version ? ` AND ${version} = :${version}` : ""}`}
            hint={statementHint(o, "update") ?? <>:column takes the row as read with the changes applied{version ? <>, :{version} the version the engine last saw</> : null}.</>}
            error={problems.update}
            disabled={disabled}
          />
          <Statement
            label="Delete statement"
            value={o.delete}
            onChange={(v) => onChange({ ...o, delete: v })}
            placeholder={`DELETE FROM employees WHERE ${key} = :${key}`}
            hint={statementHint(o, "delete") ?? <>:{key} takes the record&apos;s key. Blank: a delete the engine sends is refused (a dead letter).</>}
            disabled={disabled}
          />
        </>
      ) : null}
    </div>
  );
}
