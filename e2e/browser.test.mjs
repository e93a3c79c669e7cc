// The console in Debian's Chromium against `concord serve --demo`: mapping with a transform and
// its preview, a four-eyes salary conflict resolved by two stewards (checked in both demo
// systems through their own APIs), a dead-letter replay (exactly one new attempt) and a re-plan
// (followed until it fails again), a reconciliation started and followed from the Systems page,
// one that found too many records gone kept by an admin with a note, a new system's form
// switched to SCIM 2.0 and one switched to SQL, payroll's writes held in a plan that an admin
// reviews and enables (the held change then reaches payroll), a bulk set of salary conflicts
// approved by two stewards who each see every value, the circuit breaker holding a re-push of
// every payroll record until an admin confirms it from the banner, a scrape token told at
// sign-in that it cannot open the console, and a screenshot of every
// page in docs/screenshots/.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { ROOT, freePort, http, startDemo, until } from "./demo.mjs";

const SHOTS = join(ROOT, "docs/screenshots");
let demo, ctx, page;
const problems = [];

const api = (path, opts = {}, token = demo.token) =>
  http(demo.origin + path, { ...opts, headers: { authorization: `Bearer ${token}`, ...(opts.headers ?? {}) } });

async function launch() {
  return chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "concord-e2e-chromium-")), {
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1280, height: 800 },
    colorScheme: "light",
    // Launching takes longer on a loaded machine (builds beside the run): allow for it.
    timeout: 90_000,
  });
}

before(async () => {
  demo = await startDemo({ port: freePort() });
  ctx = await launch();
  ctx.setDefaultTimeout(15_000);
  page = ctx.pages()[0] ?? (await ctx.newPage());
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  await page.goto(demo.consoleUrl);
  await page.getByRole("navigation", { name: "Main" }).waitFor();
});

after(async () => {
  await ctx?.close().catch(() => {});
  await demo?.stop();
});

async function go(path) {
  await page.goto(demo.origin + path);
  await page.getByRole("navigation", { name: "Main" }).waitFor();
}

test("every page renders; a screenshot of each", async () => {
  mkdirSync(SHOTS, { recursive: true });
  // Let the demo produce some events, conflicts and dead letters first.
  await until("an open conflict and a dead letter", async () => {
    const m = (await api("/api/metrics")).json;
    return m.open_exceptions > 0 && m.dead_letters > 0 && m.counters.events_in > 0;
  }, { timeoutMs: 60_000 });
  const pages = [
    ["dashboard", "/", "Dashboard"],
    ["exceptions", "/exceptions", "Exceptions"],
    ["approvals", "/approvals", "Approvals"],
    ["dead-letters", "/dead-letters", "Dead letters"],
    ["audit", "/audit", "Audit"],
    ["systems", "/systems", "Systems"],
    ["mapper", "/mapper?system=hris", "Field mapper"],
    ["ownership", "/ownership", "Ownership"],
  ];
  for (const [name, path, nav] of pages) {
    await go(path);
    const link = page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: new RegExp(`^${nav}`) });
    await link.waitFor();
    assert.equal(await link.getAttribute("aria-current"), "page", `${nav} is the current page`);
    await page.locator("main h1, h1").first().waitFor();
    await page.waitForTimeout(1000);
    await page.screenshot({ path: join(SHOTS, `${name}.png`) });
  }
  assert.deepEqual(problems, []);
});

test("mapper: connect a field with a transform and see the preview", async () => {
  await go("/mapper?system=hris");
  // Remove the hire_date connection, then connect it again with the keyboard-friendly bar.
  const conn = page.getByRole("group", { name: /^Connection \d+: hire_date to hire_date$/ });
  await conn.waitFor();
  const label = await conn.getAttribute("aria-label");
  const n = /^Connection (\d+)/.exec(label)[1];
  await page.getByRole("button", { name: `Remove connection ${n}` }).click();
  await assert.rejects(conn.waitFor({ timeout: 1500 }), "the connection is gone");

  await page.getByRole("button", { name: /^System field hire_date\b/ }).click();
  await page.getByRole("combobox", { name: "Canonical field to connect to" }).selectOption("hire_date");
  await page.getByRole("button", { name: "Connect", exact: true }).click();

  const fresh = page.getByRole("group", { name: /^Connection \d+: hire_date to hire_date$/ });
  await fresh.waitFor();
  const transform = fresh.getByLabel("Transform");
  await transform.selectOption("date");
  await fresh.getByLabel("Date format").fill("%m/%d/%Y");

  // The live preview: the system's MM/DD/YYYY reads as canonical YYYY-MM-DD and writes back as is.
  const preview = page.getByRole("table", { name: "Preview of the sample record" });
  const row = preview.locator("tr", { has: page.locator("span.mono", { hasText: /^hire_date$/ }) }).first();
  await until("the preview row for hire_date", async () => {
    const text = (await row.innerText()).replace(/\s+/g, " ");
    const sys = /hire_date (\d{2})\/(\d{2})\/(\d{4})/.exec(text);
    const canon = /hire_date (\d{4})-(\d{2})-(\d{2})/.exec(text);
    return sys && canon && sys[3] === canon[1] && sys[1] === canon[2] && sys[2] === canon[3] ? text : false;
  }, { timeoutMs: 15_000 });
  await page.screenshot({ path: join(SHOTS, "mapper-connected.png") });
  // Not saved: the draft is discarded so the demo keeps its mapping (and nothing asks before
  // the next test leaves the page).
  await page.getByRole("button", { name: "Discard changes" }).click();
});

test("mapper: a save with a preview error is refused, and an unsaved edit asks before leaving", async () => {
  const before = (await api("/api/workspace")).json.mappings.find((m) => m.system === "hris");
  await go("/mapper?system=hris");
  const conn = page.getByRole("group", { name: /^Connection \d+: hire_date to hire_date$/ });
  await conn.waitFor();
  // The HRIS writes MM/DD/YYYY: read as YYYY-MM-DD, the sample's hire date is an error.
  await conn.getByLabel("Date format").fill("%Y-%m-%d");
  await page.getByRole("alert").filter({ hasText: "Save is refused while the preview shows an error" }).waitFor({ timeout: 15_000 });
  assert.equal(await page.getByRole("button", { name: "Save mapping" }).isDisabled(), true, "the save button is refused");
  await page.getByRole("button", { name: "Save mapping" }).scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(SHOTS, "mapper-refused.png") });

  // Leaving asks first; staying keeps the draft.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Dashboard" }).click();
  const ask = page.getByRole("dialog", { name: "Leave without saving?" });
  await ask.waitFor();
  await ask.getByRole("button", { name: "Stay" }).click();
  await ask.waitFor({ state: "detached" });
  assert.match(new URL(page.url()).pathname, /^\/mapper/, "still on the mapper");
  assert.equal(await conn.getByLabel("Date format").inputValue(), "%Y-%m-%d", "the draft is kept");
  // Saving asks first, with the rules the draft changes (cancelled: the demo keeps its mapping).
  await conn.getByLabel("Date format").fill("%m/%d/%Y");
  const dept = page.getByRole("group", { name: /^Connection \d+: department to department$/ });
  const n = /^Connection (\d+)/.exec(await dept.getAttribute("aria-label"))[1];
  await page.getByRole("button", { name: `Remove connection ${n}` }).click();
  const save = page.getByRole("button", { name: "Save mapping" });
  await until("the save allowed", async () => !(await save.isDisabled()), { timeoutMs: 15_000 });
  await save.click();
  const review = page.getByRole("dialog", { name: "Save the mapping of Acme HRIS?" });
  await review.getByRole("region", { name: "Rules that change" }).getByText("department → department").waitFor();
  assert.match(await review.innerText(), /removed/);
  await review.getByRole("button", { name: "Cancel" }).click();
  // Leaving loses it.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Dashboard" }).click();
  await ask.getByRole("button", { name: "Leave and lose them" }).click();
  await page.getByRole("heading", { name: "Dashboard", level: 1 }).waitFor();
  const after = (await api("/api/workspace")).json.mappings.find((m) => m.system === "hris");
  assert.deepEqual(after, before, "nothing was saved");
  assert.deepEqual(problems, []);
});

test("exceptions: a salary conflict resolved by two stewards reaches both systems", async () => {
  const list = (await api("/api/exceptions?kind=conflict&field=pay_rate&status=open&limit=50")).json;
  assert.ok(list.length > 0, "an open pay_rate conflict");
  const ex = list[0];
  const record = (await api(`/api/records/${ex.record_id}`)).json;
  const chosen = "87654.32";

  // First approval: the admin in the UI, with a typed value.
  await go(`/exceptions/${ex.id}`);
  const dialog = page.getByRole("dialog");
  await dialog.getByRole("textbox", { name: "Custom value" }).fill(chosen);
  await dialog.getByLabel("Note (kept in the audit)").fill("e2e: first approval");
  await dialog.getByRole("button", { name: "Approve (1 of 2)" }).click();
  await dialog.getByText(/First approval by local-admin/).waitFor();
  assert.equal((await api(`/api/exceptions/${ex.id}`)).json.status, "open", "one approval leaves it open");

  // Second approval: another steward, through the UI in a second tab.
  const issued = await api("/api/tokens", { method: "POST", body: { name: "e2e second steward", role: "steward" } });
  assert.equal(issued.status, 200, issued.text);
  const tab = await ctx.newPage();
  await tab.goto(`${demo.origin}/exceptions/${ex.id}#token=${issued.json.token}`);
  const d2 = tab.getByRole("dialog");
  await d2.getByRole("textbox", { name: "Custom value" }).fill(chosen);
  await d2.getByLabel("Note (kept in the audit)").fill("e2e: second approval");
  await d2.getByRole("button", { name: "Approve as second person" }).click();
  await until("the exception resolved", async () => (await api(`/api/exceptions/${ex.id}`)).json.status === "resolved");
  await tab.screenshot({ path: join(SHOTS, "exception-resolved.png") });
  await tab.close();

  // Both systems, through their own APIs.
  const token = (await http(`${demo.payroll}/oauth/token`, { method: "POST", form: { grant_type: "client_credentials", client_id: "concord-demo", client_secret: demo.payrollSecret } })).json.access_token;
  const both = await until("both systems to hold the chosen salary", async () => {
    const h = await http(`${demo.hris}/api/v1/workers/${record.links.hris}`, { headers: { "X-API-Key": demo.hrisKey } });
    const p = await http(`${demo.payroll}/v2/employees/${record.links.payroll}`, { headers: { authorization: `Bearer ${token}` } });
    const ok = Number(h.json?.salary) === 87654.32 && p.json?.salary_cents === 8765432;
    return ok ? { hris: h.json.salary, payroll: p.json.salary_cents } : false;
  }, { timeoutMs: 45_000, everyMs: 1000 });
  assert.ok(both);
  assert.equal((await api(`/api/records/${ex.record_id}`)).json.golden.pay_rate, "87654.32");
});

/**
 * Attempts of the write behind `key` made since `since` (ms) that the system turned away for a
 * passing reason (429, a 5xx, no answer). The demo payroll fails a share of its requests on
 * purpose, and the engine tries the same write again after those: a retry, not another write.
 */
async function passingFailuresSince(key, since) {
  const rows = ((await api("/api/dead-letters?status=all&limit=1000")).json ?? []).filter((d) => d.idempotency_key === key);
  const newest = rows.sort((a, b) => b.id - a.id)[0];
  if (!newest) return 0;
  const log = (await api(`/api/dead-letters/${newest.id}`)).json?.attempt_log ?? [];
  return log.filter((a) => Date.parse(`${a.at.slice(0, 23)}Z`) >= since && (a.status == null || a.status === 429 || a.status >= 500)).length;
}

test("dead letters: a replay sends exactly one write", async () => {
  const all = async () => (await api("/api/dead-letters?status=all&limit=1000")).json ?? [];
  const dead = (await api("/api/dead-letters?limit=50")).json.filter((d) => d.status === "dead" && d.error_class === "validation");
  assert.ok(dead.length > 0, "a validation dead letter");
  const dl = dead[0];
  const key = dl.idempotency_key;
  const attempts = async () => (await all()).filter((d) => d.idempotency_key === key).reduce((s, d) => s + d.attempts, 0);
  const before = await attempts();
  const auditBefore = (await api(`/api/audit?record_id=${dl.record_id}&limit=1000`)).json.length;

  const since = Date.now() - 1000;
  await go(`/dead-letters/${dl.id}`);
  const drawer = page.getByRole("dialog", { name: `Dead letter #${dl.id}` });
  // The request it was sent as is shown beside the response, and again before confirming.
  await drawer.getByRole("group", { name: "The request sent" }).getByText(dl.request.path).waitFor();
  await drawer.getByRole("button", { name: "Replay as sent…" }).click();
  const confirm = page.getByRole("dialog", { name: `Replay dead letter #${dl.id} as sent?` });
  await confirm.getByRole("group", { name: "Request to send again" }).getByText(dl.request.path).waitFor();
  await confirm.getByRole("button", { name: "Replay", exact: true }).click();
  // It is sent once; payroll refuses it again (422), so it comes back dead with one more attempt.
  const settled = await until("the replay to settle", async () => {
    const rows = (await all()).filter((d) => d.idempotency_key === key);
    const busy = rows.some((d) => d.status === "replaying" || d.status === "pending");
    const total = rows.reduce((s, d) => s + d.attempts, 0);
    return !busy && total > before ? { rows, total } : false;
  }, { timeoutMs: 30_000 });
  // The toast says how it ended (refused again), never a green "queued" beside it.
  await page.getByText(`Dead letter #${dl.id} failed again`).waitFor({ timeout: 30_000 });
  assert.equal(await page.getByText(`Dead letter #${dl.id} replayed`).count(), 0, "no success toast for a replay that failed");
  await page.waitForTimeout(3000); // nothing more may arrive
  const after = await attempts();
  const retried = await passingFailuresSince(key, since);
  assert.equal(after - before - retried, 1, `exactly one new write for ${key} (besides ${retried} retries of it after a passing failure): ${JSON.stringify(settled.rows)}`);
  const audit = (await api(`/api/audit?record_id=${dl.record_id}&limit=1000`)).json;
  console.log(`dead letter ${dl.id}: attempts ${before} -> ${after}; audit rows for record ${dl.record_id}: ${auditBefore} -> ${audit.length}`);
  await page.screenshot({ path: join(SHOTS, "dead-letter-replayed.png") });
});

test("dead letters: replaying a selection sends one write per dead letter", async () => {
  const all = async () => (await api("/api/dead-letters?status=all&limit=1000")).json ?? [];
  const dead = (await api("/api/dead-letters?limit=1000")).json.filter((d) => d.status === "dead");
  assert.ok(dead.length > 0, "dead letters to select");
  const keys = new Set(dead.map((d) => d.idempotency_key));
  const attemptsByKey = async () => {
    const m = new Map();
    for (const d of await all()) if (keys.has(d.idempotency_key)) m.set(d.idempotency_key, (m.get(d.idempotency_key) ?? 0) + d.attempts);
    return m;
  };
  const before = await attemptsByKey();

  const since = Date.now() - 1000;
  await go("/dead-letters");
  await page.getByRole("checkbox", { name: "Select all loaded rows" }).check();
  await page.getByRole("button", { name: "Replay selected" }).click();
  const settled = await until("the selection's replays to settle", async () => {
    const rows = (await all()).filter((d) => keys.has(d.idempotency_key));
    if (rows.some((d) => d.status === "replaying" || d.status === "pending")) return false;
    const now = await attemptsByKey();
    return [...keys].every((k) => (now.get(k) ?? 0) > (before.get(k) ?? 0)) ? now : false;
  }, { timeoutMs: 45_000 });
  await page.waitForTimeout(3000); // nothing more may arrive
  const after = await attemptsByKey();
  for (const k of keys) {
    const retried = await passingFailuresSince(k, since);
    assert.equal(after.get(k) - before.get(k) - retried, 1, `exactly one new write for ${k} (settled at ${settled.get(k)}, besides ${retried} retries of it after a passing failure)`);
  }
  console.log(`replayed a selection of ${keys.size} dead letters: one new write each`);
});

/**
 * The newest run of a system once it is over. The demo payroll fails a share of its requests on
 * purpose; a run that meets one pauses (still `running`) until it is started again, which the
 * test does when it sees no new page for a few seconds, as a person would with Reconcile now.
 */
async function settledRun(system) {
  return until(`${system}'s run to finish`, async () => {
    const r = (await api(`/api/reconciliations?system=${system}&limit=1`)).json?.[0];
    if (r && r.status === "running" && Date.now() - Date.parse(r.updated_at) > 5000) await api(`/api/systems/${system}/reconcile`, { method: "POST" });
    return r && r.status !== "running" ? r : false;
  }, { timeoutMs: 90_000, everyMs: 1000 });
}

test("dead letters: a re-plan shows the request it would send, queues one new write and follows it", async () => {
  const dead = (await api("/api/dead-letters?limit=200")).json.filter((d) => d.status === "dead" && d.kind === "write");
  assert.ok(dead.length > 0, "a dead write to re-plan");
  const dl = dead[0];
  const preview = (await api(`/api/dead-letters/${dl.id}/preview`)).json;
  assert.ok(preview.replan?.request, `the preview says what a re-plan would send: ${JSON.stringify(preview)}`);

  await go(`/dead-letters/${dl.id}`);
  const drawer = page.getByRole("dialog", { name: `Dead letter #${dl.id}` });
  await drawer.getByRole("group", { name: "Re-plan request" }).getByText(preview.replan.request.path).waitFor();
  await drawer.getByRole("button", { name: "Re-plan from current data…" }).click();
  const confirm = page.getByRole("dialog", { name: `Re-plan dead letter #${dl.id} from current data?` });
  await confirm.getByRole("group", { name: "Request to send" }).getByText(preview.replan.request.path).waitFor();
  await confirm.getByRole("button", { name: "Re-plan and send" }).click();

  // The dead letter is settled at once; the new write is followed until it is delivered or fails again.
  await until("the dead letter settled", async () => (await api(`/api/dead-letters/${dl.id}`)).json.status === "replayed");
  const followed = drawer.getByRole("status").filter({ hasText: /^The new write #\d+ (was delivered|failed again)/ });
  await followed.waitFor({ timeout: 30_000 });
  const replans = (await api(`/api/audit?record_id=${dl.record_id}&system=${dl.system}&limit=200`)).json.filter((a) => a.rule === "dead_letter:replan" && a.detail?.dead_letter === dl.id);
  assert.equal(replans.length, 1, "one re-plan in the audit");
  console.log(`dead letter ${dl.id} re-planned: ${(await followed.innerText()).replace(/\s+/g, " ")}`);
  await page.screenshot({ path: join(SHOTS, "dead-letter-replanned.png") });
});

test("mapper: the table view auto-maps a new system at 1,024 px, the admin reviews and saves", async () => {
  // A second connection to the demo payroll, as an admin adding a system would make it: nothing
  // mapped yet. New systems start in plan mode, so saving its mapping writes nothing anywhere.
  const ws = (await api("/api/workspace")).json;
  const payroll = ws.systems.find((s) => s.id === "payroll");
  const copy = { ...payroll, id: "payroll_copy", name: "Payroll copy", writes: "plan", config: { ...payroll.config, poll: { interval_secs: 3600 } } };
  const created = await api("/api/systems/payroll_copy", { method: "PUT", body: copy });
  assert.equal(created.status, 200, created.text);
  await page.setViewportSize({ width: 1024, height: 768 });
  try {
    await go("/mapper?system=payroll_copy&view=table");
    const table = page.getByRole("table", { name: /^Canonical fields and each system's field, Payroll copy editable$/ });
    await table.waitFor();
    await page.getByRole("columnheader", { name: /Acme HRIS/ }).waitFor();
    await page.getByRole("button", { name: "Auto-map…" }).click();
    const review = page.getByRole("dialog", { name: "Auto-map Payroll copy: review the suggestions" });
    const suggested = review.getByRole("table", { name: "Suggested connections" });
    await suggested.waitFor();
    const pay = suggested.locator('tr[data-suggestion="pay_rate"]');
    assert.match(await pay.innerText(), /salary_cents[\s\S]*money in cents[\s\S]*the name says minor units/, "salary_cents is suggested for pay_rate, in cents");
    assert.match(await suggested.locator('tr[data-suggestion="employee_number"]').innerText(), /emp_no/);
    await page.screenshot({ path: join(SHOTS, "mapper-automap.png") });
    const connect = review.getByRole("button", { name: /^Connect \d+$/ });
    const count = Number(/\d+/.exec(await connect.innerText())[0]);
    await connect.click();
    await review.waitFor({ state: "detached" });

    // Both systems side by side: payroll's field for pay_rate next to the HRIS's.
    const payRow = table.locator('tr[data-field="pay_rate"]');
    assert.equal(await payRow.getByRole("combobox", { name: "Payroll copy field for pay_rate" }).inputValue(), "salary_cents");
    assert.match(await payRow.innerText(), /salary\b/, "the HRIS column shows its own salary field in the same row");
    await page.getByLabel("Find a field").fill("home_");
    await until("the search to keep only the home address rows", async () => {
      const names = await table.locator("tbody tr").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-field")));
      return names.length >= 5 && names.every((n) => n.startsWith("home_"));
    });
    // The preview shows what each sample value becomes, in the row.
    await until("the preview's canonical value in the row", async () => !/→\s*…/.test(await table.locator('tr[data-field="home_city"]').innerText()));
    await page.locator("[data-sonner-toast]").first().waitFor({ state: "detached", timeout: 15_000 });
    await page.screenshot({ path: join(SHOTS, "mapper-table.png") });
    await page.getByLabel("Find a field").fill("");

    const save = page.getByRole("button", { name: "Save mapping" });
    await until("the preview to allow saving", async () => !(await save.isDisabled()));
    await save.click();
    const confirm = page.getByRole("dialog", { name: "Save the mapping of Payroll copy?" });
    await confirm.getByRole("button", { name: "Save mapping" }).click();
    await page.getByText("Mapping of payroll_copy employee saved").waitFor();
    const mapping = (await api("/api/workspace")).json.mappings.find((m) => m.system === "payroll_copy");
    assert.equal(mapping.rules.length, count, "every reviewed suggestion is saved");
    // How close auto-map comes to the demo's hand-written payroll mapping.
    const key = (r) => `${r.system.join("+")}=>${(r.canonical ?? []).join("+")}`;
    const manual = new Set(ws.mappings.find((m) => m.system === "payroll").rules.map(key));
    const same = mapping.rules.filter((r) => manual.has(key(r))).length;
    console.log(`# auto-map: ${count} connections, ${same} of them as in the hand-written payroll mapping (${manual.size} rules)`);
    assert.ok(same >= 14, `auto-map finds most of payroll's hand-written connections (${same})`);
    const rule = mapping.rules.find((r) => r.canonical?.[0] === "pay_rate");
    assert.deepEqual(rule.transform, { kind: "money_minor", exponent: 2 }, "cents are saved as minor units");

    // Ownership at the same width: scrolled sideways, the field column stays in view.
    await go("/ownership");
    const matrix = page.getByRole("table", { name: "Ownership of employee fields" });
    await matrix.waitFor();
    const scrolled = await matrix.evaluate((t) => {
      t.parentElement.scrollLeft = t.parentElement.scrollWidth;
      return t.parentElement.scrollLeft;
    });
    assert.ok(scrolled > 0, `the matrix is wider than the page at 1,024 px and scrolls (${scrolled} px)`);
    const cell = await matrix.locator("td.fieldname", { hasText: "pay_rate" }).first().boundingBox();
    const left = await matrix.evaluate((t) => t.parentElement.getBoundingClientRect().left);
    assert.ok(cell.x >= left - 1, `the field column stays in view (cell at ${cell.x}, matrix at ${left})`);
    await page.screenshot({ path: join(SHOTS, "ownership-1024.png") });
  } finally {
    await page.setViewportSize({ width: 1280, height: 800 });
    const removed = await api("/api/systems/payroll_copy?confirm=true", { method: "DELETE" });
    assert.equal(removed.status, 200, removed.text);
  }
  assert.deepEqual(problems, []);
});

test("systems: reconcile now is followed until it says what it found", async () => {
  await go("/systems");
  const card = page.getByRole("article", { name: /Acme HRIS/ });
  await card.getByRole("button", { name: "Reconcile now" }).click();
  const run = await settledRun("hris");
  assert.equal(run.status, "done", `the newest run of hris is done: ${JSON.stringify(run)}`);
  const outcome = card.getByRole("status").filter({ hasText: /employee: Done/ });
  await outcome.waitFor({ timeout: 15_000 });
  assert.match(await outcome.innerText(), new RegExp(`listed ${run.listed}`), "the card shows the run's outcome");
});

test("systems: a new system's form switches to SCIM 2.0 and flags what the server would refuse", async () => {
  await go("/systems");
  await page.getByRole("link", { name: "Add system" }).click();
  const form = page.getByRole("form", { name: "Add a system" });
  await form.getByLabel("Connector").selectOption({ label: "SCIM 2.0" });
  await form.getByLabel("Base URL").fill("https://example.okta.com/scim/v2/Users");
  await form.getByText("The SCIM base, without /Users: each object adds its endpoint.").waitFor();
  await form.getByLabel("Base URL").fill("https://example.okta.com/scim/v2");
  const users = form.getByRole("tabpanel", { name: "employee" });
  assert.equal(await users.getByLabel("Resource type").inputValue(), "User");
  await users.getByLabel("Page size").fill("0");
  await users.getByText("A whole number from 1 to 1000.").waitFor();
  await users.getByLabel("Page size").fill("200");
  await users.getByLabel("On delete").selectOption("deactivate");
  const config = JSON.parse(await form.locator("details pre").textContent());
  assert.deepEqual(config.objects, { employee: { resource: "User", page_size: 200, on_delete: "deactivate" } });
  assert.equal(config.base_url, "https://example.okta.com/scim/v2");
  await users.evaluate((el) => el.closest("section").scrollIntoView());
  await page.screenshot({ path: join(SHOTS, "systems-new-scim.png") });
  assert.deepEqual(problems, []);
});

test("systems: a new system's form switches to SQL, refuses a password in the URL and saves a table object", async () => {
  await go("/systems");
  await page.getByRole("link", { name: "Add system" }).click();
  const form = page.getByRole("form", { name: "Add a system" });
  await form.getByLabel("Connector").selectOption({ label: "SQL database (PostgreSQL, SQLite)" });
  await form.getByLabel("Database URL").fill("postgres://concord:hunter2@db.internal:5432/hr");
  await form.getByText(/^The URL holds a password, which the engine refuses/).waitFor();
  await form.getByLabel("Database URL").fill("postgres://concord@db.internal:5432/hr");
  await form.getByLabel("Password name (keychain)").fill("hrdb-password");
  const employee = form.getByRole("tabpanel", { name: "employee" });
  assert.equal(await employee.getByLabel("Read from").inputValue(), "table");
  await employee.getByLabel("Table", { exact: true }).fill("hr.employees");
  await employee.getByLabel("Version column").fill("version");
  await employee.getByLabel("Updated-at column").fill("updated_at");
  await employee.getByLabel("Page size").fill("0");
  await employee.getByText("A whole number from 1 to 10000.").waitFor();
  await employee.getByLabel("Page size").fill("500");
  await employee.getByLabel("Change capture").selectOption("table");
  const config = JSON.parse(await form.locator("details pre").textContent());
  assert.deepEqual(config, {
    url: "postgres://concord@db.internal:5432/hr",
    password_secret: "hrdb-password",
    objects: { employee: { table: "hr.employees", key_column: "id", version_column: "version", updated_at_column: "updated_at", page_size: 500, change_capture: "table" } },
  });
  await employee.evaluate((el) => el.closest("section").scrollIntoView());
  await page.screenshot({ path: join(SHOTS, "systems-new-sql.png") });
  assert.deepEqual(problems, []);
});

test("systems: a reconciliation that finds too many records gone deletes nothing until an admin decides", async () => {
  // Remove a quarter of payroll's employees behind Concord's back (payroll sends no webhooks).
  const token = (await http(`${demo.payroll}/oauth/token`, { method: "POST", form: { grant_type: "client_credentials", client_id: "concord-demo", client_secret: demo.payrollSecret } })).json.access_token;
  const auth = { authorization: `Bearer ${token}` };
  const listed = await until("payroll's employees", async () => (await http(`${demo.payroll}/v2/employees?limit=200`, { headers: auth })).json?.items);
  const gone = listed.slice(0, Math.ceil(listed.length / 4));
  // The demo payroll refuses some requests on purpose (503, 429): try each delete again until it is done.
  for (const e of gone) await until(`payroll deletes ${e.id}`, async () => [200, 404].includes((await http(`${demo.payroll}/v2/employees/${e.id}`, { method: "DELETE", headers: auth })).status), { everyMs: 200 });
  const before = (await api("/api/records?system=payroll&external_id=" + encodeURIComponent(gone[0].id))).json;

  await go("/systems");
  await page.getByRole("article", { name: /Acme Payroll/ }).getByRole("button", { name: "Reconcile now" }).click();
  const run = await settledRun("payroll");
  assert.equal(run.status, "needs_confirmation", JSON.stringify(run));
  const banner = page.getByRole("region", { name: "Reconciliations waiting for an admin" }).getByRole("alert").first();
  await banner.waitFor({ timeout: 15_000 });
  assert.equal(run.deleted, 0, "nothing is deleted while the run waits");
  assert.match(await banner.innerText(), new RegExp(`${run.vanished} of ${run.linked} linked gone`));
  await page.screenshot({ path: join(SHOTS, "systems-reconcile-held.png") });

  await banner.getByRole("button", { name: "Keep them…" }).click();
  const keep = page.getByRole("dialog", { name: /^Keep the \d+ records gone from Acme Payroll\?$/ });
  await keep.getByLabel("Note (required)").fill("e2e: payroll lost access to a quarter of its records");
  await keep.getByRole("button", { name: "Keep them", exact: true }).click();
  await until("the run dismissed", async () => (await api(`/api/reconciliations/${run.id}`)).json.status === "dismissed");
  await page.getByRole("region", { name: "Reconciliations waiting for an admin" }).waitFor({ state: "detached", timeout: 10_000 });
  const after = (await api("/api/records?system=payroll&external_id=" + encodeURIComponent(gone[0].id)));
  assert.equal(after.json?.deleted ?? false, false, `a kept record is not deleted (${before?.id})`);
});

test("plan: an admin reviews what payroll would be sent and enables it from the plan; the change reaches payroll", async () => {
  // Hold payroll's writes, as a system saved from the console is held.
  const ws = (await api("/api/workspace")).json;
  const payroll = ws.systems.find((s) => s.id === "payroll");
  const held = await api("/api/systems/payroll", { method: "PUT", body: { ...payroll, writes: "plan" } });
  assert.equal(held.status, 200, held.text);
  let record;
  for (let id = 1; id < 50 && !record; id++) {
    const r = (await api(`/api/records/${id}`)).json;
    if (r?.links?.hris && r?.links?.payroll) record = r;
  }
  assert.ok(record, "a person in both systems");
  const hrisHeaders = { "X-API-Key": demo.hrisKey };
  const worker = (await http(`${demo.hris}/api/v1/workers/${record.links.hris}`, { headers: hrisHeaders })).json;
  const family = worker.full_name.split(" ").slice(1).join(" ");
  const edited = await http(`${demo.hris}/api/v1/workers/${record.links.hris}`, { method: "PATCH", headers: hrisHeaders, body: { full_name: `Planny ${family}` } });
  assert.equal(edited.status, 200, edited.text);
  await until("the HRIS change planned for payroll", async () =>
    (await api("/api/systems/payroll/plan?op=update&limit=10000")).json.items.some((w) => w.record_id === record.id && w.fields.some((f) => f.field === "given_name" && f.to === "Planny")),
  );

  await go("/systems");
  await page.getByRole("article", { name: /Acme Payroll/ }).getByRole("link", { name: "Review plan" }).click();
  await page.getByRole("heading", { name: "Plan for Acme Payroll" }).waitFor();
  await page.getByRole("button", { name: "updates" }).click();
  await page.getByRole("cell", { name: "Planny", exact: true }).first().waitFor();
  await page.screenshot({ path: join(SHOTS, "plan.png") });
  // The demo keeps editing people, so the plan may grow between review and enabling: the
  // engine then refuses and the page shows the new plan to enable.
  for (let attempt = 1; ; attempt++) {
    // A refusal's toast from the attempt before must not be read as this attempt's outcome.
    await page.getByText("Writes were not enabled").first().waitFor({ state: "hidden", timeout: 20_000 });
    await page.getByRole("button", { name: "Enable writes" }).click();
    await page.getByRole("dialog").getByRole("button", { name: /^Enable and send/ }).click();
    const outcome = await Promise.race([
      page.getByText("Writes to Acme Payroll enabled").waitFor().then(() => "enabled", () => null),
      page.getByText("Writes were not enabled").first().waitFor().then(() => "refused", () => null),
    ]);
    if (outcome === "enabled") break;
    assert.ok(attempt < 5, `enabling was refused ${attempt} times`);
  }
  await page.getByText("writes enabled").waitFor();
  const token = (await http(`${demo.payroll}/oauth/token`, { method: "POST", form: { grant_type: "client_credentials", client_id: "concord-demo", client_secret: demo.payrollSecret } })).json.access_token;
  await until("payroll to hold the change held in the plan", async () =>
    (await http(`${demo.payroll}/v2/employees/${record.links.payroll}`, { headers: { authorization: `Bearer ${token}` } })).json?.first_name === "Planny",
    { timeoutMs: 45_000, everyMs: 1000 },
  );
  const audit = (await api("/api/audit?system=payroll&limit=50")).json;
  assert.ok(audit.some((e) => e.rule === "config:writes_enabled"), "enabling is in the audit");
  assert.deepEqual(problems, []);
});

test("approvals: two stewards approve a bulk set of salary conflicts, each shown every value", async () => {
  await until("open salary conflicts without an approval", async () =>
    (await api("/api/exceptions?kind=conflict&field=pay_rate&awaiting_approval=false&limit=100")).json.length >= 2,
  { timeoutMs: 60_000 });
  const tokenFor = async (name) => {
    const issued = await api("/api/tokens", { method: "POST", body: { name, role: "steward" } });
    assert.equal(issued.status, 200, issued.text);
    return issued.json.token;
  };
  const first = await tokenFor("e2e bulk steward one");
  const second = await tokenFor("e2e bulk steward two");

  // The first steward previews payroll's salaries for every conflict, then approves them.
  const one = await ctx.newPage();
  one.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  await one.goto(`${demo.origin}/exceptions?kind=conflict&field=pay_rate#token=${first}`);
  await one.getByRole("button", { name: "Resolve filtered…" }).click();
  const bulk = one.getByRole("dialog", { name: "Resolve filtered exceptions" });
  await bulk.getByLabel("Keep").selectOption({ label: "Acme Payroll's value" });
  const shown = bulk.getByRole("table", { name: "Each record's value now and the value chosen" });
  await shown.locator("tbody tr").first().waitFor();
  assert.match(await shown.innerText(), /\$\d{1,3}(,\d{3})*\.\d{2}/, "salaries are shown in dollars, not as bare numbers");
  await one.screenshot({ path: join(SHOTS, "bulk-resolve.png") });
  // The demo keeps editing people: a set that changed while it was reviewed is refused and
  // shown again.
  for (let attempt = 1; ; attempt++) {
    await one.getByText("The set changed while you reviewed it").first().waitFor({ state: "hidden", timeout: 20_000 });
    await bulk.getByRole("button", { name: /^Approve \d+$/ }).click();
    const outcome = await Promise.race([
      bulk.getByText(/need a second approver/).waitFor().then(() => "approved", () => null),
      one.getByText("The set changed while you reviewed it").first().waitFor().then(() => "changed", () => null),
    ]);
    if (outcome === "approved") break;
    assert.ok(attempt < 5, `the first approval was refused ${attempt} times`);
    await shown.locator("tbody tr").first().waitFor();
  }
  await one.close();
  const approved = (await api("/api/exceptions?field=pay_rate&awaiting_approval=true&limit=1000")).json
    .filter((e) => e.detail.approval?.by === "e2e bulk steward one");
  assert.ok(approved.length >= 2, `the first steward's approvals await a second person (${approved.length})`);
  for (const e of approved) assert.equal(e.status, "open", "a first approval writes nothing");

  // The second steward sees them in their queue, with the count in the navigation.
  const two = await ctx.newPage();
  two.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  await two.goto(`${demo.origin}/approvals#token=${second}`);
  const nav = two.getByRole("navigation", { name: "Main" }).getByRole("link", { name: /^Approvals/ });
  await until("the navigation to count the approvals awaiting the second steward", async () => {
    const label = await nav.locator(".count").getAttribute("aria-label");
    const n = Number(/^(\d+)/.exec(label ?? "")?.[1] ?? 0);
    return n >= approved.length ? n : false;
  });
  await two.getByRole("button", { name: /^Review and approve \d+$/ }).click();
  const dialog = two.getByRole("dialog", { name: "Second approval" });
  const values = dialog.getByRole("table", { name: "The values you approve" });
  await values.locator("tbody tr").first().waitFor();
  const text = await values.innerText();
  assert.match(text, /e2e bulk steward one/, "the second steward sees who approved first");
  assert.match(text, /\$\d{1,3}(,\d{3})*\.\d{2}/, "and each value in dollars");
  await two.screenshot({ path: join(SHOTS, "approvals.png") });
  for (let attempt = 1; ; attempt++) {
    await two.getByText("These approvals changed while you reviewed them").first().waitFor({ state: "hidden", timeout: 20_000 });
    await dialog.getByRole("button", { name: /^Approve and apply \d+$/ }).click();
    const outcome = await Promise.race([
      two.getByText(/approved and applied/).first().waitFor().then(() => "applied", () => null),
      two.getByText("These approvals changed while you reviewed them").first().waitFor().then(() => "changed", () => null),
    ]);
    if (outcome === "applied") break;
    assert.ok(attempt < 5, `the second approval was refused ${attempt} times`);
    await values.locator("tbody tr").first().waitFor();
  }
  await two.close();

  // Each is resolved with the payroll value, and the audit keeps what both were shown.
  const resolved = await until("the approved conflicts resolved", async () => {
    const now = await Promise.all(approved.map(async (e) => (await api(`/api/exceptions/${e.id}`)).json));
    return now.every((e) => e.status === "resolved") ? now : false;
  });
  for (const e of resolved) assert.equal(e.resolution.value, e.detail.values.payroll, `exception ${e.id} takes payroll's salary`);
  const audit = (await api(`/api/audit?record_id=${approved[0].record_id}&limit=200`)).json;
  const entry = audit.find((a) => a.rule === "resolution:conflict" && a.detail?.exception === approved[0].id);
  assert.ok(entry, "the resolution is audited");
  assert.equal(entry.actor, "e2e bulk steward two");
  assert.ok(entry.detail.shown && entry.detail.first_approval?.shown, "the audit names the preview each steward was shown");
  const record = (await api(`/api/records/${approved[0].record_id}`)).json;
  const expected = Number(approved[0].detail.values.payroll);
  await until("the HRIS to hold payroll's salary", async () => {
    const h = await http(`${demo.hris}/api/v1/workers/${record.links.hris}`, { headers: { "X-API-Key": demo.hrisKey } });
    return Number(h.json?.salary) === expected;
  }, { timeoutMs: 45_000, everyMs: 1000 });
  assert.deepEqual(problems, []);
});

test("breaker: a re-push of every payroll record is held, the banner says why, and an admin confirms it", async () => {
  const issued = await api("/api/tokens", { method: "POST", body: { name: "e2e support", role: "support" } });
  assert.equal(issued.status, 200, issued.text);
  const repush = await api("/api/systems/payroll/repush", { method: "POST", body: { all: true } }, issued.json.token);
  assert.equal(repush.status, 200, repush.text);
  assert.ok(repush.json.queued >= 100, `the re-push queued a write per person (${repush.json.queued})`);
  const trip = await until("the breaker to trip", async () => (await api("/api/systems/payroll/breaker")).json.open);
  assert.ok(trip.overwrites + trip.deletes > trip.max_share * trip.linked, "it tripped above its share");

  await go("/");
  const banner = page.locator(".alert-strip", { hasText: "Writes to Acme Payroll are held by the circuit breaker" });
  await banner.waitFor();
  assert.match(await banner.innerText(), /of \d+ records \(\d+%\) would be overwritten or deleted within 10 s; the limit is 50%/);
  await banner.getByRole("link", { name: "Review" }).click();
  const panel = page.getByRole("region", { name: "The circuit breaker holds every write to Acme Payroll" });
  await panel.waitFor();
  await page.getByRole("cell").first().waitFor();
  await page.screenshot({ path: join(SHOTS, "breaker.png") });
  // The demo keeps editing while the admin reviews: the decision covers the writes shown, and
  // the few queued meanwhile are judged by the breaker on their own (within its share, they flow).
  await panel.getByRole("button", { name: "Confirm and send" }).click();
  await page.getByRole("dialog").getByRole("button", { name: /^Send \d+ writes$/ }).click();
  await page.getByText("Held writes to Acme Payroll confirmed").waitFor();
  await until("the trip confirmed", async () => (await api("/api/systems/payroll/breaker")).json.trips[0].status === "confirmed");
  await banner.waitFor({ state: "detached", timeout: 15_000 });
  await until("the held writes sent", async () => (await api("/api/systems/payroll/plan")).json.counts.updates === 0, { timeoutMs: 60_000, everyMs: 1000 });
  // Every write the re-push sent is in the audit too: look back far enough.
  const audit = (await api("/api/audit?system=payroll&limit=10000")).json;
  const decided = audit.find((e) => e.rule === "breaker:confirmed");
  assert.ok(decided && audit.some((e) => e.rule === "breaker:tripped"), "tripping and confirming are audited");
  assert.equal(decided.actor, "local-admin");

  // The configuration history holds the plan test's save of payroll and its enabling.
  await go("/history?kind=system");
  const versions = page.getByRole("region", { name: "Versions" });
  await versions.getByRole("cell", { name: /payroll/ }).first().waitFor();
  await page.getByRole("table", { name: /^What version \d+ changed$/ }).waitFor();
  await page.screenshot({ path: join(SHOTS, "history.png") });
  assert.deepEqual(problems, []);
});

test("scheduled: a rise the HRIS dates ahead waits on the Scheduled page, payroll keeps its pay until then", async () => {
  let record;
  for (let id = 1; id < 80 && !record; id++) {
    const r = (await api(`/api/records/${id}`)).json;
    if (r?.links?.hris && r?.links?.payroll && r.golden?.pay_rate) record = r;
  }
  assert.ok(record, "a paid person in both systems");
  const hrisHeaders = { "X-API-Key": demo.hrisKey };
  const url = `${demo.hris}/api/v1/workers/${record.links.hris}`;
  const worker = (await http(url, { headers: hrisHeaders })).json;
  const before = worker.salary;
  const rise = `${Math.round(Number(before) * 1.06)}.00`;
  const day = new Date(Date.now() + 12 * 86_400_000).toISOString().slice(0, 10);
  const dated = await http(url, { method: "PATCH", headers: hrisHeaders, body: { salary: rise, salary_effective_date: day } });
  assert.equal(dated.status, 200, dated.text);
  const waiting = await until("the rise to wait for its date", async () => {
    const list = (await api("/api/scheduled")).json;
    return list.items.find((c) => c.record_id === record.id && c.status === "scheduled") ?? false;
  });
  assert.equal(waiting.effective_date, day, "it waits under the HRIS's date");
  assert.equal(Number(waiting.values.pay_rate), Number(rise), "holding the dated salary");

  await go("/scheduled");
  const row = page.locator(`tr[data-scheduled="${waiting.id}"]`).first();
  await row.waitFor();
  assert.match(await row.innerText(), new RegExp(day));
  assert.match(await row.innerText(), /in 12 days/);
  await page.getByRole("link", { name: "Scheduled" }).getByLabel(/changes waiting for their date/).waitFor();
  await page.screenshot({ path: join(SHOTS, "scheduled.png") });
  const golden = (await api(`/api/records/${record.id}`)).json.golden;
  assert.notEqual(Number(golden.pay_rate), Number(rise), "the golden record (and payroll) keep the pay in force today");

  // The HRIS takes the rise back (its salary dated in the past again): nothing waits.
  const back = await http(url, { method: "PATCH", headers: hrisHeaders, body: { salary: before, salary_effective_date: "2020-01-01" } });
  assert.equal(back.status, 200, back.text);
  await until("the taken-back rise superseded", async () => {
    const list = (await api("/api/scheduled?status=superseded")).json;
    return list.items.some((c) => c.id === waiting.id);
  });
  assert.deepEqual(problems, []);
});

test("dashboard: the verdict turns degraded and names payroll when payroll stops answering, then recovers", async () => {
  const ws = (await api("/api/workspace")).json;
  const payroll = ws.systems.find((s) => s.id === "payroll");
  const broken = { ...payroll, config: { ...payroll.config, base_url: `http://127.0.0.1:${freePort()}` } };
  const saved = await api("/api/systems/payroll", { method: "PUT", body: broken });
  assert.equal(saved.status, 200, saved.text);
  await go("/");
  const verdict = page.getByRole("region", { name: "Verdict" });
  await until("the verdict to name payroll failing", async () => {
    const text = await verdict.innerText();
    return /Degraded/.test(text) && /Acme Payroll is failing: reading it fails/.test(text);
  }, { timeoutMs: 60_000, everyMs: 1000 });
  const row = page.getByRole("table", { name: "Each system's state" }).getByRole("row", { name: /Acme Payroll/ });
  assert.match(await row.innerText(), /failing/);
  await page.screenshot({ path: join(SHOTS, "dashboard-degraded.png") });
  const m = (await api("/api/metrics")).json;
  assert.equal(m.verdict.state, "degraded", "the API says the same as the page");

  const restored = await api("/api/systems/payroll", { method: "PUT", body: payroll });
  assert.equal(restored.status, 200, restored.text);
  await until("payroll read again", async () => !/Acme Payroll is failing: reading it fails/.test(await verdict.innerText()), { timeoutMs: 60_000, everyMs: 1000 });
  assert.deepEqual(problems, []);
});

test("dead letters: a cause is replayed as one, and the page says its writes failed again", async () => {
  const causes = (await api("/api/dead-letters/causes")).json;
  const cause = causes.find((c) => c.fails_again && c.count >= 1);
  assert.ok(cause, `a cause that fails again: ${JSON.stringify(causes)}`);
  await go("/dead-letters");
  const region = page.getByRole("region", { name: "Dead letters by cause" });
  const row = region.locator(`tr[data-cause="${cause.key.replace(/"/g, '\\"')}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), /Will fail again unless the record or the mapping changes/);
  await page.screenshot({ path: join(SHOTS, "dead-letter-causes.png") });
  const before = (await api(`/api/dead-letters/${cause.ids[0]}`)).json.attempts;
  await row.getByRole("button", { name: /^Replay \d+$/ }).click();
  const progress = page.getByRole("region", { name: "Replay progress" });
  await progress.getByText(/failed again and are dead letters once more/).waitFor({ timeout: 60_000 });
  const after = (await api(`/api/dead-letters/${cause.ids[0]}`)).json;
  assert.equal(after.status, "dead", "refused on its content, it is dead again");
  assert.equal(after.attempts, before + 1, "each of the cause's writes was sent once more");
  assert.ok(after.attempt_log.length >= 1 && after.attempt_log.at(-1).status === 422, "the timeline has the new refusal");
  assert.deepEqual(problems, []);
});

test("sign-in: a Prometheus scrape token is told it cannot open the console, and why", async () => {
  const issued = await api("/api/tokens", { method: "POST", body: { name: "e2e prometheus", role: "scrape" } });
  assert.equal(issued.status, 200, issued.text);
  const tab = await ctx.newPage();
  try {
    await tab.goto(`${demo.origin}/#token=${issued.json.token}`);
    const refusal = tab.getByRole("alert").filter({ hasText: "This token cannot open the console" });
    await refusal.waitFor();
    assert.match(await refusal.innerText(), /may only read \/metrics/, "the refusal says what the token may do");
    await tab.getByLabel("Access token").waitFor();
    assert.equal(await tab.getByText("Cannot reach the Concord engine").count(), 0, "a refused token is not an unreachable engine");
  } finally {
    await tab.close();
  }
  const revoked = await api(`/api/tokens/${issued.json.principal.id}`, { method: "DELETE" });
  assert.equal(revoked.status, 204, revoked.text);
});
