// Load the operator dashboard in headless Chromium as an operator would (HTTP Basic with the
// operator token as password), open one campaign from the list, and print what the page shows as
// JSON for tests/test_dashboard.py to hold against GET /campaigns/{id}/report.
//   node dashboard.mjs BASE_URL TOKEN CAMPAIGN_ID SCREENSHOT.png
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [base, token, campaignId, screenshot] = process.argv.slice(2);
const profile = mkdtempSync(join(tmpdir(), "dipn-dashboard-chromium-"));
// Flags from ../shared/notes/web-runtime.md: without the background-networking ones Chromium keeps
// trying hosts this machine cannot reach.
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
  httpCredentials: { username: "operator", password: token },
  viewport: { width: 1280, height: 900 },
});
const offsite = [];
context.on("request", (request) => {
  if (!request.url().startsWith(base)) offsite.push(request.url());
});
try {
  const page = context.pages()[0] || (await context.newPage());
  const list = await page.goto(`${base}/dashboard`);
  const listStatus = list.status();
  await page.click(`a[href="/dashboard/campaigns/${campaignId}"]`);
  await page.waitForSelector("#buckets");
  const seen = await page.evaluate(() => {
    const cells = {};
    for (const td of document.querySelectorAll("#buckets td[data-bucket]")) {
      const bucket = td.dataset.bucket, field = td.dataset.field;
      cells[bucket] ??= {};
      cells[bucket][field] = td.dataset.low !== undefined
        ? { low: Number(td.dataset.low), high: Number(td.dataset.high), text: td.textContent }
        : { value: td.dataset.value === "" ? null : Number(td.dataset.value), text: td.textContent };
    }
    const versionCells = {};
    for (const td of document.querySelectorAll("#version-buckets td[data-version]")) {
      const { version, bucket, field } = td.dataset;
      versionCells[version] ??= {};
      versionCells[version][bucket] ??= {};
      versionCells[version][bucket][field] = td.dataset.low !== undefined
        ? { low: Number(td.dataset.low), high: Number(td.dataset.high), text: td.textContent }
        : { value: td.dataset.value === "" ? null : Number(td.dataset.value), text: td.textContent };
    }
    const band = document.querySelector("#band");
    return {
      title: document.querySelector("h1").textContent,
      status: document.querySelector("#status").textContent,
      band: { t_l: Number(band.dataset.tL), t_u: Number(band.dataset.tU), text: band.textContent },
      decisions: Number(document.querySelector("#decisions-total").dataset.value),
      reasons: Object.fromEntries([...document.querySelectorAll("rect[data-reason]")]
        .map((r) => [r.dataset.reason, Number(r.dataset.value)])),
      reserved: Number(document.querySelector("#reserved").dataset.value),
      warnings: [...document.querySelectorAll("[data-testid=warning]")].map((w) => w.textContent),
      charts: [...document.querySelectorAll("[data-chart]")].map((c) => ({
        chart: c.dataset.chart, svg: c.querySelectorAll("svg").length })),
      versions: document.querySelectorAll("#model-versions tr").length - 1,
      buckets: cells,
      versionBuckets: versionCells,
    };
  });
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ listStatus, offsite, ...seen }));
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
