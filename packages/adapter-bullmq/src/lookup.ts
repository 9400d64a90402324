import { SuperSpreaderError } from "@superspreader/core";
import type { JobState } from "@superspreader/core";
import { checkLookupIds, checkLookupStates, describeValue } from "@superspreader/core/adapter";
import type { Cluster, Redis } from "ioredis";

/**
 * States of many jobs in one script, so a lookup is one round trip and sees one instant.
 * A job's hash is its existence (a list entry without a hash is never delivered: missing).
 * The sorted sets answer in O(log n) per id; the lists (active: a few per worker; wait:
 * only jobs without a priority, and every job of superspreader has one) are read once per
 * call, and only when some id is in none of the sets. Prioritized jobs are ready to run
 * (`waiting`); a flow parent waiting for its children and a delayed job are not yet (`delayed`).
 *
 * KEYS: completed, failed, delayed, prioritized, waiting-children, active, wait, paused.
 * ARGV: the job key prefix (`<prefix>:<queue>:`), then the ids.
 */
const LOOKUP_SCRIPT = `
local rcall = redis.call
local states, open = {}, {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local state = ""
  if rcall("EXISTS", ARGV[1] .. id) == 0 then state = "missing"
  elseif rcall("ZSCORE", KEYS[1], id) then state = "completed"
  elseif rcall("ZSCORE", KEYS[2], id) then state = "failed"
  elseif rcall("ZSCORE", KEYS[3], id) then state = "delayed"
  elseif rcall("ZSCORE", KEYS[4], id) then state = "waiting"
  elseif rcall("ZSCORE", KEYS[5], id) then state = "delayed"
  else open[#open + 1] = i - 1 end
  states[i - 1] = state
end
if #open > 0 then
  local function members(key)
    local set = {}
    for _, id in ipairs(rcall("LRANGE", key, 0, -1)) do set[id] = true end
    return set
  end
  local active, wait, paused = members(KEYS[6]), members(KEYS[7]), members(KEYS[8])
  for _, i in ipairs(open) do
    local id = ARGV[i + 1]
    if active[id] then states[i] = "active"
    elseif wait[id] or paused[id] then states[i] = "waiting"
    else states[i] = "missing" end
  end
end
return states
`;

/**
 * What the adapter reads about jobs itself, on either backend: BullMQ's API has no bulk
 * existence check and no bulk state lookup.
 */
export interface JobReads {
  /** How many of these distinct ids have a job in any state BullMQ retains. */
  presentCount(ids: readonly string[]): Promise<number>;
  /** `JobQueue.lookup`: one round trip that sees one instant. */
  lookup(ids: readonly string[]): Promise<JobState[]>;
  /** Resolves once the reads (and BullMQ's own commands) can work; rejects saying what to do otherwise. */
  ready(): Promise<void>;
}

/**
 * {@link JobReads} on Redis. `presentCount` is one multi-key `EXISTS`, so a chunk costs one
 * command, not one per job (EXISTS counts a repeated key twice, hence distinct ids). On Redis
 * Cluster every key of a queue shares one slot (BullMQ requires the hash tag), so the command
 * never spans slots.
 */
export function redisJobReads(connection: Redis | Cluster, toKey: KeyOf): JobReads {
  return {
    presentCount: async (ids) => Number(await connection.exists(...ids.map((id) => toKey(id)))),
    lookup: (ids) => lookupJobs(connection, toKey, ids),
    ready: () => Promise.resolve(),
  };
}

/** Ids per script call: bounds how long one call blocks Redis; the calls share one pipeline. */
const IDS_PER_SCRIPT = 1_000;

/** Where a queue's keys are: BullMQ's `Queue.toKey`. */
export type KeyOf = (type: string) => string;

/** `JobQueue.lookup` on BullMQ: one pipeline of {@link LOOKUP_SCRIPT} calls. */
export async function lookupJobs(connection: Redis | Cluster, toKey: KeyOf, ids: readonly string[]): Promise<JobState[]> {
  checkLookupIds(ids);
  if (ids.length === 0) return [];
  const keys = ["completed", "failed", "delayed", "prioritized", "waiting-children", "active", "wait", "paused"].map(toKey);
  const pipeline = connection.pipeline();
  for (let start = 0; start < ids.length; start += IDS_PER_SCRIPT) {
    pipeline.eval(LOOKUP_SCRIPT, keys.length, ...keys, toKey(""), ...ids.slice(start, start + IDS_PER_SCRIPT));
  }
  const replies = (await pipeline.exec()) ?? [];
  const states: unknown[] = [];
  for (const [error, reply] of replies) {
    if (error) throw error;
    states.push(...(reply as unknown[]));
  }
  return checkLookupStates(states, ids.length);
}
