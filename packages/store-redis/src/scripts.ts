import type { ClientContext, Cluster, Redis, Result } from "ioredis";

/*
 * The Lua scripts. Each one is a single round trip and atomic. They all follow
 * one rule, because Redis does not roll a script back when it fails half way:
 * every check that can fail (key types, counters, ledger members) runs before the
 * first write. Ids stay 20-digit strings throughout; only small counters (batches,
 * versions, minutes) ever become Lua numbers, and those stay far below 2^53.
 */

const PRELUDE = `
local function corrupt(key, detail)
  return redis.error_reply('SSCORRUPT ' .. #key .. ':' .. key .. ' ' .. detail)
end

local function checkTypes(spec)
  for _, s in ipairs(spec) do
    local t = redis.call('TYPE', s[1])['ok']
    if t ~= 'none' and t ~= s[2] then return s[1], 'holds a ' .. t .. ' where a ' .. s[2] .. ' was expected' end
  end
  return nil
end

local function counter(key, field)
  local v = redis.call('HGET', key, field)
  if not v then return 0 end
  if not string.match(v, '^%d+$') or #v > 15 then
    return nil, 'has ' .. field .. ' = "' .. string.sub(v, 1, 100) .. '", expected a whole number'
  end
  return tonumber(v)
end

local function addDecimal(a, b)
  local out, carry, i, j = {}, 0, #a, #b
  while i > 0 or j > 0 or carry > 0 do
    local s = carry
    if i > 0 then s = s + string.byte(a, i) - 48 end
    if j > 0 then s = s + string.byte(b, j) - 48 end
    table.insert(out, 1, string.char(48 + s % 10))
    carry = (s >= 10) and 1 or 0
    i, j = i - 1, j - 1
  end
  local r = string.gsub(table.concat(out), '^0+', '')
  if r == '' then return '0' end
  return r
end

local function int(n)
  return string.format('%d', n)
end
`;

/** KEYS: doc. ARGV: expected version, value JSON. Returns the new version, or 0 on a version mismatch. */
const COMPARE_AND_SET = `${PRELUDE}
local doc = KEYS[1]
local bad, why = checkTypes({{doc, 'hash'}})
if bad then return corrupt(bad, why) end
local current = redis.call('HGET', doc, 'version')
if current then
  if not string.match(current, '^[1-9]%d*$') or #current > 15 then
    return corrupt(doc, 'has version = "' .. string.sub(current, 1, 100) .. '", expected a whole number >= 1')
  end
elseif redis.call('EXISTS', doc) == 1 then
  return corrupt(doc, 'has no version field')
else
  current = '0'
end
if current ~= ARGV[1] then return 0 end
local nextVersion = tonumber(current) + 1
redis.call('HSET', doc, 'version', int(nextVersion), 'value', ARGV[2])
return nextVersion
`;

/** KEYS: config-changes list. ARGV: change JSON, how many to keep. */
const APPEND_CONFIG_CHANGE = `${PRELUDE}
local bad, why = checkTypes({{KEYS[1], 'list'}})
if bad then return corrupt(bad, why) end
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
return 1
`;

/**
 * KEYS: done, metrics, minutes.
 * ARGV: begin, end, begin-1 ('' when begin is 0), end+1 ('' at the maximum id), all
 * padded; range size; at; minute bucket; oldest minute to drop (all decimal).
 * Returns 1 when the range was newly covered, 0 when the ledger already covered it.
 *
 * Ledger members are "<begin>:<end>", disjoint and non-adjacent, so at most one member
 * starts at or before begin and reaches it (the predecessor), and every member that
 * starts in (begin, end+1] is swallowed by the new range.
 */
const MARK_DONE = `${PRELUDE}
local done, metrics, minutes = KEYS[1], KEYS[2], KEYS[3]
local B, E, Bm1, Ep1, size, at, minute, cutoff = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
local bad, why = checkTypes({{done, 'zset'}, {metrics, 'hash'}, {minutes, 'hash'}})
if bad then return corrupt(bad, why) end

local function parseRange(m)
  local b, e = string.match(m, '^(%d+):(%d+)$')
  if b and #b == 20 and #e == 20 and b <= e then return b, e end
  return nil
end
local function badMember(m)
  return corrupt(done, 'holds the member "' .. string.sub(m, 1, 100) .. '", expected "<20-digit begin>:<20-digit end>"')
end

local newBegin, newEnd, predecessor = B, E, nil
local below = redis.call('ZREVRANGEBYLEX', done, '(' .. B .. ';', '-', 'LIMIT', 0, 1)[1]
if below then
  local pb, pe = parseRange(below)
  if not pb then return badMember(below) end
  if pe >= E then return 0 end
  if Bm1 == '' or pe >= Bm1 then newBegin, predecessor = pb, below end
end
local upper = '+'
if Ep1 ~= '' then upper = '(' .. Ep1 .. ';' end
local swallowed = redis.call('ZRANGEBYLEX', done, '(' .. B .. ';', upper)
for _, m in ipairs(swallowed) do
  local sb, se = parseRange(m)
  if not sb then return badMember(m) end
  if se > newEnd then newEnd = se end
end

local batches, why1 = counter(metrics, 'batchesDone')
if why1 then return corrupt(metrics, why1) end
local ids = redis.call('HGET', metrics, 'idsDone') or '0'
if not string.match(ids, '^%d+$') then return corrupt(metrics, 'has idsDone = "' .. string.sub(ids, 1, 100) .. '", expected a decimal') end
local bucketIds, bucketBatches = '0', '0'
local bucket = redis.call('HGET', minutes, minute)
if bucket then
  bucketIds, bucketBatches = string.match(bucket, '^(%d+):(%d+)$')
  if not bucketIds or #bucketBatches > 15 then
    return corrupt(minutes, 'has ' .. minute .. ' = "' .. string.sub(bucket, 1, 100) .. '", expected "<ids>:<batches>"')
  end
end
local stale = {}
-- Old buckets can only appear when a new minute starts, so the hash is scanned only then.
if not bucket then
  for _, field in ipairs(redis.call('HKEYS', minutes)) do
    if not string.match(field, '^%d+$') or #field > 15 then
      return corrupt(minutes, 'has the field "' .. string.sub(field, 1, 100) .. '", expected a minute in epoch ms')
    end
    if tonumber(field) <= cutoff then table.insert(stale, field) end
  end
end

if predecessor then redis.call('ZREM', done, predecessor) end
if #swallowed > 0 then redis.call('ZREMRANGEBYLEX', done, '(' .. B .. ';', upper) end
redis.call('ZADD', done, 0, newBegin .. ':' .. newEnd)
redis.call('HSET', metrics, 'batchesDone', int(batches + 1), 'idsDone', addDecimal(ids, size), 'lastDoneAt', at)
for _, field in ipairs(stale) do redis.call('HDEL', minutes, field) end
redis.call('HSET', minutes, minute, addDecimal(bucketIds, size) .. ':' .. int(tonumber(bucketBatches) + 1))
return 1
`;

/** KEYS: deferred, metrics. ARGV: member. Returns 1 when the entry is new. */
const ADD_DEFERRED = `${PRELUDE}
local bad, why = checkTypes({{KEYS[1], 'zset'}, {KEYS[2], 'hash'}})
if bad then return corrupt(bad, why) end
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local n, why1 = counter(KEYS[2], 'batchesDeferred')
if why1 then return corrupt(KEYS[2], why1) end
redis.call('ZADD', KEYS[1], 0, ARGV[1])
redis.call('HSET', KEYS[2], 'batchesDeferred', int(n + 1))
return 1
`;

/** KEYS: failed, metrics. ARGV: the range's member prefix "<end>:<begin>:", the new member. */
const ADD_FAILED = `${PRELUDE}
local bad, why = checkTypes({{KEYS[1], 'zset'}, {KEYS[2], 'hash'}})
if bad then return corrupt(bad, why) end
local n, why1 = counter(KEYS[2], 'batchesFailed')
if why1 then return corrupt(KEYS[2], why1) end
local p = ARGV[1]
redis.call('ZREMRANGEBYLEX', KEYS[1], '[' .. p, '(' .. string.sub(p, 1, -2) .. ';')
redis.call('ZADD', KEYS[1], 0, ARGV[2])
redis.call('HSET', KEYS[2], 'batchesFailed', int(n + 1))
return 1
`;

/**
 * KEYS: failed, deferred, metrics. Returns how many failed records moved.
 * A failed member "<end>:<begin>:<cycle>:<JSON>" becomes the deferred member
 * "<end>:<nines' complement of cycle>:<begin>", computed digit by digit.
 */
const REQUEUE_FAILED = `${PRELUDE}
local failed, deferred, metrics = KEYS[1], KEYS[2], KEYS[3]
local bad, why = checkTypes({{failed, 'zset'}, {deferred, 'zset'}, {metrics, 'hash'}})
if bad then return corrupt(bad, why) end
local n, why1 = counter(metrics, 'batchesDeferred')
if why1 then return corrupt(metrics, why1) end
local members = redis.call('ZRANGE', failed, 0, -1)
local targets = {}
for i, m in ipairs(members) do
  local e, b, c = string.match(m, '^(%d+):(%d+):(%d+):')
  if not e or #e ~= 20 or #b ~= 20 or #c ~= 16 or b > e then
    return corrupt(failed, 'holds the member "' .. string.sub(m, 1, 100) .. '", expected "<end>:<begin>:<cycle>:<JSON>"')
  end
  local inverted = string.gsub(c, '%d', function(d) return string.char(105 - string.byte(d)) end)
  targets[i] = e .. ':' .. inverted .. ':' .. b
end
local added = 0
for _, t in ipairs(targets) do added = added + redis.call('ZADD', deferred, 'NX', 0, t) end
redis.call('DEL', failed)
if added > 0 then redis.call('HSET', metrics, 'batchesDeferred', int(n + added)) end
return #members
`;

/** KEYS: metrics, minutes. Both hashes as flat arrays, read in one atomic step. */
const READ_METRICS = `${PRELUDE}
local bad, why = checkTypes({{KEYS[1], 'hash'}, {KEYS[2], 'hash'}})
if bad then return corrupt(bad, why) end
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
`;

const COMMANDS = {
  superspreaderCompareAndSet: { numberOfKeys: 1, lua: COMPARE_AND_SET },
  superspreaderAppendConfigChange: { numberOfKeys: 1, lua: APPEND_CONFIG_CHANGE },
  superspreaderMarkDone: { numberOfKeys: 3, lua: MARK_DONE },
  superspreaderAddDeferred: { numberOfKeys: 2, lua: ADD_DEFERRED },
  superspreaderAddFailed: { numberOfKeys: 2, lua: ADD_FAILED },
  superspreaderRequeueFailed: { numberOfKeys: 3, lua: REQUEUE_FAILED },
  superspreaderReadMetrics: { numberOfKeys: 2, lua: READ_METRICS, readOnly: true },
} as const;

declare module "ioredis" {
  interface RedisCommander<Context extends ClientContext = { type: "default" }> {
    superspreaderCompareAndSet(doc: string, expectedVersion: string, json: string): Result<number, Context>;
    superspreaderAppendConfigChange(list: string, json: string, keep: string): Result<number, Context>;
    superspreaderMarkDone(
      done: string,
      metrics: string,
      minutes: string,
      begin: string,
      end: string,
      beginMinusOne: string,
      endPlusOne: string,
      size: string,
      at: string,
      minute: string,
      cutoff: string,
    ): Result<number, Context>;
    superspreaderAddDeferred(deferred: string, metrics: string, member: string): Result<number, Context>;
    superspreaderAddFailed(failed: string, metrics: string, prefix: string, member: string): Result<number, Context>;
    superspreaderRequeueFailed(failed: string, deferred: string, metrics: string): Result<number, Context>;
    superspreaderReadMetrics(metrics: string, minutes: string): Result<[string[], string[]], Context>;
  }
}

/**
 * Registers the scripts on the client. Re-registering (a second store on the same
 * client) replaces identical definitions, so it is harmless.
 */
export function defineScripts(client: Redis | Cluster): void {
  for (const [name, definition] of Object.entries(COMMANDS)) client.defineCommand(name, definition);
}

const CORRUPT_REPLY = /^SSCORRUPT (\d+):/;

/** The key and detail of a script's corrupt-data reply, or null for any other error. */
export function parseCorruptReply(message: string): { key: string; detail: string } | null {
  const m = CORRUPT_REPLY.exec(message);
  if (!m) return null;
  // Lua's `#key` counts bytes, so cut the key out of the UTF-8 bytes, not the JS string.
  const bytes = Buffer.from(message.slice(m[0].length), "utf8");
  const length = Number(m[1]);
  return { key: bytes.subarray(0, length).toString("utf8"), detail: bytes.subarray(length + 1).toString("utf8") };
}
