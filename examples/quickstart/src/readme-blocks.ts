// The README's code blocks that are copies of files, so the two cannot drift. A block is
// marked by an HTML comment (invisible on GitHub) naming the file, right before its fence:
//
//   <!-- file: examples/quickstart/src/main.ts -->
//   ```ts
//   …the whole file, verbatim…
//   ```
//
// A test checks every marked block against its file; `--write` copies the files in:
//   pnpm --filter @superspreader/example-quickstart sync-readme
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (README.md and the paths in markers are relative to it). */
export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** A marked block of the README. */
export interface FileBlock {
  /** The file's path from the repository root, as the marker names it. */
  readonly path: string;
  /** The block's text, without its fences (no trailing newline). */
  readonly content: string;
  /** 1-based line of the marker in the README, for messages. */
  readonly line: number;
  /** Offsets of the block's lines in the README: from after the opening fence to the closing one. */
  readonly start: number;
  readonly end: number;
}

const MARKER = /^<!-- file: (\S+) -->\n```[a-z]*\n/gm;

/**
 * Every marked block of `readme`. Throws when a marker is not followed by a fenced block.
 *
 * @example
 * ```ts
 * readmeBlocks(readFileSync("README.md", "utf8")).map((b) => b.path); // ["examples/quickstart/src/schema.ts", …]
 * ```
 */
export function readmeBlocks(readme: string): FileBlock[] {
  const blocks: FileBlock[] = [];
  const markers = [...readme.matchAll(/^<!-- file: .*-->$/gm)];
  const found = [...readme.matchAll(MARKER)];
  if (found.length !== markers.length) {
    const bad = markers.find((m) => !found.some((f) => f.index === m.index));
    const line = readme.slice(0, bad?.index ?? 0).split("\n").length;
    throw new Error(`README.md:${line}: "${bad?.[0]}" must be followed directly by a fenced code block`);
  }
  for (const match of found) {
    const start = (match.index ?? 0) + match[0].length;
    // The closing fence is the first line at or after `start` that begins with ```.
    const fence = /^```/m.exec(readme.slice(start));
    if (!fence) throw new Error(`README.md: the block of ${match[1]} is not closed`);
    const end = start + fence.index;
    blocks.push({
      path: match[1] as string,
      content: readme.slice(start, end).replace(/\n$/, ""),
      line: readme.slice(0, match.index).split("\n").length,
      start,
      end,
    });
  }
  return blocks;
}

/** A file's text as a README block shows it (without the final newline). */
export function blockText(path: string, root = REPO_ROOT): string {
  const text = readFileSync(join(root, path), "utf8").replace(/\n$/, "");
  if (/^```/m.test(text)) throw new Error(`${path} has a line starting with \`\`\`, which would end its README block`);
  return text;
}

/**
 * `readme` with every marked block replaced by its file's current text.
 *
 * @example
 * ```ts
 * writeFileSync("README.md", syncedReadme(readFileSync("README.md", "utf8")));
 * ```
 */
export function syncedReadme(readme: string, root = REPO_ROOT): string {
  let out = readme;
  for (const block of readmeBlocks(readme).reverse()) {
    out = `${out.slice(0, block.start)}${blockText(block.path, root)}\n${out.slice(block.end)}`;
  }
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const path = join(REPO_ROOT, "README.md");
  const readme = readFileSync(path, "utf8");
  const synced = syncedReadme(readme);
  if (process.argv.includes("--write")) {
    writeFileSync(path, synced);
    console.log(synced === readme ? "README.md was up to date" : `README.md: copied ${readmeBlocks(readme).map((b) => b.path).join(", ")}`);
  } else if (synced !== readme) {
    console.error("README.md differs from the files its blocks copy: run pnpm --filter @superspreader/example-quickstart sync-readme");
    process.exitCode = 1;
  }
}
