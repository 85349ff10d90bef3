/**
 * Drives the live shop page in headless Chromium (Debian's /usr/bin/chromium through
 * playwright-core): a visitor scrolls, opens products, adds to cart, favorites, buys; then the
 * page idles for two and a half minutes on a fast-forwarded clock, so the idle timer scores too.
 * Writes what the page logged and showed, every request it made, and a screenshot.
 *
 *     node dist/e2e/drive.js --url http://127.0.0.1:PORT/ --out result.json [--screenshot shop.png]
 *     node dist/e2e/drive.js --url ... --out bench.json --bench 200      (inference latency only)
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";
import type { Page } from "playwright-core";

export const CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

interface RequestRecord {
  responseBytes?: number;
  method: string;
  url: string;
  resourceType: string;
  postData: string | null;
  headers: Record<string, string>;
}

async function visitor(page: Page, screenshot: string | undefined): Promise<void> {
  const pause = (ms: number) => page.waitForTimeout(ms);
  const scroll = async (dy: number) => {
    await page.mouse.move(200, 500);
    await page.mouse.wheel(0, dy);
    await pause(400); // the wheel run ends after 150 ms of quiet: one swipe
  };
  await scroll(600);
  await scroll(-300);
  await page.click("#product-3");
  await pause(300);
  await scroll(500);
  await page.click("#favorite");
  await pause(300);
  await page.click("#add-to-cart");
  await pause(300);
  if (screenshot !== undefined) await page.screenshot({ path: screenshot });
  await page.mouse.click(30, 700); // a tap on nothing
  await pause(300);
  await page.click("#product-5");
  await pause(300);
  await page.click("#buy-now");
  await pause(300);
  await page.click("#submit-order");
  await pause(500);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    url: { type: "string" }, out: { type: "string" }, screenshot: { type: "string" }, bench: { type: "string" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
  } });
  if (values.url === undefined || values.out === undefined) throw new Error("usage: drive.js --url URL --out OUT.json [--screenshot PNG] [--bench N]");
  const profile = await mkdtemp(join(tmpdir(), "dipn-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: values.chromium, headless: true, args: CHROMIUM_FLAGS, viewport: { width: 412, height: 860 },
  });
  const requests: RequestRecord[] = [];
  const consoleLines: string[] = [];
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.on("request", (request) => requests.push({
      method: request.method(), url: request.url(), resourceType: request.resourceType(), postData: request.postData(),
      headers: request.headers(),
    }));
    page.on("requestfinished", (request) => {
      void request.sizes().then((sizes) => {
        const record = requests.find((r) => r.url === request.url() && r.responseBytes === undefined);
        if (record !== undefined) record.responseBytes = sizes.responseBodySize;
      });
    });
    page.on("console", (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
    page.on("pageerror", (error) => consoleLines.push(`pageerror: ${error.message}`));
    const bench = values.bench === undefined ? undefined : Number(values.bench);
    if (bench === undefined) await page.clock.install();
    const started = Date.now();
    await page.goto(values.url);
    await page.waitForFunction(() => window.dipnShop?.ready === true || window.dipnShop?.error !== null, undefined, { timeout: 120_000 });
    const loadMs = Date.now() - started;
    let result: Record<string, unknown>;
    if (bench !== undefined) {
      const times = await page.evaluate(async (n) => window.dipnShop.benchmark(n), bench);
      result = { times_ms: times, runtime: await page.evaluate(() => window.dipnShop.runtime) };
    } else {
      await visitor(page, values.screenshot);
      await page.clock.fastForward(150_000); // idle: the timer scores at +60 s and +120 s
      await page.waitForFunction(() => window.dipnShop.log.filter((e) => e.kind === "score" && e.trigger === "idle").length >= 2,
        undefined, { timeout: 30_000 }).catch(() => undefined);
      await page.waitForFunction(() => window.dipnShop.acknowledged() >= window.dipnShop.posted, undefined, { timeout: 15_000 }).catch(() => undefined);
      result = await page.evaluate(() => ({
        ...window.dipnShop, uplinkError: window.dipnShop.uplinkError(), acknowledged: window.dipnShop.acknowledged(),
        shown: { p_realtime: document.getElementById("p-realtime")?.textContent, p_longterm: document.getElementById("p-longterm")?.textContent,
          status: document.getElementById("status")?.textContent },
      }));
      // A second visit: the same device (kept in IndexedDB) signs again, no new registration.
      await page.reload();
      await page.waitForFunction(() => window.dipnShop?.ready === true || window.dipnShop?.error !== null, undefined, { timeout: 120_000 });
      await page.click("#product-7");
      await page.waitForFunction(() => window.dipnShop.log.some((e) => e.kind === "score"), undefined, { timeout: 30_000 });
      await page.waitForFunction(() => window.dipnShop.acknowledged() >= window.dipnShop.posted, undefined, { timeout: 15_000 }).catch(() => undefined);
      result["revisit"] = await page.evaluate(() => ({
        ...window.dipnShop, uplinkError: window.dipnShop.uplinkError(), acknowledged: window.dipnShop.acknowledged(),
      }));
    }
    const state = await page.evaluate(() => ({ ready: window.dipnShop.ready, error: window.dipnShop.error }));
    await page.waitForTimeout(200); // the last response sizes

    await writeFile(values.out, JSON.stringify({ ...result, ...state, load_ms: loadMs, requests, console: consoleLines }, null, 1));
  } finally {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(`drive: error: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(2);
});
