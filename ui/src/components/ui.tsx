// Small shared pieces: values (masked values rendered distinctly), empty/error/loading states,
// page headers, drawers and dialogs with focus handling, fields, progress.

import { useEffect, useId, useRef, type ReactNode } from "react";
import { AlertTriangle, Inbox, Loader2, Lock, X } from "lucide-react";
import { LOCALE, formatMoney, showValue } from "../lib/format";
import { errorMessage, ApiError } from "../api/client";

/**
 * A JSON value as a person reads it. A masked value is shown as such and never revealed. A
 * money value with its currency reads "$80,500.00"; its canonical text stays in the title.
 */
export function Value({ v, title, currency }: { v: unknown; title?: string; currency?: string | null | undefined }) {
  const s = showValue(v);
  const money = s.kind === "masked" ? null : formatMoney(v, currency);
  if (money !== null) {
    return (
      <span className="v v-money" title={title ?? `${s.text} ${currency}`}>
        {money}
      </span>
    );
  }
  if (s.kind === "masked") {
    return (
      <span className="v-masked" role="img" aria-label={s.label} title="Hidden: your role may not see sensitive values">
        <Lock size={11} aria-hidden="true" />
        {s.text}
      </span>
    );
  }
  return (
    <span className={`v v-${s.kind}`} aria-label={s.kind === "null" ? s.label : undefined} title={title ?? (s.text.length > 40 ? s.text : undefined)}>
      {s.kind === "string" && s.text === "" ? <span className="faint">(empty)</span> : s.text}
    </span>
  );
}

export function PageHeader({ title, description, actions }: { title: ReactNode; description?: ReactNode; actions?: ReactNode }) {
  return (
    <header className="page-header">
      <div className="titles">
        <h1>{title}</h1>
        {description ? <p className="desc">{description}</p> : null}
      </div>
      {actions ? <div className="actions">{actions}</div> : null}
    </header>
  );
}

export function EmptyState({ icon, title, children }: { icon?: ReactNode; title: string; children?: ReactNode }) {
  return (
    <div className="empty" role="status">
      <div className="e-icon" aria-hidden="true">{icon ?? <Inbox size={22} />}</div>
      <div className="e-title">{title}</div>
      {children ? <div>{children}</div> : null}
    </div>
  );
}

export function ErrorState({ error, retry, title }: { error: unknown; retry?: () => void; title?: string }) {
  const forbidden = error instanceof ApiError && error.status === 403;
  const missing = error instanceof ApiError && error.status === 404;
  return (
    <div className="empty error" role="alert">
      <div className="e-icon" aria-hidden="true">{forbidden ? <Lock size={22} /> : <AlertTriangle size={22} />}</div>
      <div className="e-title">{title ?? (forbidden ? "Not allowed for your role" : missing ? "Not found" : "Could not load this")}</div>
      <div>{errorMessage(error)}</div>
      {retry && !forbidden && !missing ? (
        <button type="button" className="btn sm" onClick={retry}>
          Try again
        </button>
      ) : null}
    </div>
  );
}

export function Loading({ label = "Loading…" }: { label?: string }) {
  return (
    <div className="loading-line" role="status" aria-live="polite">
      <Loader2 size={16} className="spin" aria-hidden="true" />
      {label}
    </div>
  );
}

export function Spinner() {
  return <Loader2 size={14} className="spin" aria-hidden="true" />;
}

/** Open drawers and dialogs, innermost last: only the innermost answers Escape and keeps Tab inside. */
const openModals: object[] = [];

function useModalFocus(open: boolean, onClose: () => void) {
  const ref = useRef<HTMLDivElement>(null);
  const closeRef = useRef(onClose);
  closeRef.current = onClose;
  useEffect(() => {
    if (!open) return;
    const token = {};
    openModals.push(token);
    const before = document.activeElement as HTMLElement | null;
    const el = ref.current;
    // Focus the field marked data-autofocus, else the panel itself (so Tab starts inside it).
    const first = el?.querySelector<HTMLElement>("[data-autofocus]") ?? el;
    first?.focus({ preventScroll: true });
    const onKey = (e: KeyboardEvent) => {
      // A dialog opened over a drawer: Escape closes the dialog only.
      if (openModals[openModals.length - 1] !== token) return;
      if (e.key === "Escape") {
        e.stopPropagation();
        closeRef.current();
      } else if (e.key === "Tab" && el) {
        const items = [...el.querySelectorAll<HTMLElement>("button:not(:disabled), [href], input:not(:disabled), select:not(:disabled), textarea:not(:disabled), [tabindex]:not([tabindex='-1'])")].filter((n) => n.offsetParent !== null);
        if (items.length === 0) return;
        const firstItem = items[0]!;
        const lastItem = items[items.length - 1]!;
        if (e.shiftKey && document.activeElement === firstItem) {
          e.preventDefault();
          lastItem.focus();
        } else if (!e.shiftKey && document.activeElement === lastItem) {
          e.preventDefault();
          firstItem.focus();
        }
      }
    };
    document.addEventListener("keydown", onKey);
    return () => {
      document.removeEventListener("keydown", onKey);
      openModals.splice(openModals.indexOf(token), 1);
      before?.focus?.();
    };
  }, [open]);
  return ref;
}

/** A side panel over the page (role=dialog): Escape closes it, focus stays inside and returns after. */
export function Drawer(props: { open: boolean; onClose: () => void; title: ReactNode; children: ReactNode; footer?: ReactNode; headerExtra?: ReactNode }) {
  const ref = useModalFocus(props.open, props.onClose);
  const id = useId();
  if (!props.open) return null;
  return (
    <>
      <div className="overlay" onClick={props.onClose} aria-hidden="true" />
      <div className="drawer" role="dialog" aria-modal="true" aria-labelledby={id} ref={ref} tabIndex={-1}>
        <div className="drawer-head">
          <h2 id={id}>{props.title}</h2>
          {props.headerExtra}
          <button type="button" className="btn ghost icon" onClick={props.onClose} aria-label="Close panel">
            <X size={18} />
          </button>
        </div>
        <div className="drawer-body">{props.children}</div>
        {props.footer ? <div className="drawer-foot">{props.footer}</div> : null}
      </div>
    </>
  );
}

export function Dialog(props: { open: boolean; onClose: () => void; title: ReactNode; children: ReactNode; footer?: ReactNode; wide?: boolean }) {
  const ref = useModalFocus(props.open, props.onClose);
  const id = useId();
  if (!props.open) return null;
  return (
    <>
      <div className="overlay over-drawer" onClick={props.onClose} aria-hidden="true" />
      <div className={props.wide ? "dialog wide" : "dialog"} role="dialog" aria-modal="true" aria-labelledby={id} ref={ref} tabIndex={-1}>
        <div className="drawer-head">
          <h2 id={id}>{props.title}</h2>
          <button type="button" className="btn ghost icon" onClick={props.onClose} aria-label="Close dialog">
            <X size={18} />
          </button>
        </div>
        <div className="drawer-body">{props.children}</div>
        {props.footer ? <div className="drawer-foot">{props.footer}</div> : null}
      </div>
    </>
  );
}

export function Field({ label, hint, error, children, className }: { label: string; hint?: ReactNode; error?: string | null; children: (id: string) => ReactNode; className?: string }) {
  const id = useId();
  return (
    <div className={`field ${className ?? ""}`}>
      <label htmlFor={id}>{label}</label>
      {children(id)}
      {error ? <span className="err" role="alert">{error}</span> : hint ? <span className="hint">{hint}</span> : null}
    </div>
  );
}

export function Progress({ value, max, label }: { value: number; max: number; label: string }) {
  const pct = max > 0 ? Math.min(100, Math.round((value / max) * 100)) : 0;
  return (
    <div className="col" style={{ gap: 4 }}>
      <div className="row" style={{ fontSize: 12.5 }}>
        <span>{label}</span>
        <span className="spacer" />
        <span className="muted">
          {value.toLocaleString(LOCALE)} / {max.toLocaleString(LOCALE)} ({pct}%)
        </span>
      </div>
      <div className="progress" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={max} aria-valuenow={value}>
        <div style={{ width: `${pct}%` }} />
      </div>
    </div>
  );
}

export function Pill({ tone, children, title }: { tone?: "danger" | "warning" | "success" | "info" | "accent"; children: ReactNode; title?: string }) {
  return (
    <span className={`pill ${tone ?? ""}`} title={title}>
      {children}
    </span>
  );
}
