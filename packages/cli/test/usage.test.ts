import { createServer, type AddressInfo, type Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { COMMANDS } from "../src/commands.js";
import { cli, unique } from "./helpers.js";

const prefix = unique("cli-usage");
const run = (args: readonly string[], env: Record<string, string | undefined> = {}) => cli(args, { SUPERSPREADER_PREFIX: prefix, ...env });

describe("usage, help and exit codes", () => {
  it("prints help with examples, and exits 2 on usage errors", async () => {
    const none = await run([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("Usage: superspreader <command>");
    const help = await run(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Examples:");
    expect(help.stdout).toContain("Exit codes:");
    expect(help.stdout).toMatch(/^ {2}repair NAME +find ranges the queue lost and queue them again, now$/m);
    expect(help.stdout).toMatch(/^ {2}--redis-url URL +the Redis holding the state/m);
    const page = await run(["config", "set", "--help"]);
    expect(page.code).toBe(0);
    expect(page.stdout).toContain("Usage: superspreader config set NAME key=value...");
    expect(page.stdout).toContain("superspreader config set reencrypt-messages perSecondOffPeak=10");
    expect((await run(["help", "plan"])).stdout).toContain("enqueues nothing");

    for (const [args, message] of [
      [["frobnicate"], 'unknown command "frobnicate": see superspreader --help'],
      [["config", "delete", "orders"], 'unknown command "config delete"'],
      [["config"], "use `config get NAME` or `config set NAME key=value...`"],
      [["status"], "missing the backfill name"],
      [["status", "orders", "extra"], 'unexpected argument "extra"'],
      [["status", "orders", "--restart"], "--restart does not apply to `status`"],
      [["status", "orders", "--bogus"], "unknown option --bogus: see superspreader --help"],
      [["status", "orders", "--reason"], "Option '--reason <value>' argument missing"],
      [["list", "--timeout", "soon"], "--timeout must be a number > 0"],
      [["list", "--redis-url", "localhost:6379"], "--redis-url must look like redis://"],
      [["start", "orders", "--new", "--restart"], "pass one of them"],
    ] as const) {
      const result = await run(args);
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stderr).toContain(message);
    }
    const noUrl = await run(["list"], { REDIS_URL: undefined });
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr).toContain("pass --redis-url redis://host:6379 or set REDIS_URL");
  });

  it("has a page with options and examples for every command", async () => {
    for (const [name, spec] of Object.entries(COMMANDS)) {
      const page = await run([...name.split(" "), "--help"]);
      expect(page.code, name).toBe(0);
      expect(page.stdout, name).toMatch(new RegExp(`^Usage: superspreader ${name}`));
      expect(page.stdout, name).toMatch(new RegExp(`\\nExamples:\\n(  superspreader ${name}\\b.*\\n)+$`));
      for (const option of spec.options) expect(page.stdout, `${name} --${option}`).toMatch(new RegExp(`^ {2}(-\\w, )?--${option}\\b`, "m"));
    }
  });

  it("exits 4 when Redis is unreachable, and 3 for an unknown backfill", async () => {
    const down = await run(["list", "--redis-url", "redis://127.0.0.1:1"]);
    expect(down.code).toBe(4);
    expect(down.stderr).toMatch(/cannot reach Redis at redis:\/\/127\.0\.0\.1:1.*ECONNREFUSED.*check --redis-url/);
    const downJson = await run(["list", "--json", "--redis-url", "redis://user:secret@127.0.0.1:1"]);
    expect(downJson.code).toBe(4);
    expect(JSON.parse(downJson.stderr)).toMatchObject({ error: { exitCode: 4, code: "REDIS_UNREACHABLE" } });
    expect(downJson.stderr).not.toContain("secret");

    // A server that accepts connections and never answers: the command gives up after --timeout.
    const sockets: Socket[] = [];
    const silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as AddressInfo;
    const hung = await run(["list", "--redis-url", `redis://127.0.0.1:${port}`, "--timeout", "0.5"]);
    for (const socket of sockets) socket.destroy();
    silent.close();
    expect(hung.code).toBe(4);
    expect(hung.stderr).toContain("no answer within 0.5 s: is Redis reachable?");

    const unknown = await run(["status", "nope"]);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain('backfill "nope" not found');
    expect(unknown.stderr).toContain("`superspreader list` shows the stored backfills");
    expect(JSON.parse((await run(["audit", "nope", "--json"])).stderr)).toMatchObject({ error: { exitCode: 3, code: "UNKNOWN_BACKFILL" } });
  });
});
