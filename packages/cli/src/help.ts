/** Help texts: the overview and one page per command, both made from the command table. */
import { COMMANDS, GLOBAL_OPTIONS, OPTIONS, type OptionName } from "./commands.js";
import { table } from "./format.js";

/** `--timeout SECONDS`, `-h, --help`; a command's switch (`unpin --rate`) without its value. */
function optionWords(name: OptionName, switches: readonly OptionName[]): string {
  const option: { short?: string; value?: string; description: string } = OPTIONS[name];
  return `${option.short ? `-${option.short}, ` : ""}--${name}${option.value && !switches.includes(name) ? ` ${option.value}` : ""}`;
}

function optionLines(names: readonly OptionName[], switches: readonly OptionName[] = []): string {
  return table(
    names.map((name) => [optionWords(name, switches), OPTIONS[name].description]),
    "  ",
  );
}

/** `status NAME`, `config set NAME key=value...`: the usage without the program name and the optional options. */
function shortUsage(usage: string): string {
  return (usage.replace(/^superspreader /, "").split(" [--")[0] ?? usage).trim();
}

export function overview(): string {
  const commands = Object.values(COMMANDS).map((spec) => [shortUsage(spec.help.usage), spec.help.line]);
  return `superspreader: operate the throttled backfills of a superspreader app, from their state in Redis or,
with store-drizzle, in PostgreSQL or MySQL/MariaDB.

Usage: superspreader <command> [NAME] [options]

Commands:
${table(commands, "  ")}

Every command needs only the store (--redis-url, or --database-url for store-drizzle): what needs
the app's queue (a tick, a new run, a repair) is written to the store and carried out within seconds
by a worker that defines the backfill. With --config, the CLI does it itself with the app's queue.
store-drizzle's tables are created by \`superspreader migrate --database-url URL\`, once.

Options of every command:
${optionLines(GLOBAL_OPTIONS)}

Options of changes:
${optionLines(["reason", "actor"])}

Exit codes:
  0 ok   1 operation failed   2 usage error or invalid value (nothing changed)
  3 unknown backfill   4 Redis or the database unreachable (or no answer within --timeout)

Examples:
  export REDIS_URL=redis://localhost:6379
  superspreader list
  superspreader status reencrypt-messages
  superspreader config set reencrypt-messages perSecondOffPeak=10 --reason "quiet weekend"
  superspreader pause reencrypt-messages --reason "database maintenance"
  superspreader resume reencrypt-messages
  superspreader pin reencrypt-messages --rate 2 --reason "replica lag"
  superspreader estimate reencrypt-messages --finish-by 2026-12-24T00:00:00Z
  superspreader migrate --database-url postgres://app@localhost:5432/app
  superspreader list --database-url postgres://app@localhost:5432/app

A command's page, with its options and examples: superspreader <command> --help
`;
}

/** A paragraph broken into lines of at most `width` columns. */
function wrap(text: string, width = 100): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line].join("\n");
}

export function commandHelp(name: string): string {
  const spec = COMMANDS[name];
  if (spec === undefined) throw new Error(`[superspreader] no help page for ${JSON.stringify(name)}`);
  const { help } = spec;
  return [
    `Usage: ${help.usage}`,
    "",
    wrap(`${help.summary.charAt(0).toUpperCase()}${help.summary.slice(1)}.`),
    ...(help.details ? ["", wrap(help.details)] : []),
    ...(spec.options.length > 0 ? ["", "Options:", optionLines(spec.options, spec.switches)] : []),
    "",
    "Connection and output: --redis-url URL (or $REDIS_URL) or --database-url URL (or $SUPERSPREADER_DATABASE_URL),",
    "--prefix, --table-prefix, --config, --timeout, --json:",
    "see `superspreader --help`.",
    "",
    "Examples:",
    ...help.examples.map((e) => `  ${e}`),
    "",
  ].join("\n");
}
