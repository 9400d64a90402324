import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { ASSETS_MODULE, generateAssets } from "../scripts/build-assets.mjs";
import { ASSET_FILES, SHELL_HTML } from "../src/assets.js";

describe("bundled page assets", () => {
  it("are current: src/assets.ts is what scripts/build-assets.mjs builds from client/", async () => {
    expect(readFileSync(ASSETS_MODULE, "utf8"), "run `pnpm --filter @superspreader/dashboard assets`").toBe(await generateAssets());
  });

  it("never parse text as HTML or code", () => {
    const js = Object.entries(ASSET_FILES).find(([name]) => name.endsWith(".js"))![1].body;
    expect(js).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setHTMLUnsafe|DOMParser|createContextualFragment/);
  });

  it("stay small: under 40 KB gzipped in all (script, stylesheet, icon, shell)", () => {
    const total = [SHELL_HTML, ...Object.values(ASSET_FILES).map((f) => f.body)].reduce((sum, text) => sum + gzipSync(text, { level: 9 }).length, 0);
    expect(total).toBeLessThan(40 * 1024);
  });
});
