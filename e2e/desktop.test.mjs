// The real Tauri window under Xvfb, driven through tauri-driver (W3C WebDriver on port 4444,
// backed by WebKitWebDriver): the app starts in demo mode, the dashboard shows live counts, and
// clicking the Exceptions nav changes the page. Everything started here is killed by PID.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, until } from "./demo.mjs";

// The app built for the tests, or another (the installed .deb, say) named by CONCORD_DESKTOP_APP.
const APP = process.env.CONCORD_DESKTOP_APP ?? join(ROOT, "target/debug/concord-desktop");
const DRIVER = process.env.TAURI_DRIVER ?? [join(homedir(), ".cargo/bin/tauri-driver"), "/usr/local/bin/tauri-driver"].find(existsSync) ?? "tauri-driver";
const PORT = 4444;
const W = `http://127.0.0.1:${PORT}`;
const DISPLAY = process.env.E2E_DISPLAY ?? ":99";
const procs = [];
let session;
const ELEMENT = "element-6066-11e4-a23f-4b4f6e4a2f2b";

async function wd(method, path, body) {
  const r = await fetch(W + path, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  });
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(j)}`);
  return j.value;
}
const s = (p) => `/session/${session}${p}`;
const find = async (css) => (await wd("POST", s("/element"), { using: "css selector", value: css }))[ELEMENT];
const text = async (el) => wd("GET", s(`/element/${el}/text`));
const script = async (js, args = []) => wd("POST", s("/execute/sync"), { script: js, args });

function start(cmd, args, env) {
  const p = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  p.stdout.on("data", (d) => (out += d));
  p.stderr.on("data", (d) => (out += d));
  procs.push(p);
  p.output = () => out;
  return p;
}

before(async () => {
  const home = mkdtempSync(join(tmpdir(), "concord-e2e-desktop-"));
  const env = { ...process.env, DISPLAY, HOME: home, XDG_DATA_HOME: join(home, ".local/share"), XDG_CONFIG_HOME: join(home, ".config"), XDG_CACHE_HOME: join(home, ".cache"), LANG: "en_US.UTF-8", LC_ALL: "en_US.UTF-8" };
  if (!existsSync(`/tmp/.X11-unix/X${DISPLAY.slice(1)}`)) {
    start("Xvfb", [DISPLAY, "-screen", "0", "1280x800x24", "-nolisten", "tcp"], env);
    await until("Xvfb", () => existsSync(`/tmp/.X11-unix/X${DISPLAY.slice(1)}`), { timeoutMs: 10_000, everyMs: 100 });
  }
  // The app keeps demo secrets in the kernel keyring: give the driver (and so the app) a session.
  const driver = start("keyctl", ["session", "-", DRIVER, "--port", String(PORT), "--native-driver", "/usr/bin/WebKitWebDriver"], env);
  await until("tauri-driver", async () => (await fetch(`${W}/status`, { signal: AbortSignal.timeout(2000) })).ok, { timeoutMs: 20_000, everyMs: 250 })
    .catch((e) => { throw new Error(`${e.message}\n${driver.output()}`); });
  const created = await wd("POST", "/session", {
    capabilities: { alwaysMatch: { browserName: "wry", "tauri:options": { application: APP, args: ["--demo"] } } },
  });
  session = created.sessionId;
});

after(async () => {
  if (session) await wd("DELETE", s("")).catch(() => {});
  for (const p of procs.reverse()) {
    if (p.exitCode === null) {
      try { process.kill(p.pid, "SIGTERM"); } catch {}
    }
  }
  await new Promise((r) => setTimeout(r, 1000));
  for (const p of procs) if (p.exitCode === null) try { process.kill(p.pid, "SIGKILL"); } catch {}
  // The app itself, if the driver left it behind (only ours: it runs with our temporary HOME).
  const left = spawnSync("pgrep", ["-f", `^${APP} --demo`], { encoding: "utf8" }).stdout.trim().split("\n").filter(Boolean);
  for (const pid of left) {
    const env = spawnSync("cat", [`/proc/${pid}/environ`], { encoding: "utf8" }).stdout ?? "";
    if (env.includes("concord-e2e-desktop-")) try { process.kill(Number(pid), "SIGKILL"); } catch {}
  }
});

test("the desktop app shows live counts and changes page", async () => {
  await until("the sidebar", async () => script("return !!document.querySelector('nav.sidebar')"), { timeoutMs: 60_000, everyMs: 1000 }).catch(async (e) => {
    const url = await wd("GET", s("/url")).catch((x) => x.message);
    const bootErrors = await script("return JSON.stringify(window.__CONCORD_ERRORS__ ?? null)").catch((x) => x.message);
    const body = await script("return document.body.innerText.slice(0, 1500) + String.fromCharCode(10) + document.body.innerHTML.slice(0, 1500)").catch((x) => x.message);
    const imp = await wd("POST", s("/execute/async"), { script: "const done = arguments[arguments.length - 1]; const src = document.querySelector('script[type=module]')?.src; import(src + '?probe').then(() => done('module ok: ' + src + ' root children ' + document.getElementById('root').childElementCount), (x) => done('module error: ' + x + ' ' + (x && x.stack)))", args: [] }).catch((x) => x.message);
    throw new Error(`${e.message}\nurl: ${url}\nboot errors: ${bootErrors}\nprobe: ${imp}\n${body}\n${procs.map((p) => p.output()).join("\n").slice(-3000)}`);
  });
  // Live counts: the dashboard's "Events in" card climbs above zero as the demo syncs.
  const events = await until("non-zero events in", async () => {
    const t = await script(`
      const card = [...document.querySelectorAll("main *")].find(e => e.children.length && /^\\s*Events in\\s*$/.test(e.children[0]?.textContent ?? ""));
      return document.body.innerText;`);
    const m = /Events in\s+([\d,]+)/.exec(t);
    return m && Number(m[1].replace(/,/g, "")) > 0 ? Number(m[1].replace(/,/g, "")) : false;
  }, { timeoutMs: 90_000, everyMs: 1000 });
  assert.ok(events > 0);
  console.log(`events in: ${events}`);
  // WebKitWebDriver's element references are not usable here, so the page is driven by script.
  await script(`document.querySelector('nav.sidebar a[href="/exceptions"]').click(); return true;`);
  await until("the Exceptions page", async () => {
    const path = await script("return location.pathname");
    const h1 = await script("return document.querySelector('h1')?.textContent ?? ''");
    return path === "/exceptions" && /Exceptions/.test(h1);
  }, { timeoutMs: 15_000 });
  // The screenshot shows the data, not the loading state: taken again if the page was loading
  // (a refetch) when it was taken.
  const loaded = () => script("return !document.querySelector('main')?.innerText.includes('Loading') && !!document.querySelector('main [role=row], main tbody tr, main .empty')");
  let shot;
  for (let attempt = 1; ; attempt++) {
    await until("the exceptions loaded", loaded, { timeoutMs: 30_000, everyMs: 500 });
    shot = await wd("GET", s("/screenshot"));
    if (await loaded()) break;
    assert.ok(attempt < 10, "the exceptions page kept reloading");
  }
  const { writeFileSync } = await import("node:fs");
  writeFileSync(join(ROOT, "docs/screenshots/desktop-exceptions.png"), Buffer.from(shot, "base64"));
});
