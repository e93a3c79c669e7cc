// A secret the config names: whether the OS keychain holds it (GET /api/secrets/{name}, which
// never returns the value), a write-only input to store or replace it (PUT), and removal with a
// confirmation (DELETE). The typed value lives only in the input (never in React state) and the
// input is cleared once the value is stored.

import { useCallback, useEffect, useId, useMemo, useRef, useState } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { toast } from "sonner";
import { KeyRound, Trash2 } from "lucide-react";
import { api, ApiError, errorMessage } from "../api/client";
import { Dialog, Pill, Spinner } from "./ui";

/** A write-only secret input whose value stays in the DOM until it is taken to be stored. */
export interface SecretInput {
  /** The input element (a callback ref). */
  ref: (el: HTMLInputElement | null) => void;
  onInput: (e: { currentTarget: HTMLInputElement }) => void;
  /** Something is typed. */
  filled: boolean;
  /** The typed value (read only to send it). */
  peek(): string;
  /** Empties the input once the value is stored. */
  clear(): void;
}

export function useSecretInput(): SecretInput {
  const el = useRef<HTMLInputElement | null>(null);
  const [filled, setFilled] = useState(false);
  const ref = useCallback((node: HTMLInputElement | null) => {
    el.current = node;
    if (!node) setFilled(false);
  }, []);
  return useMemo(
    () => ({
      ref,
      filled,
      onInput: (e: { currentTarget: HTMLInputElement }) => setFilled(e.currentTarget.value !== ""),
      peek: () => el.current?.value ?? "",
      clear: () => {
        if (el.current) el.current.value = "";
        setFilled(false);
      },
    }),
    [ref, filled],
  );
}

/** The name, settled after typing pauses (so a name being typed is not looked up per key). */
function useSettled(value: string, ms = 350): string {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return settled;
}

/** Whether the keychain holds a secret (admins only: the route refuses other roles). */
export function useSecretStatus(name: string | null | undefined, enabled: boolean) {
  const n = name?.trim() ?? "";
  return useQuery({
    queryKey: ["secret", n],
    queryFn: ({ signal }) => api.get("/api/secrets/{name}", { name: n }, signal),
    enabled: enabled && n !== "",
    staleTime: 30_000,
    retry: false,
  });
}

/** A pill saying whether the keychain holds the secret. */
export function SecretStatusPill({ name, enabled }: { name: string; enabled: boolean }) {
  const q = useSecretStatus(name, enabled);
  if (!enabled) return null;
  if (q.isPending) return <Spinner />;
  if (q.error) {
    return (
      <Pill tone="danger" title={errorMessage(q.error)}>
        {q.error instanceof ApiError && q.error.status === 503 ? "keychain unavailable" : "unknown"}
      </Pill>
    );
  }
  return q.data.stored ? <Pill tone="success">stored</Pill> : <Pill tone="warning">not stored</Pill>;
}

export function SecretField(props: {
  /** The keychain name the config gives it (blank while it is being named). */
  name: string | null | undefined;
  /** What it is: "API key", "OAuth client secret", "Webhook signing key", ... */
  label: string;
  input: SecretInput;
  /** Admins may see whether it is stored, store and remove it. */
  mayManage: boolean;
  disabled?: boolean;
  /** Saved systems that use this name, for the removal's warning. */
  usedBy?: string[];
  className?: string;
}) {
  const { input, mayManage } = props;
  const id = useId();
  const hintId = `${id}-hint`;
  const qc = useQueryClient();
  const name = useSettled(props.name?.trim() ?? "");
  const status = useSecretStatus(name, mayManage);
  const [busy, setBusy] = useState<"store" | "remove" | null>(null);
  const [confirm, setConfirm] = useState(false);
  const named = name !== "" && (props.name?.trim() ?? "") === name;
  const stored = status.data?.stored === true;

  const refresh = () => qc.invalidateQueries({ queryKey: ["secret", name] });

  const store = async () => {
    const value = input.peek();
    if (!named || value === "") return;
    setBusy("store");
    try {
      await api.put("/api/secrets/{name}", { name }, { value });
      input.clear();
      toast.success(`“${name}” is stored in the keychain`);
      await refresh();
    } catch (e) {
      toast.error(`Could not store “${name}”`, { description: errorMessage(e) });
    } finally {
      setBusy(null);
    }
  };

  const remove = async () => {
    setBusy("remove");
    try {
      await api.delete("/api/secrets/{name}", { name });
      setConfirm(false);
      toast.success(`“${name}” is removed from the keychain`);
      await refresh();
    } catch (e) {
      toast.error(`Could not remove “${name}”`, { description: errorMessage(e) });
    } finally {
      setBusy(null);
    }
  };

  let hint;
  if (!props.name?.trim()) hint = <>Name the secret first.</>;
  else if (!mayManage) hint = <>Kept in the OS keychain as “{props.name.trim()}”. Only admins see whether it is stored.</>;
  else if (!named || status.isPending)
    hint = (
      <>
        <Spinner /> Checking the keychain…
      </>
    );
  else if (status.error)
    hint = (
      <>
        <Pill tone="danger">{status.error instanceof ApiError && status.error.status === 503 ? "Keychain unavailable" : "Unknown"}</Pill> {errorMessage(status.error)}
      </>
    );
  else if (stored)
    hint = (
      <>
        <Pill tone="success">Stored</Pill> in the OS keychain as “{name}”. It is never shown again; type a new value to replace it.
      </>
    );
  else
    hint = (
      <>
        <Pill tone="warning">Not stored</Pill> The keychain has no “{name}”. Type the value, then store it (saving stores it too).
      </>
    );

  return (
    <div className={`field ${props.className ?? ""}`}>
      <label htmlFor={id}>
        <KeyRound size={12} aria-hidden="true" /> {props.label}
      </label>
      <div className="row">
        <input
          id={id}
          ref={input.ref}
          type="password"
          autoComplete="new-password"
          spellCheck={false}
          className="input"
          style={{ flex: 1 }}
          aria-describedby={hintId}
          placeholder={!props.name?.trim() ? "" : stored ? "•••••••• (stored)" : "value"}
          disabled={props.disabled || !props.name?.trim()}
          onInput={input.onInput}
        />
        {mayManage ? (
          <>
            <button type="button" className="btn" disabled={props.disabled || !named || !input.filled || busy !== null} onClick={() => void store()}>
              {busy === "store" ? <Spinner /> : null} {stored ? "Replace" : "Store"}
            </button>
            <button
              type="button"
              className="btn danger"
              disabled={props.disabled || !named || !stored || busy !== null}
              onClick={() => setConfirm(true)}
              title={stored ? `Remove “${name}” from the keychain` : "Nothing is stored under this name"}
            >
              <Trash2 size={14} /> Remove…
            </button>
          </>
        ) : null}
      </div>
      <span className="hint secret-hint" id={hintId} aria-live="polite">
        {hint}
      </span>
      <Dialog
        open={confirm}
        onClose={() => setConfirm(false)}
        title={`Remove “${name}” from the keychain?`}
        footer={
          <>
            <span className="spacer" />
            <button type="button" className="btn" onClick={() => setConfirm(false)} data-autofocus>
              Cancel
            </button>
            <button type="button" className="btn danger" disabled={busy !== null} onClick={() => void remove()}>
              {busy === "remove" ? <Spinner /> : <Trash2 size={16} />} Remove
            </button>
          </>
        }
      >
        <p>
          The value is deleted from the OS keychain and cannot be shown or recovered.
          {props.usedBy && props.usedBy.length > 0 ? (
            <>
              {" "}
              <strong>{props.usedBy.join(", ")}</strong> {props.usedBy.length === 1 ? "uses" : "use"} it: Concord cannot reach {props.usedBy.length === 1 ? "that system" : "those systems"} with it until a new value is stored.
            </>
          ) : null}
        </p>
      </Dialog>
    </div>
  );
}
