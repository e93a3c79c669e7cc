// Where the API is and who we are: the API base URL and the bearer token, from the Tauri
// shell (`window.__CONCORD__`) when it provides them, else from the page (origin, and the
// `#token=` fragment that `concord serve` prints, kept in sessionStorage).

declare global {
  interface Window {
    __CONCORD__?: { apiBase?: string; token?: string };
  }
}

const TOKEN_KEY = "concord.token";

/** The token in a URL fragment such as `#token=abc` or `#/exceptions&token=abc`, if any. */
export function tokenFromFragment(hash: string): string | null {
  const raw = hash.startsWith("#") ? hash.slice(1) : hash;
  for (const part of raw.split(/[&?]/)) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq) === "token") {
      let value: string;
      try {
        value = decodeURIComponent(part.slice(eq + 1)).trim();
      } catch {
        return null;
      }
      return value.length > 0 ? value : null;
    }
  }
  return null;
}

/** The fragment with its `token=` part removed ("" when nothing else is left). */
export function fragmentWithoutToken(hash: string): string {
  const raw = hash.startsWith("#") ? hash.slice(1) : hash;
  const kept = raw.split("&").filter((p) => !p.startsWith("token=") && p !== "");
  return kept.length > 0 ? `#${kept.join("&")}` : "";
}

/** Strips a trailing slash so paths can be appended: `http://x/` -> `http://x`. */
export function normalizeBase(base: string): string {
  return base.replace(/\/+$/, "");
}

export function apiBase(): string {
  const fromShell = window.__CONCORD__?.apiBase;
  return normalizeBase(fromShell && fromShell.length > 0 ? fromShell : window.location.origin);
}

/**
 * Reads the token once at start-up: from the shell, else from the URL fragment (which is then
 * removed from the address bar and history), else from this tab's sessionStorage.
 */
export function initToken(): string | null {
  const fromShell = window.__CONCORD__?.token;
  if (fromShell) return fromShell;
  const fromUrl = tokenFromFragment(window.location.hash);
  if (fromUrl) {
    try {
      sessionStorage.setItem(TOKEN_KEY, fromUrl);
    } catch {
      /* storage disabled: the token lives for this page only */
    }
    const url = window.location.pathname + window.location.search + fragmentWithoutToken(window.location.hash);
    window.history.replaceState(window.history.state, "", url);
    return fromUrl;
  }
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function storeToken(token: string | null): void {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* ignore */
  }
}
