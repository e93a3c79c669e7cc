import { useState } from "react";
import { GitMerge, KeyRound } from "lucide-react";

/** Shown without a token: how to get one, and a field to paste it. */
export function SignIn({ onToken, message }: { onToken: (t: string) => void; message: string | null }) {
  const [value, setValue] = useState("");
  return (
    <main className="signin">
      <div className="card">
        <div className="card-head">
          <div className="brand-mark" aria-hidden="true" style={{ width: 28, height: 28, borderRadius: 8, display: "grid", placeItems: "center", color: "white", background: "linear-gradient(135deg,#6366f1,#4338ca)" }}>
            <GitMerge size={16} />
          </div>
          <h2>Sign in to Concord</h2>
        </div>
        <form
          className="card-body"
          onSubmit={(e) => {
            e.preventDefault();
            const t = value.trim();
            if (t) onToken(t);
          }}
        >
          {message ? (
            <div className="banner warning" role="alert">
              <KeyRound size={16} />
              <div className="b-body">{message}</div>
            </div>
          ) : null}
          <p className="muted">
            Open the address that <code>concord serve</code> printed (it ends in <code>#token=…</code>), or paste a token issued for you.
            The launch's own token lasts until the engine restarts; tokens issued in the console last until they are revoked.
          </p>
          <div className="field">
            <label htmlFor="token">Access token</label>
            <input id="token" className="input" type="password" autoComplete="off" value={value} onChange={(e) => setValue(e.target.value)} autoFocus />
          </div>
          <div className="row">
            <span className="spacer" />
            <button type="submit" className="btn primary" disabled={!value.trim()}>
              Sign in
            </button>
          </div>
        </form>
      </div>
    </main>
  );
}
