#!/usr/bin/env node
// Measures what the README reports: the bytes a browser downloads for the page (as served, raw, gzip and
// brotli), and first contentful paint / first rows on screen in Debian's chromium, for 1 and 200 backfills
// (in-memory store, the built package served by serveDashboard on loopback). Run after a build:
//   pnpm --filter "@superspreader/dashboard..." build && pnpm --filter @superspreader/dashboard measure
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { createMemoryIdSource, createMemoryJobQueue, createMemoryStateStore, createSuperSpreader } from "@superspreader/core";
import { chromium } from "playwright-core";
import { serveDashboard } from "../dist/index.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const LOADS = Number(process.env.LOADS ?? 15);

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};
const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`;

async function served(count) {
  const spreader = createSuperSpreader({ queue: createMemoryJobQueue(), store: createMemoryStateStore() });
  for (let i = 0; i < count; i++) {
    const name = `backfill-${String(i).padStart(3, "0")}`;
    spreader.define(name, {
      source: createMemoryIdSource({ minId: 1n, maxId: 1_000_000_000n }),
      config: { batchSize: 1000, duration: 60, perSecondOnPeak: 2, perSecondOffPeak: 5, peak: { timezone: "America/Los_Angeles", days: "Mon-Fri", hours: [5, 17] } },
      handle: async () => {},
    });
    await spreader.start(name);
  }
  return serveDashboard({ spreader, port: 0 });
}

async function bundle(url) {
  const html = await (await fetch(url)).text();
  const links = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => new URL(m[1], url).href);
  const files = [{ name: "shell (HTML)", body: html }];
  for (const link of links) files.push({ name: link.split("/").pop().replace(/\.[0-9a-f]{12}\./, "."), body: await (await fetch(link)).text() });
  return files.map(({ name, body }) => {
    const raw = Buffer.from(body);
    return {
      name,
      raw: raw.length,
      gzip: gzipSync(raw, { level: 9 }).length,
      brotli: brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
    };
  });
}

async function paints(browser, url) {
  const fcp = [];
  const rows = [];
  for (let i = 0; i < LOADS; i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction(() => performance.getEntriesByName("superspreader:rows").length > 0, null, { timeout: 15_000 });
    const [paint, shown] = await page.evaluate(() => [
      performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? NaN,
      performance.getEntriesByName("superspreader:rows")[0].startTime,
    ]);
    fcp.push(paint);
    rows.push(shown);
    await context.close();
  }
  return { fcp: median(fcp), rows: median(rows) };
}

const one = await served(1);
const many = await served(200);
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
try {
  const files = await bundle(one.url);
  const total = files.reduce((t, f) => ({ raw: t.raw + f.raw, gzip: t.gzip + f.gzip, brotli: t.brotli + f.brotli }), { raw: 0, gzip: 0, brotli: 0 });
  console.log("| file | as served | gzip -9 | brotli 11 |");
  console.log("|---|---:|---:|---:|");
  for (const f of [...files, { name: "**total**", ...total }]) console.log(`| ${f.name} | ${kb(f.raw)} | ${kb(f.gzip)} | ${kb(f.brotli)} |`);
  console.log("");
  console.log(`| page (median of ${LOADS} cold loads) | first contentful paint | first rows on screen |`);
  console.log("|---|---:|---:|");
  for (const [label, s] of [["1 backfill", one], ["200 backfills", many]]) {
    const p = await paints(browser, s.url);
    console.log(`| ${label} | ${p.fcp.toFixed(0)} ms | ${p.rows.toFixed(0)} ms |`);
  }
} finally {
  await browser.close();
  await one.close();
  await many.close();
}
