import type { ClientContext, Cluster, Redis, Result } from "ioredis";

/*
 * The Lua scripts. Each one is a single round trip and atomic. They all follow
 * one rule, because Redis does not roll a script back when it fails half way:
 * every check that can fail (key types, counters, ledger members, buckets) runs
 * before the first write. Ids stay 20-digit strings throughout; only small counters
 * (batches, versions, failures) and decimals of at most 15 digits (sizes and sums
 * added exactly, below 2^53) ever become Lua numbers. Minute fields are only compared
 * for pruning, where a rounded double would do no harm.
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

-- redis.call(...) for a read of key, which must be a kind: its reply, or nil and the
-- reply to return (a corrupt-data error naming the key for WRONGTYPE, else the error).
-- A cheaper type check than TYPE where the script reads the key anyway.
local function typedRead(key, kind, ...)
  local r = redis.pcall(...)
  if type(r) == 'table' and r.err then
    if string.find(r.err, 'WRONGTYPE', 1, true) then
      return nil, corrupt(key, 'holds a ' .. redis.call('TYPE', key)['ok'] .. ' where a ' .. kind .. ' was expected')
    end
    return nil, r
  end
  return r
end

local function counter(key, field)
  local v = redis.call('HGET', key, field)
  if not v then return 0 end
  if not string.match(v, '^%d+$') or #v > 15 then
    return nil, 'has ' .. field .. ' = "' .. string.sub(v, 1, 100) .. '", expected a whole number'
  end
  return tonumber(v)
end

local function int(n)
  return string.format('%d', n)
end

-- Sums of decimal strings of any length. Operands of up to 15 digits (every realistic
-- batch size and idsDone) add as Lua numbers, exactly (the sum stays below 2^53);
-- longer ones are added in 14-digit limbs. Digit-by-digit addition cost ~7 us a call.
local function addDecimal(a, b)
  if #a <= 15 and #b <= 15 then return int(tonumber(a) + tonumber(b)) end
  local limbs, carry, i, j = {}, 0, #a, #b
  while i > 0 or j > 0 or carry > 0 do
    local s = carry
    if i > 0 then s = s + tonumber(string.sub(a, math.max(1, i - 13), i)) end
    if j > 0 then s = s + tonumber(string.sub(b, math.max(1, j - 13), j)) end
    if s >= 1e14 then carry, s = 1, s - 1e14 else carry = 0 end
    limbs[#limbs + 1] = s
    i, j = i - 14, j - 14
  end
  local parts = {}
  for k = #limbs, 1, -1 do parts[#parts + 1] = string.format('%014d', limbs[k]) end
  local r = string.gsub(table.concat(parts), '^0+', '')
  if r == '' then return '0' end
  return r
end

-- A minute bucket "<ids>:<batches>" (as versions before failure counts wrote it) or
-- "<ids>:<batches>:<failures>": ids, batches, failures; nil when it is neither.
-- "<ids>:<batches>[:<failures>[:<handler ms>:<late ms>]]": ids, batches, failures, handler ms, late ms.
local function parseBucket(v)
  local ids, batches = string.match(v, '^(%d+):(%d+)$')
  if ids then
    if #batches > 15 then return nil end
    return ids, tonumber(batches), 0, 0, 0
  end
  local failures, ms, late
  ids, batches, failures = string.match(v, '^(%d+):(%d+):(%d+)$')
  if ids then
    if #batches > 15 or #failures > 15 then return nil end
    return ids, tonumber(batches), tonumber(failures), 0, 0
  end
  ids, batches, failures, ms, late = string.match(v, '^(%d+):(%d+):(%d+):(%d+):(%d+)$')
  if not ids or #batches > 15 or #failures > 15 or #ms > 15 or #late > 15 then return nil end
  return ids, tonumber(batches), tonumber(failures), tonumber(ms), tonumber(late)
end

-- The shortest form that holds the values, so a bucket stays readable by the previous
-- versions during a rolling upgrade as long as nothing they do not know was recorded.
local function formatBucket(ids, batches, failures, ms, late)
  ms, late = ms or 0, late or 0
  if ms == 0 and late == 0 then
    if failures == 0 then return ids .. ':' .. int(batches) end
    return ids .. ':' .. int(batches) .. ':' .. int(failures)
  end
  return ids .. ':' .. int(batches) .. ':' .. int(failures) .. ':' .. int(ms) .. ':' .. int(late)
end

local function badBucket(minutes, field, v)
  return corrupt(minutes, 'has ' .. field .. ' = "' .. string.sub(v, 1, 100) .. '", expected "<ids>:<batches>[:<failures>[:<ms>:<late>]]"')
end

-- Fields of the minutes hash at or before cutoff, or nil and the corrupt reply.
-- Old buckets can only appear when a new minute starts, so callers scan only then.
local function staleBuckets(minutes, cutoff)
  local stale = {}
  for _, field in ipairs(redis.call('HKEYS', minutes)) do
    local minute = string.match(field, '^%-?%d+$') and tonumber(field)
    if not minute then
      return nil, corrupt(minutes, 'has the field "' .. string.sub(field, 1, 100) .. '", expected a minute in epoch ms')
    end
    if minute <= cutoff then table.insert(stale, field) end
  end
  return stale
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
 * KEYS: done, metrics, minutes, outstanding.
 * ARGV: begin, end, begin-1 ('' when begin is 0), end+1 ('' at the maximum id), all
 * padded; range size; at; minute bucket; oldest minute to drop (all decimal); the
 * entry's outstanding member.
 * Returns 1 when the range was newly covered, 0 when the ledger already covered it.
 * Either way the outstanding entry goes and the consecutive-failure count is reset.
 *
 * Ledger members are "<begin>:<end>", disjoint and non-adjacent, so at most one member
 * starts at or before begin and reaches it (the predecessor), and every member that
 * starts in (begin, end+1] is swallowed by the new range.
 */
const MARK_DONE = `${PRELUDE}
local done, metrics, minutes, outstanding, start = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local B, E, Bm1, Ep1, size, at, minute, cutoff, entry = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8]), ARGV[9]
local addMs, addLate = tonumber(ARGV[10] or '0') or 0, tonumber(ARGV[11] or '0') or 0
local slotAt = tonumber(ARGV[12] or '')

-- A start that reserved no slot of the run's start bucket is counted in it at its slot (GCRA: tat = max(tat, slot) + 1/rate).
local newTat = nil
if slotAt then
  local rate, reply = typedRead(start, 'hash', 'HMGET', start, 'perSecond', 'tat')
  if reply then return reply end
  local perSecond, tat = tonumber(rate[1]), tonumber(rate[2])
  if perSecond and perSecond > 0 and tat then
    if tat < slotAt then tat = slotAt end
    newTat = string.format('%.17g', tat + 1000 / perSecond)
  end
end

-- The hot path: each redis.call costs about as much as the work it does, so instead of a
-- TYPE per key, the first read of each key is its type check.
local tracked, reply = typedRead(outstanding, 'zset', 'ZSCORE', outstanding, entry)
if reply then return reply end
local counters
counters, reply = typedRead(metrics, 'hash', 'HMGET', metrics, 'batchesDone', 'idsDone', 'consecutiveFailures')
if reply then return reply end
local below
below, reply = typedRead(done, 'zset', 'ZREVRANGEBYLEX', done, '(' .. B .. ';', '-', 'LIMIT', 0, 1)
if reply then return reply end
below = below[1]

local function parseRange(m)
  local b, e = string.match(m, '^(%d+):(%d+)$')
  if b and #b == 20 and #e == 20 and b <= e then return b, e end
  return nil
end
local function badMember(m)
  return corrupt(done, 'holds the member "' .. string.sub(m, 1, 100) .. '", expected "<20-digit begin>:<20-digit end>"')
end

local newBegin, newEnd, predecessor = B, E, nil
if below then
  local pb, pe = parseRange(below)
  if not pb then return badMember(below) end
  if pe >= E then
    -- Already covered: a repeat. Only the entry and the failure count change.
    if tracked then redis.call('ZREM', outstanding, entry) end
    if counters[3] and counters[3] ~= '0' then redis.call('HSET', metrics, 'consecutiveFailures', '0') end
    if newTat then redis.call('HSET', start, 'tat', newTat) end
    return 0
  end
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

local batches, ids = counters[1] or '0', counters[2] or '0'
if not string.match(batches, '^%d+$') or #batches > 15 then
  return corrupt(metrics, 'has batchesDone = "' .. string.sub(batches, 1, 100) .. '", expected a whole number')
end
if not string.match(ids, '^%d+$') then return corrupt(metrics, 'has idsDone = "' .. string.sub(ids, 1, 100) .. '", expected a decimal') end
local bucket
bucket, reply = typedRead(minutes, 'hash', 'HGET', minutes, minute)
if reply then return reply end
local bucketIds, bucketBatches, bucketFailures, bucketMs, bucketLate = '0', 0, 0, 0, 0
local stale = {}
if bucket then
  bucketIds, bucketBatches, bucketFailures, bucketMs, bucketLate = parseBucket(bucket)
  if not bucketIds then return badBucket(minutes, minute, bucket) end
else
  stale, reply = staleBuckets(minutes, cutoff)
  if not stale then return reply end
end

if predecessor then redis.call('ZREM', done, predecessor) end
if #swallowed > 0 then redis.call('ZREMRANGEBYLEX', done, '(' .. B .. ';', upper) end
redis.call('ZADD', done, 0, newBegin .. ':' .. newEnd)
redis.call('HSET', metrics, 'batchesDone', int(tonumber(batches) + 1), 'idsDone', addDecimal(ids, size), 'lastDoneAt', at, 'consecutiveFailures', '0')
for _, field in ipairs(stale) do redis.call('HDEL', minutes, field) end
redis.call('HSET', minutes, minute, formatBucket(addDecimal(bucketIds, size), bucketBatches + 1, bucketFailures, bucketMs + addMs, bucketLate + addLate))
if tracked then redis.call('ZREM', outstanding, entry) end
if newTat then redis.call('HSET', start, 'tat', newTat) end
return 1
`;

/**
 * KEYS: metrics, minutes. ARGV: minute bucket, the minute before it, oldest minute to drop.
 * Counts one failed attempt; returns {consecutive, failures, batches done} over the two minutes.
 */
const RECORD_FAILURE = `${PRELUDE}
local metrics, minutes = KEYS[1], KEYS[2]
local minute, previous, cutoff = ARGV[1], ARGV[2], tonumber(ARGV[3])
local bad, why = checkTypes({{metrics, 'hash'}, {minutes, 'hash'}})
if bad then return corrupt(bad, why) end
local n, why1 = counter(metrics, 'consecutiveFailures')
if why1 then return corrupt(metrics, why1) end
local ids, batches, failures, ms, late = '0', 0, 0, 0, 0
local bucket = redis.call('HGET', minutes, minute)
local stale = {}
if bucket then
  ids, batches, failures, ms, late = parseBucket(bucket)
  if not ids then return badBucket(minutes, minute, bucket) end
else
  local reply
  stale, reply = staleBuckets(minutes, cutoff)
  if not stale then return reply end
end
local prevBatches, prevFailures = 0, 0
local before = redis.call('HGET', minutes, previous)
if before then
  local prevIds
  prevIds, prevBatches, prevFailures = parseBucket(before)
  if not prevIds then return badBucket(minutes, previous, before) end
end

redis.call('HSET', metrics, 'consecutiveFailures', int(n + 1))
for _, field in ipairs(stale) do redis.call('HDEL', minutes, field) end
redis.call('HSET', minutes, minute, formatBucket(ids, batches, failures + 1, ms, late))
return {n + 1, failures + 1 + prevFailures, batches + prevBatches}
`;

/** KEYS: deferred, metrics, outstanding. ARGV: deferred member, outstanding member. Returns 1 when the entry is new. */
const ADD_DEFERRED = `${PRELUDE}
local deferred, metrics, outstanding = KEYS[1], KEYS[2], KEYS[3]
local bad, why = checkTypes({{deferred, 'zset'}, {metrics, 'hash'}, {outstanding, 'zset'}})
if bad then return corrupt(bad, why) end
local known = redis.call('ZSCORE', deferred, ARGV[1])
local n = 0
if not known then
  local why1
  n, why1 = counter(metrics, 'batchesDeferred')
  if why1 then return corrupt(metrics, why1) end
end
redis.call('ZREM', outstanding, ARGV[2])
if known then return 0 end
redis.call('ZADD', deferred, 0, ARGV[1])
redis.call('HSET', metrics, 'batchesDeferred', int(n + 1))
return 1
`;

/** KEYS: failed, metrics, outstanding. ARGV: the range's member prefix "<end>:<begin>:", the new member, the outstanding member. */
const ADD_FAILED = `${PRELUDE}
local failed, metrics, outstanding = KEYS[1], KEYS[2], KEYS[3]
local bad, why = checkTypes({{failed, 'zset'}, {metrics, 'hash'}, {outstanding, 'zset'}})
if bad then return corrupt(bad, why) end
local n, why1 = counter(metrics, 'batchesFailed')
if why1 then return corrupt(metrics, why1) end
local p = ARGV[1]
redis.call('ZREMRANGEBYLEX', failed, '[' .. p, '(' .. string.sub(p, 1, -2) .. ';')
redis.call('ZADD', failed, 0, ARGV[2])
redis.call('HSET', metrics, 'batchesFailed', int(n + 1))
redis.call('ZREM', outstanding, ARGV[3])
return 1
`;

/**
 * KEYS: outstanding. ARGV: dueBefore, limit. The due entries, earliest checkAt first, as a
 * flat [member, score, …] list. A script rather than a plain ZRANGEBYSCORE so the reply has
 * this one shape on RESP2, RESP3 and every ioredis reply mapping.
 */
const LIST_OUTSTANDING = `${PRELUDE}
local bad, why = checkTypes({{KEYS[1], 'zset'}})
if bad then return corrupt(bad, why) end
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
`;

/**
 * KEYS: outstanding, done, deferred, metrics.
 * ARGV: per entry, four values: its outstanding member, its deferred member, and its
 * padded begin and end. Returns the 1-based positions of the entries moved to deferred.
 *
 * An entry still outstanding is removed; unless the ledger covers its range it becomes a
 * deferred entry (counted in batchesDeferred when new there) and counts as lost. Entries
 * no longer outstanding, and repeats within the call, are left alone.
 */
const RECLAIM_OUTSTANDING = `${PRELUDE}
local outstanding, done, deferred, metrics = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local bad, why = checkTypes({{outstanding, 'zset'}, {done, 'zset'}, {deferred, 'zset'}, {metrics, 'hash'}})
if bad then return corrupt(bad, why) end
local lost, why1 = counter(metrics, 'batchesLost')
if why1 then return corrupt(metrics, why1) end
local nDeferred, why2 = counter(metrics, 'batchesDeferred')
if why2 then return corrupt(metrics, why2) end

local seen, removed, toDefer, moved = {}, {}, {}, {}
for i = 1, #ARGV, 4 do
  local member, target, B, E = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if not seen[member] and redis.call('ZSCORE', outstanding, member) then
    seen[member] = true
    table.insert(removed, member)
    -- The ledger member starting at or before B is the only one that can cover [B, E].
    local below = redis.call('ZREVRANGEBYLEX', done, '(' .. B .. ';', '-', 'LIMIT', 0, 1)[1]
    local covered = false
    if below then
      local pb, pe = string.match(below, '^(%d+):(%d+)$')
      if not pb or #pb ~= 20 or #pe ~= 20 or pb > pe then
        return corrupt(done, 'holds the member "' .. string.sub(below, 1, 100) .. '", expected "<20-digit begin>:<20-digit end>"')
      end
      covered = pe >= E
    end
    if not covered then
      if not redis.call('ZSCORE', deferred, target) then table.insert(toDefer, target) end
      table.insert(moved, (i + 3) / 4)
    end
  end
end

-- In slices: unpack() of a very long list would overflow Lua's C stack.
for k = 1, #removed, 500 do redis.call('ZREM', outstanding, unpack(removed, k, math.min(k + 499, #removed))) end
for _, t in ipairs(toDefer) do redis.call('ZADD', deferred, 0, t) end
if #moved > 0 then
  redis.call('HSET', metrics, 'batchesLost', int(lost + #moved), 'batchesDeferred', int(nDeferred + #toDefer))
end
return moved
`;

/**
 * KEYS: failed, deferred, metrics. ARGV: since (epoch ms), or '' for every record.
 * Returns how many failed records moved.
 * A failed member "<end>:<begin>:<cycle>:<JSON>" becomes the deferred member
 * "<end>:<nines' complement of cycle>:<begin>", computed digit by digit. With since,
 * only records whose JSON has an at >= since move; the others stay failed.
 */
const REQUEUE_FAILED = `${PRELUDE}
local failed, deferred, metrics = KEYS[1], KEYS[2], KEYS[3]
local since = nil
if ARGV[1] ~= '' then since = tonumber(ARGV[1]) end
local bad, why = checkTypes({{failed, 'zset'}, {deferred, 'zset'}, {metrics, 'hash'}})
if bad then return corrupt(bad, why) end
local n, why1 = counter(metrics, 'batchesDeferred')
if why1 then return corrupt(metrics, why1) end
local members = redis.call('ZRANGE', failed, 0, -1)
local moving, targets = {}, {}
for _, m in ipairs(members) do
  local e, b, c, json = string.match(m, '^(%d+):(%d+):(%d+):(.*)$')
  if not e or #e ~= 20 or #b ~= 20 or #c ~= 16 or b > e then
    return corrupt(failed, 'holds the member "' .. string.sub(m, 1, 100) .. '", expected "<end>:<begin>:<cycle>:<JSON>"')
  end
  local moves = true
  if since then
    local ok, record = pcall(cjson.decode, json)
    if not ok or type(record) ~= 'table' or type(record.at) ~= 'number' then
      return corrupt(failed, 'holds the member "' .. string.sub(m, 1, 100) .. '", whose JSON has no number "at"')
    end
    moves = record.at >= since
  end
  if moves then
    local inverted = string.gsub(c, '%d', function(d) return string.char(105 - string.byte(d)) end)
    table.insert(moving, m)
    table.insert(targets, e .. ':' .. inverted .. ':' .. b)
  end
end
local added = 0
for _, t in ipairs(targets) do added = added + redis.call('ZADD', deferred, 'NX', 0, t) end
if #moving == #members then
  redis.call('DEL', failed)
else
  -- In slices: unpack() of a very long list would overflow Lua's C stack.
  for k = 1, #moving, 500 do redis.call('ZREM', failed, unpack(moving, k, math.min(k + 499, #moving))) end
end
if added > 0 then redis.call('HSET', metrics, 'batchesDeferred', int(n + added)) end
return #moving
`;

/**
 * KEYS: doc, start. ARGV: at (epoch ms). What a batch reads before it starts: the document's version
 * and value, and a start slot of the run's GCRA bucket, reserved in the same step. Returns
 * {version or false, value or false, waitMs as a string ('inf' at rate 0)}; a run without a bucket
 * (or with perSecond unset) waits 0 and reserves nothing.
 */
const READ_FOR_START = `${PRELUDE}
local doc, start, at = KEYS[1], KEYS[2], tonumber(ARGV[1])
-- Every batch runs this: the reads are the type checks (no TYPE calls).
local fields, reply = typedRead(doc, 'hash', 'HMGET', doc, 'version', 'value')
if reply then return reply end
local rate
rate, reply = typedRead(start, 'hash', 'HMGET', start, 'perSecond', 'burst', 'tat')
if reply then return reply end
local wait = '0'
if rate[1] and rate[1] ~= 'none' then
  local perSecond, burst, tat = tonumber(rate[1]), tonumber(rate[2]), tonumber(rate[3])
  if not perSecond or perSecond < 0 or not burst or burst < 1 or not tat then
    return corrupt(start, 'holds perSecond = "' .. tostring(rate[1]) .. '", burst = "' .. tostring(rate[2]) .. '", tat = "' .. tostring(rate[3]) .. '", expected numbers')
  end
  if perSecond == 0 then
    wait = 'inf'
  else
    local interval = 1000 / perSecond
    if tat < at then tat = at end
    local startAt = tat - (burst - 1) * interval
    if startAt < at then startAt = at end
    redis.call('HSET', start, 'tat', string.format('%.17g', tat + interval))
    wait = string.format('%d', math.ceil(startAt - at))
  end
end
return {fields[1] or false, fields[2] or false, wait}
`;

/**
 * KEYS: start. ARGV: perSecond ('none' lifts the limit), burst, at. Sets the bucket's rate; the next
 * free slot (tat) moves to one new interval after the last reserved one, or is now for a new bucket.
 */
const SET_START_RATE = `${PRELUDE}
local start = KEYS[1]
local bad, why = checkTypes({{start, 'hash'}})
if bad then return corrupt(bad, why) end
local old = redis.call('HMGET', start, 'perSecond', 'tat')
local tat = tonumber(old[2])
if not tat then
  tat = tonumber(ARGV[3])
else
  -- The next slot comes one interval of the new rate after the last one reserved (tat is one old interval after it).
  local before, after = tonumber(old[1]), tonumber(ARGV[1])
  if before and before > 0 and after and after > 0 then tat = tat - 1000 / before + 1000 / after end
end
redis.call('HSET', start, 'perSecond', ARGV[1], 'burst', ARGV[2], 'tat', string.format('%.17g', tat))
return 1
`;

/**
 * KEYS: budget. ARGV: expected version, member, record JSON, members to delete... Writes a claim computed
 * from the members read at `expected version` (field _v, absent = 0): returns the new version, or 0 when
 * another claim came first (read again).
 */
const CLAIM_BUDGET = `${PRELUDE}
local budget = KEYS[1]
local bad, why = checkTypes({{budget, 'hash'}})
if bad then return corrupt(bad, why) end
local version = tonumber(redis.call('HGET', budget, '_v') or '0')
if version ~= tonumber(ARGV[1]) then return 0 end
for i = 4, #ARGV do redis.call('HDEL', budget, ARGV[i]) end
redis.call('HSET', budget, ARGV[2], ARGV[3], '_v', tostring(version + 1))
return version + 1
`;

/** KEYS: metrics, minutes. Both hashes as flat arrays, read in one atomic step. */
const READ_METRICS = `${PRELUDE}
local bad, why = checkTypes({{KEYS[1], 'hash'}, {KEYS[2], 'hash'}})
if bad then return corrupt(bad, why) end
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
`;

/**
 * KEYS: output, index. ARGV: range field ("<begin>:<end>"), entry JSON, its result's bytes, maxBytes. Keeps
 * a collected result unless its range has one ('exists') or the run's bytes would pass maxBytes ('full',
 * counted in _dropped); else appends it and adds its bytes ('added').
 */
const ADD_OUTPUT = `${PRELUDE}
local output, index = KEYS[1], KEYS[2]
local bad, why = checkTypes({{output, 'list'}, {index, 'hash'}})
if bad then return corrupt(bad, why) end
if redis.call('HEXISTS', index, ARGV[1]) == 1 then return 'exists' end
local bytes, err = counter(index, '_bytes')
if not bytes then return corrupt(index, err) end
local dropped
dropped, err = counter(index, '_dropped')
if not dropped then return corrupt(index, err) end
if bytes + tonumber(ARGV[3]) > tonumber(ARGV[4]) then
  redis.call('HSET', index, '_dropped', int(dropped + 1))
  return 'full'
end
redis.call('RPUSH', output, ARGV[2])
redis.call('HSET', index, ARGV[1], '1', '_bytes', int(bytes + tonumber(ARGV[3])))
return 'added'
`;

/** KEYS: output, index. ARGV: first, last position. Returns {count, bytes, dropped, entries}, read in one atomic step. */
const LIST_OUTPUT = `${PRELUDE}
local output, index = KEYS[1], KEYS[2]
local bad, why = checkTypes({{output, 'list'}, {index, 'hash'}})
if bad then return corrupt(bad, why) end
local totals = redis.call('HMGET', index, '_bytes', '_dropped')
return {redis.call('LLEN', output), totals[1] or '0', totals[2] or '0', redis.call('LRANGE', output, ARGV[1], ARGV[2])}
`;

const COMMANDS = {
  superspreaderCompareAndSet: { numberOfKeys: 1, lua: COMPARE_AND_SET },
  superspreaderAppendConfigChange: { numberOfKeys: 1, lua: APPEND_CONFIG_CHANGE },
  superspreaderMarkDone: { numberOfKeys: 5, lua: MARK_DONE },
  superspreaderRecordFailure: { numberOfKeys: 2, lua: RECORD_FAILURE },
  superspreaderAddDeferred: { numberOfKeys: 3, lua: ADD_DEFERRED },
  superspreaderAddFailed: { numberOfKeys: 3, lua: ADD_FAILED },
  superspreaderListOutstanding: { numberOfKeys: 1, lua: LIST_OUTSTANDING, readOnly: true },
  superspreaderReclaimOutstanding: { numberOfKeys: 4, lua: RECLAIM_OUTSTANDING },
  superspreaderRequeueFailed: { numberOfKeys: 3, lua: REQUEUE_FAILED },
  superspreaderReadMetrics: { numberOfKeys: 2, lua: READ_METRICS, readOnly: true },
  superspreaderReadForStart: { numberOfKeys: 2, lua: READ_FOR_START },
  superspreaderSetStartRate: { numberOfKeys: 1, lua: SET_START_RATE },
  superspreaderClaimBudget: { numberOfKeys: 1, lua: CLAIM_BUDGET },
  superspreaderAddOutput: { numberOfKeys: 2, lua: ADD_OUTPUT },
  superspreaderListOutput: { numberOfKeys: 2, lua: LIST_OUTPUT, readOnly: true },
} as const;

declare module "ioredis" {
  interface RedisCommander<Context extends ClientContext = { type: "default" }> {
    superspreaderCompareAndSet(doc: string, expectedVersion: string, json: string): Result<number, Context>;
    superspreaderAppendConfigChange(list: string, json: string, keep: string): Result<number, Context>;
    superspreaderMarkDone(
      done: string,
      metrics: string,
      minutes: string,
      outstanding: string,
      start: string,
      begin: string,
      end: string,
      beginMinusOne: string,
      endPlusOne: string,
      size: string,
      at: string,
      minute: string,
      cutoff: string,
      outstandingMember: string,
      handlerMs?: string,
      lateMs?: string,
      slotAt?: string,
    ): Result<number, Context>;
    superspreaderRecordFailure(metrics: string, minutes: string, minute: string, previous: string, cutoff: string): Result<[number, number, number], Context>;
    superspreaderAddDeferred(deferred: string, metrics: string, outstanding: string, member: string, outstandingMember: string): Result<number, Context>;
    superspreaderAddFailed(failed: string, metrics: string, outstanding: string, prefix: string, member: string, outstandingMember: string): Result<number, Context>;
    superspreaderListOutstanding(outstanding: string, dueBefore: string, limit: string): Result<string[], Context>;
    superspreaderReclaimOutstanding(outstanding: string, done: string, deferred: string, metrics: string, ...args: string[]): Result<number[], Context>;
    superspreaderRequeueFailed(failed: string, deferred: string, metrics: string, since: string): Result<number, Context>;
    superspreaderReadMetrics(metrics: string, minutes: string): Result<[string[], string[]], Context>;
    superspreaderReadForStart(doc: string, start: string, at: string): Result<[string | null, string | null, string], Context>;
    superspreaderSetStartRate(start: string, perSecond: string, burst: string, at: string): Result<number, Context>;
    superspreaderClaimBudget(budget: string, expected: string, member: string, json: string, ...expired: string[]): Result<number, Context>;
    superspreaderAddOutput(output: string, index: string, field: string, json: string, bytes: string, maxBytes: string): Result<string, Context>;
    superspreaderListOutput(output: string, index: string, first: string, last: string): Result<[number, string, string, string[]], Context>;
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
