#!/usr/bin/env node
// A tiny, read-only npm registry for the tarballs `npm run pack` writes: it serves
// each `*.tgz` of a folder (default: packs/) under its package name, so an app outside
// this checkout installs @superspreader/* with ordinary semver ranges, by npm or pnpm,
// before anything is published. Point only the scope at it, in the app's .npmrc:
//
//   @superspreader:registry=http://127.0.0.1:4873/
//
// Everything else still comes from the app's usual registry. Once the packages are on
// npmjs.org, delete that line; package.json stays as it is.
//
//   node scripts/registry.mjs [--dir packs] [--port 4873] [--host 127.0.0.1]
//
// Why not `file:` dependencies: a packed adapter depends on "@superspreader/core": "^0.1.0",
// and pnpm resolves that range from a registry whatever the app's own dependencies say
// (npm happens to dedupe it against a tarball installed in the same command).
// The folder is read again on every request, so re-packing needs no restart.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { gunzipSync } from "node:zlib";

/** The files of an npm tarball (gzipped ustar): path → contents. */
export function tarEntries(tarball) {
  const tar = gunzipSync(readFileSync(tarball));
  const entries = new Map();
  for (let offset = 0; offset + 512 <= tar.length; ) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((byte) => byte === 0)) break;
    const field = (start, length) => header.subarray(start, start + length).toString("utf8").replace(/\0[\s\S]*$/, "");
    const prefix = field(345, 155);
    const name = prefix ? `${prefix}/${field(0, 100)}` : field(0, 100);
    const size = Number.parseInt(field(124, 12).trim() || "0", 8);
    entries.set(name, tar.subarray(offset + 512, offset + 512 + size));
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return entries;
}

/** Reads `package/package.json` out of an npm tarball. */
export function manifestOf(tarball) {
  const json = tarEntries(tarball).get("package/package.json");
  if (!json) throw new Error(`[superspreader] ${tarball} has no package/package.json: not an npm tarball`);
  return JSON.parse(json.toString("utf8"));
}

/** The packages in `dir`: name → version → { file, manifest, integrity, shasum, mtime }. */
function scan(dir) {
  const packages = new Map();
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".tgz"))) {
    const path = join(dir, file);
    const bytes = readFileSync(path);
    const manifest = manifestOf(path);
    const versions = packages.get(manifest.name) ?? new Map();
    versions.set(manifest.version, {
      file,
      manifest,
      integrity: `sha512-${createHash("sha512").update(bytes).digest("base64")}`,
      shasum: createHash("sha1").update(bytes).digest("hex"),
      mtime: statSync(path).mtime.toISOString(),
    });
    packages.set(manifest.name, versions);
  }
  return packages;
}

/** Highest version first, by numeric major.minor.patch (prereleases after their release). */
function compareVersions(a, b) {
  const parse = (v) => {
    const [core, pre] = v.split("-", 2);
    return [...core.split(".").map(Number), pre === undefined ? 1 : 0];
  };
  const [x, y] = [parse(a), parse(b)];
  for (let i = 0; i < 4; i++) if (x[i] !== y[i]) return y[i] - x[i];
  return 0;
}

function packument(name, versions, base) {
  const sorted = [...versions.keys()].sort(compareVersions);
  const latest = sorted.find((v) => !v.includes("-")) ?? sorted[0];
  const doc = { name, "dist-tags": { latest }, versions: {}, time: {} };
  for (const version of sorted) {
    const entry = versions.get(version);
    const unscoped = name.split("/").pop();
    doc.versions[version] = {
      ...entry.manifest,
      _id: `${name}@${version}`,
      dist: { tarball: `${base}/${name}/-/${unscoped}-${version}.tgz`, integrity: entry.integrity, shasum: entry.shasum },
    };
    doc.time[version] = entry.mtime;
  }
  const times = Object.values(doc.time).sort();
  doc.time.created = times[0];
  doc.time.modified = times[times.length - 1];
  return doc;
}

/**
 * Starts the registry; resolves once it listens. `port` 0 picks a free one.
 *
 * @example
 * const registry = await startRegistry({ dir: "packs", port: 0 });
 * // .npmrc: `@superspreader:registry=${registry.url}/`
 * await registry.close();
 */
export function startRegistry({ dir, port = 4873, host = "127.0.0.1" }) {
  const root = resolve(dir);
  const server = createServer((req, res) => {
    const send = (status, body, type = "application/json") => {
      res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
      res.end(typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body));
    };
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, { error: "this registry is read-only" });
    let path;
    try {
      path = decodeURIComponent(new URL(req.url ?? "/", "http://registry").pathname);
    } catch {
      return send(400, { error: "bad path" });
    }
    const packages = scan(root);
    const tarball = /^\/(@[^/]+\/[^/]+|[^@/][^/]*)\/-\/[^/]+-(\d[^/]*)\.tgz$/.exec(path);
    if (tarball) {
      const entry = packages.get(tarball[1])?.get(tarball[2]);
      if (!entry) return send(404, { error: `no tarball for ${tarball[1]}@${tarball[2]} in ${root}` });
      return send(200, readFileSync(join(root, entry.file)), "application/octet-stream");
    }
    const name = path.replace(/^\//, "").replace(/\/$/, "");
    const versions = packages.get(name);
    if (!versions) return send(404, { error: `${name} is not in ${root} (run npm run pack in the superspreader checkout)` });
    const base = `http://${req.headers.host ?? `${host}:${server.address().port}`}`;
    return send(200, packument(name, versions, base));
  });
  return new Promise((resolveListen, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      const { port: actual } = server.address();
      resolveListen({
        url: `http://${host}:${actual}`,
        port: actual,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = join(fileURLToPath(new URL(".", import.meta.url)), "..");
  const { values } = parseArgs({
    options: {
      dir: { type: "string", default: join(root, "packs") },
      port: { type: "string", default: "4873" },
      host: { type: "string", default: "127.0.0.1" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log("usage: node scripts/registry.mjs [--dir packs] [--port 4873] [--host 127.0.0.1]");
    process.exit(0);
  }
  const registry = await startRegistry({ dir: values.dir, port: Number(values.port), host: values.host });
  const names = [...scan(resolve(values.dir)).entries()].map(([name, v]) => `${name}@${[...v.keys()].sort(compareVersions)[0]}`);
  console.log(`[superspreader] registry of ${values.dir} on ${registry.url}/ (${names.length} packages: ${names.join(", ") || "none yet"})`);
  console.log(`[superspreader] in your app's .npmrc: @superspreader:registry=${registry.url}/`);
  for (const signal of ["SIGINT", "SIGTERM"]) process.once(signal, () => void registry.close().then(() => process.exit(0)));
}
