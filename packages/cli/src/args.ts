import type { ChangeOptions } from "@superspreader/core";
import { didYouMean } from "@superspreader/core/adapter";
import type { App } from "./app.js";
import type { Context } from "./commands.js";
import { CliError, EXIT } from "./errors.js";

/** The one positional argument, the backfill's name; a usage error naming `usage` otherwise. */
export function nameArg(context: Context, usage: string): string {
  const [name, ...rest] = context.args;
  if (name === undefined) throw new CliError(EXIT.USAGE, `missing the backfill name: ${usage}`);
  if (rest.length > 0) throw new CliError(EXIT.USAGE, `unexpected argument ${JSON.stringify(rest[0])}: ${usage}`);
  return name;
}

/** Who and why, for core's change methods. */
export function changeOptions(context: Context): ChangeOptions {
  return { actor: context.actor, ...(context.reason === undefined ? {} : { reason: context.reason }) };
}

/** The stored (or, with --config, defined) backfill `name` most likely meant, or null. */
export async function meant(app: App, name: string): Promise<string | null> {
  const known = new Set([...(await app.spreader.list()), ...app.spreader.defined()]);
  known.delete(name);
  return didYouMean(name, [...known]);
}

/** Parses `key=value` words: values are JSON when they parse as JSON, strings otherwise. */
export function parseAssignments(words: readonly string[]): Record<string, unknown> {
  if (words.length === 0) throw new CliError(EXIT.USAGE, "nothing to set: superspreader config set NAME key=value... (e.g. perSecondOffPeak=10)");
  const patch: Record<string, unknown> = {};
  for (const word of words) {
    const at = word.indexOf("=");
    if (at <= 0) throw new CliError(EXIT.USAGE, `${JSON.stringify(word)} is not key=value (e.g. perSecondOffPeak=10); nothing was changed`);
    const key = word.slice(0, at);
    const raw = word.slice(at + 1);
    if (key in patch) throw new CliError(EXIT.USAGE, `${key} is set twice; nothing was changed`);
    try {
      patch[key] = JSON.parse(raw);
    } catch {
      patch[key] = raw;
    }
  }
  return patch;
}
