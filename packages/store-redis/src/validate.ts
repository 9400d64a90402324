import { describeValue, invalidOption } from "@superspreader/core/adapter";

export { checkConfigChange, checkEntries, checkExpectedVersion, checkFailure, toJson } from "@superspreader/core/adapter";

/*
 * The rules only this store has. Names, run ids, ranges, entries, limits and times are
 * checked with core's adapter helpers, so what the in-memory store accepts this one
 * accepts too. Core's names allow neither `{` nor `}`, which would move the Cluster hash
 * tag, nor `:`, which separates key parts.
 */

export function checkPrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== "string" || prefix.length === 0 || /[{}]/.test(prefix)) {
    throw invalidOption(
      "prefix",
      `must be a non-empty string without "{" or "}" (the store puts the backfill name in a {hash tag}), got ${describeValue(prefix)}`,
    );
  }
}

export function checkClient(client: unknown): void {
  if (typeof client !== "object" || client === null || typeof (client as { defineCommand?: unknown }).defineCommand !== "function") {
    throw invalidOption("client", `must be an ioredis Redis or Cluster instance, got ${describeValue(client)}`);
  }
}
