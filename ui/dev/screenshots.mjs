// Screenshots of every page with headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core), for looking at the UI during development.
//
//   node dev/screenshots.mjs 'http://127.0.0.1:8470/#token=…' [out dir=.shots] [theme=light|dark]

import { mkdtempSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const start = process.argv[2];
const out = process.argv[3] ?? ".shots";
const theme = process.argv[4] ?? "light";
const only = process.argv[5];
if (!start) throw new Error("usage: node dev/screenshots.mjs '<url with #token=>' [out] [theme]");
const origin = new URL(start).origin;
await mkdir(out, { recursive: true });

const ctx = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "concord-shots-")), {
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1440, height: 900 },
  colorScheme: theme,
});
const page = ctx.pages()[0] ?? (await ctx.newPage());
const problems = [];
page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));

await page.goto(start);
await page.waitForSelector(".sidebar", { timeout: 15000 });
if (page.url().includes("token=")) problems.push("the token stayed in the URL");

const pages = [
  ["dashboard", "/"],
  ["exceptions", "/exceptions"],
  ["exception-detail", "/exceptions/1"],
  ["exception-four-eyes", "/exceptions?kind=conflict&field=pay_rate", async () => {
    await page.locator(".t-row.clickable").first().click();
  }],
  ["exception-ambiguous", "/exceptions?kind=ambiguous_match", async () => {
    await page.locator(".t-row.clickable").first().click();
  }],
  ["dead-letters", "/dead-letters"],
  ["dead-letter-detail", "/dead-letters", async () => {
    await page.locator(".t-row.clickable").first().click();
  }],
  ["audit", "/audit"],
  ["record", "/records/1?field=work_phone"],
  ["systems", "/systems"],
  ["system-edit", "/systems/hris"],
  ["mapper", "/mapper?system=hris"],
  ["ownership", "/ownership"],
];
for (const [name, path, act] of pages) {
  if (only && !name.includes(only)) continue;
  await page.goto(origin + path);
  await page.waitForSelector(".sidebar");
  await page.waitForTimeout(1200);
  if (act) {
    try {
      await act();
      await page.waitForTimeout(1200);
    } catch (e) {
      problems.push(`${name}: ${e.message}`);
    }
  }
  await page.screenshot({ path: join(out, `${name}-${theme}.png`), fullPage: false });
  console.log(`${name}-${theme}.png`);
}
await ctx.close();
if (problems.length) {
  console.log("problems:\n" + problems.join("\n"));
  process.exitCode = 1;
}
