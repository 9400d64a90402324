import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT, blockText, readmeBlocks, syncedReadme } from "../src/readme-blocks.js";

const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");

/** The text of README's `## title` section, up to the next `## `. */
function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`README.md has no "## ${title}" section`);
  const next = readme.indexOf("\n## ", start + 1);
  return readme.slice(start, next < 0 ? undefined : next);
}

describe("README quickstart", () => {
  it("shows examples/quickstart's schema and program, each as a marked copy of the file", () => {
    const quickstart = readmeBlocks(section("Quickstart")).map((block) => block.path);
    expect(quickstart).toEqual(["examples/quickstart/src/schema.ts", "examples/quickstart/src/main.ts"]);
  });

  it("has every marked block equal to its file (fix: pnpm --filter @superspreader/example-quickstart sync-readme)", () => {
    const blocks = readmeBlocks(readme);
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    for (const block of blocks) {
      expect(block.content, `README.md:${block.line} is a copy of ${block.path}`).toBe(blockText(block.path));
    }
    expect(syncedReadme(readme)).toBe(readme);
  });

  it("finds a drifted block, and sync puts the file back", () => {
    const [first] = readmeBlocks(readme);
    if (!first) throw new Error("no marked block");
    const drifted = `${readme.slice(0, first.start)}// an edit made only in the README\n${readme.slice(first.start)}`;
    expect(readmeBlocks(drifted)[0]?.content).not.toBe(blockText(first.path));
    expect(syncedReadme(drifted)).toBe(readme);
  });

  it("rejects a marker that is not followed by a code block", () => {
    expect(() => readmeBlocks("<!-- file: examples/quickstart/src/main.ts -->\nsome prose\n")).toThrow(/must be followed directly by a fenced code block/);
  });
});
