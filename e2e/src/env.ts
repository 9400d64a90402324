/** A server URL the test harness exported; a missing one fails the run instead of skipping it. */
export function serverUrl(name: "SUPERSPREADER_REDIS_URL" | "SUPERSPREADER_PG_URL"): string {
  const url = process.env[name];
  if (!url) throw new Error(`${name} is not set: run through the root vitest config (its global setup starts the servers)`);
  return url;
}
