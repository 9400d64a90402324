import type BeeQueue from "bee-queue";
import { SuperSpreaderError } from "@superspreader/core";
import type { JobState } from "@superspreader/core";
import { checkLookupIds, checkLookupStates, describeValue } from "@superspreader/core/adapter";

/** The node_redis v3 client Bee-Queue runs its commands on (what of it the adapter uses). */
interface NodeRedisClient {
  eval(...args: [string, number, ...string[], (error: Error | null, reply: unknown) => void]): boolean;
  batch(): NodeRedisBatch;
}
interface NodeRedisBatch {
  eval(script: string, keys: number, ...args: string[]): NodeRedisBatch;
  exec(callback: (error: Error | null, replies: unknown[]) => void): void;
}

/**
 * Bee-Queue's command client and key names, which neither its typings nor its README cover:
 * `client` is the connection every Bee-Queue command runs on, `toKey` builds every key. Both
 * have been plain properties of the Queue since Bee-Queue 1; the tests pin them down.
 */
function internals(queue: BeeQueue): { client: NodeRedisClient; toKey(name: string): string } {
  const inside = queue as unknown as { client: NodeRedisClient | null; toKey(name: string): string };
  if (!inside.client) throw new SuperSpreaderError("INVALID_STATE", "the Bee-Queue instance is not connected (or already closed)");
  return { client: inside.client, toKey: (name) => inside.toKey(name) };
}

/**
 * States of many jobs in one script, so a lookup is one round trip and sees one instant. Bee-Queue
 * keeps every job it knows in the `jobs` hash (a job absent from it is missing); the sets answer
 * succeeded (completed), failed and delayed (a retry waiting out its backoff is there too); the
 * active and waiting lists are read once per call, only for ids in none of the sets. A job in
 * no list at all is never delivered: missing.
 *
 * KEYS: jobs, succeeded, failed, delayed, active, waiting. ARGV: the ids.
 */
const LOOKUP_SCRIPT = `
local rcall = redis.call
local states, open = {}, {}
for i = 1, #ARGV do
  local id = ARGV[i]
  local state = ""
  if rcall("HEXISTS", KEYS[1], id) == 0 then state = "missing"
  elseif rcall("SISMEMBER", KEYS[2], id) == 1 then state = "completed"
  elseif rcall("SISMEMBER", KEYS[3], id) == 1 then state = "failed"
  elseif rcall("ZSCORE", KEYS[4], id) then state = "delayed"
  else open[#open + 1] = i end
  states[i] = state
end
if #open > 0 then
  local function members(key)
    local set = {}
    for _, id in ipairs(rcall("LRANGE", key, 0, -1)) do set[id] = true end
    return set
  end
  local active, waiting = members(KEYS[5]), members(KEYS[6])
  for _, i in ipairs(open) do
    local id = ARGV[i]
    if active[id] then states[i] = "active"
    elseif waiting[id] then states[i] = "waiting"
    else states[i] = "missing" end
  end
end
return states
`;

/** Ids per script call: bounds how long one call blocks Redis; the calls share one batch. */
const IDS_PER_SCRIPT = 1_000;

export { checkLookupIds as checkIds } from "@superspreader/core/adapter";

/** `JobQueue.lookup` on Bee-Queue: one batch of {@link LOOKUP_SCRIPT} calls. */
export async function lookupJobs(queue: BeeQueue, ids: readonly string[]): Promise<JobState[]> {
  if (ids.length === 0) return [];
  const { client, toKey } = internals(queue);
  const keys = ["jobs", "succeeded", "failed", "delayed", "active", "waiting"].map(toKey);
  const batch = client.batch();
  for (let start = 0; start < ids.length; start += IDS_PER_SCRIPT) batch.eval(LOOKUP_SCRIPT, keys.length, ...keys, ...ids.slice(start, start + IDS_PER_SCRIPT));
  const replies = await new Promise<unknown[]>((resolve, reject) => batch.exec((error, result) => (error ? reject(error) : resolve(result))));
  const states: unknown[] = [];
  for (const reply of replies) {
    // node_redis puts a failed command's error in its place in the replies.
    if (reply instanceof Error) throw reply;
    states.push(...(reply as unknown[]));
  }
  return checkLookupStates(states, ids.length);
}

/**
 * Puts an active job back at the head of the waiting list, unspent: its options (remaining
 * retries) are untouched. Only a job still in the active list moves, so a job another worker's
 * stall check already re-queued is not queued twice.
 *
 * KEYS: active, waiting, stalling. ARGV: the id.
 */
const HAND_BACK_SCRIPT = `
if redis.call("LREM", KEYS[1], 0, ARGV[1]) > 0 then
  redis.call("RPUSH", KEYS[2], ARGV[1])
end
redis.call("SREM", KEYS[3], ARGV[1])
return 1
`;

/** Hands an aborted job back to the queue (see {@link HAND_BACK_SCRIPT}). */
export function handBack(queue: BeeQueue, id: string): Promise<void> {
  const { client, toKey } = internals(queue);
  return new Promise<void>((resolve, reject) => {
    // RPUSH: workers pop from the right, so the job runs next, as it was already running.
    client.eval(HAND_BACK_SCRIPT, 3, toKey("active"), toKey("waiting"), toKey("stalling"), id, (error) => (error ? reject(error) : resolve()));
  });
}
