/** Polls `check` every 20 ms until it returns true; fails the test after `timeoutMs`. */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A random suffix for names, so parallel tests never share keys. */
export function randomSuffix(): string {
  return Math.random().toString(36).slice(2, 10);
}
