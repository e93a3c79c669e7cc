// Starts `concord serve --demo` inside its own kernel session keyring (`keyctl session -`) and
// reads the demo systems' secrets from that keyring, so the tests can call Acme HRIS and Acme
// Payroll through their own APIs. Everything is bounded and killed by PID.
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "..");
export const CONCORD = join(ROOT, "target/debug/concord");

export async function startDemo({ port, employees = 300, editRate = 1, seed = 1, timeoutMs = 60_000 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "concord-e2e-"));
  const db = join(dir, "demo.db");
  const names = ["demo-hris-api-key", "demo-payroll-client-secret"].map((n) => `${n}-${seed}`);
  // The shell runs concord in the background, prints its PID, waits for the secrets to be in
  // the session keyring (possessed by this session only) and prints them, then waits.
  const script = [
    `"$0" serve --demo --port ${port} --ui "${join(ROOT, "ui/dist")}" --employees ${employees} --edit-rate ${editRate} --seed ${seed} --db "${db}" &`,
    `c=$!; echo "concord-pid $c"`,
    ...names.map((n) => `i=0; until keyctl print %user:keyring-rs:${n}@concord >/dev/null 2>&1 || [ $i -ge 300 ]; do sleep 0.2; i=$((i+1)); done; echo "secret ${n} $(keyctl print %user:keyring-rs:${n}@concord 2>/dev/null)"`),
    `wait $c`,
  ].join("\n");
  const child = spawn("keyctl", ["session", "-", "sh", "-c", script, CONCORD], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const deadline = Date.now() + timeoutMs;
  const get = (re) => re.exec(out);
  while (!(get(/console at (\S+)/) && names.every((n) => get(new RegExp(`secret ${n} \\S+`))))) {
    if (child.exitCode !== null) throw new Error(`concord exited early:\n${out}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`concord did not start in ${timeoutMs} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const m = get(/Acme HRIS at (\S+), Acme Payroll at (\S+)/);
  const consoleUrl = get(/console at (\S+)/)[1];
  const pid = Number(get(/concord-pid (\d+)/)[1]);
  const secret = (n) => get(new RegExp(`secret ${n}-${seed} (\\S+)`))[1];
  return {
    dir,
    consoleUrl,
    origin: new URL(consoleUrl).origin,
    token: new URL(consoleUrl).hash.replace(/^#token=/, ""),
    hris: m[1],
    payroll: m[2],
    hrisKey: secret("demo-hris-api-key"),
    payrollSecret: secret("demo-payroll-client-secret"),
    output: () => out,
    async stop() {
      try {
        process.kill(pid, "SIGINT");
      } catch {}
      const end = Date.now() + 10_000;
      while (child.exitCode === null && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
      if (child.exitCode === null) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
        child.kill("SIGKILL");
      }
    },
  };
}

/** A small JSON client with a timeout. */
export async function http(url, { method = "GET", headers = {}, body, form } = {}) {
  const init = { method, headers: { ...headers }, signal: AbortSignal.timeout(15_000) };
  if (form) {
    init.body = new URLSearchParams(form).toString();
    init.headers["content-type"] = "application/x-www-form-urlencoded";
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["content-type"] = "application/json";
  }
  const r = await fetch(url, init);
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, json, text };
}

export async function until(what, fn, { timeoutMs = 30_000, everyMs = 500 } = {}) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function freePort() {
  return 20000 + Math.floor(Math.random() * 20000);
}
